"""Topic configs stay in sync during a dual run: real `migrate mirror --follow` processes, real brokers.

Each test changes configs on the source and by hand on the target while the mirror follows,
and checks the target's configs, the mirror's log lines (one per topic, key and event), its
metrics, `migrate mirror status` and `migrate assess`.  Values are chosen so that no broker
deletes records because of them (noida-db applies retention within seconds).
"""

from __future__ import annotations

import json

import pytest

from migrate import kafka
from migrate.assess.assessment import AssessOptions, run_assessment
from migrate.mirror.configs import effective
from migrate.state import State
from metrics_support import MetricsMirror
from mirror_support import make_topic, produce_workload, read_contents
from support import run_cli, unique, wait_until

DAY, HALF_DAY, TWO_DAYS = "86400000", "43200000", "172800000"
PAIRS = [("noida", "tansu"), ("noida", "noida")]


def config(profile, topic: str, key: str) -> str | None:
    return effective(kafka.topic_config_entries(profile, topic), key)


def set_config(profile, topic: str, **values: str | None) -> None:
    answers = kafka.alter_topic_configs(profile, {topic: {k.replace("_", "."): v for k, v in values.items()}})
    assert answers == {topic: None}, answers


def rounds(mirror: MetricsMirror) -> float:
    return mirror.scrape().value("migrate_mirror_config_sync_rounds_total")


def after_rounds(mirror: MetricsMirror, count: int = 2) -> None:
    """Wait for `count` more whole config sync rounds: the next one may have begun before a change."""
    start = rounds(mirror)
    wait_until(lambda: rounds(mirror) >= start + count, timeout=60, interval=0.2, message="config sync rounds")


def lines(mirror: MetricsMirror, text: str) -> list[str]:
    return [line for line in mirror.stderr().splitlines() if text in line]


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def test_source_config_changes_reach_the_target_and_hand_changes_are_restored(pair, cluster_pool, tmp_path):
    source, target = (cluster_pool(role, platform).profile for role, platform in zip(("source", "target"), pair))
    topic = unique("cfgsync")
    make_topic(source, topic, 2, {"retention.ms": DAY})
    produce_workload(source, topic, 200, partitions=2)
    mirror = MetricsMirror(tmp_path / "state.db", source, target, topic, unique("m"), "--refresh-interval", "0.5")
    try:
        wait_until(lambda: topic in kafka.list_topics(target), timeout=60, message="the target topic")
        assert config(target, topic, "retention.ms") == DAY  # copied at creation
        after_rounds(mirror, 1)

        set_config(source, topic, retention_ms=HALF_DAY, delete_retention_ms="3600000")
        wait_until(lambda: config(target, topic, "retention.ms") == HALF_DAY
                   and config(target, topic, "delete.retention.ms") == "3600000", timeout=60, interval=0.2,
                   message="the source's change on the target")

        set_config(target, topic, retention_ms=TWO_DAYS)  # by hand, on the target
        wait_until(lambda: config(target, topic, "retention.ms") == HALF_DAY, timeout=60, interval=0.2,
                   message="the hand change to be restored")
        after_rounds(mirror)  # and nothing more happens: in sync, nothing sent, nothing logged
        produce_workload(source, topic, 100, partitions=2, seed=2)
        wait_until(lambda: read_contents(target, topic) == read_contents(source, topic), timeout=60, interval=0.5,
                   message="the records to be mirrored")
        scrape = mirror.scrape()
    finally:
        assert mirror.stop() == 0, mirror.stderr()
    restored = lines(mirror, "was changed on the target")
    assert len(restored) == 1 and f'target topic "{topic}"' in restored[0] and TWO_DAYS in restored[0]
    assert scrape.value("migrate_mirror_config_changes_total", topic=topic, outcome="applied") == 2
    assert scrape.value("migrate_mirror_config_changes_total", topic=topic, key="retention.ms",
                        outcome="restored") == 1
    assert scrape.samples("migrate_mirror_config_drift") == []
    assert not lines(mirror, "Traceback")


def test_with_drift_reported_a_hand_change_stays_and_shows_in_metrics_status_and_assess(source_cluster,
                                                                                     target_cluster, tmp_path):
    source, target = source_cluster.profile, target_cluster.profile
    topic, name = unique("cfgdrift"), unique("m")
    make_topic(source, topic, 1, {"retention.ms": DAY})
    produce_workload(source, topic, 50, partitions=1)
    state = tmp_path / "state.db"
    mirror = MetricsMirror(state, source, target, topic, name, "--refresh-interval", "0.5", "--config-drift",
                           "report")
    try:
        wait_until(lambda: topic in kafka.list_topics(target), timeout=60, message="the target topic")
        after_rounds(mirror, 1)
        set_config(target, topic, retention_ms=TWO_DAYS)
        wait_until(lambda: mirror.scrape().value("migrate_mirror_config_drift", topic=topic, key="retention.ms",
                                                 state="reported") == 1, timeout=60, interval=0.2,
                   message="the drift metric")
        set_config(source, topic, segment_ms="3600000")  # a source change is still applied
        wait_until(lambda: config(target, topic, "segment.ms") == "3600000", timeout=60, interval=0.2,
                   message="the source's change")
        after_rounds(mirror)
        assert config(target, topic, "retention.ms") == TWO_DAYS, "a reported drift is never overwritten"

        status = run_cli("--state", str(state), "mirror", "status", "--name", name, "--format", "json")
        assert status.returncode == 0, status.stderr
        assert {row["config_drift"] for row in json.loads(status.stdout)} == {"retention.ms (reported)"}
        with State(state) as db:
            assessment = run_assessment(db, source, "source", target, "target",
                                        AssessOptions(topics=(topic,), sample_seconds=0))
        found = [f for f in assessment.readiness.findings if f.behaviour.startswith("config drift")]
        assert [(f.subject, f.level) for f in found] == [(topic, "risk")]
        assert f"retention.ms: source {DAY}, target {TWO_DAYS}" in found[0].evidence

        set_config(source, topic, retention_ms=HALF_DAY)  # the source changes the drifted key: that wins
        wait_until(lambda: config(target, topic, "retention.ms") == HALF_DAY, timeout=60, interval=0.2,
                   message="the source's change of the drifted key")
        wait_until(lambda: not mirror.scrape().samples("migrate_mirror_config_drift"), timeout=60, interval=0.2,
                   message="the drift to clear")
    finally:
        assert mirror.stop() == 0, mirror.stderr()
    drift_lines = lines(mirror, "topic config drift: retention.ms")
    assert len(drift_lines) == 1 and "left as it is (--config-drift report)" in drift_lines[0]


def test_a_config_the_target_platform_refuses_is_one_warning_and_never_a_stop(cluster_pool, tmp_path):
    # Tansu stores any key; noida-db, like Kafka, refuses keys it does not know (INVALID_CONFIG).
    source, target = cluster_pool("source", "tansu").profile, cluster_pool("target", "noida").profile
    topic = unique("cfgrefused")
    make_topic(source, topic, 1, {"x.team": "payments", "retention.ms": DAY})
    produce_workload(source, topic, 50, partitions=1)
    mirror = MetricsMirror(tmp_path / "state.db", source, target, topic, unique("m"), "--refresh-interval", "0.5",
                           "--config-include", r"x\..*")
    try:
        wait_until(lambda: mirror.scrape().value("migrate_mirror_config_drift", topic=topic, key="x.team",
                                                 state="refused") == 1, timeout=60, interval=0.2,
                   message="the refusal to be reported")
        after_rounds(mirror, 3)
        produce_workload(source, topic, 50, partitions=1, seed=3)
        wait_until(lambda: read_contents(target, topic) == read_contents(source, topic), timeout=60, interval=0.5,
                   message="the records to be mirrored")
        assert config(target, topic, "retention.ms") == DAY  # the built-in configs were created
        scrape = mirror.scrape()
    finally:
        assert mirror.stop() == 0, mirror.stderr()
    refused = lines(mirror, "refused topic config x.team=payments")
    assert len(refused) == 1, mirror.stderr()
    assert "INVALID_CONFIG" in refused[0] and "tried again when source topic" in refused[0]
    assert scrape.value("migrate_mirror_config_changes_total", topic=topic, key="x.team", outcome="refused") == 1
    assert not lines(mirror, "Traceback")
