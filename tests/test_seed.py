"""The seeded estate, written by confluent-kafka and read back by kafka-python (the independent client).

One estate is seeded per platform (cached across this module's tests, unique prefix); every
test reads it back and compares it with the pure plan, so what is checked is what a broker
actually stores and returns.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from confluent_kafka.admin import ConfigResource
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.partitioner.default import murmur2

from migrate import kafka
from migrate.errors import UsageError
from migrate.seed import (GROUPS, LARGE_VALUE_BYTES, REFERENCE_MS, SPREAD_MS, TOPICS, WORKFLOWS_PER_SCALE,
                          murmur2_partition, plan_estate, seed_estate)
from support import TestCluster, kafka_python_read, run_cli, unique

CREATE_TIME = 0  # kafka-python's timestamp_type for CreateTime


@dataclass
class Seeded:
    cluster: TestCluster
    summary: object
    prefix: str
    reads: dict = field(default_factory=dict)

    def read(self, suffix: str, isolation: str = "read_uncommitted", prefix: str | None = None) -> dict[int, list]:
        key = (prefix or self.prefix, suffix, isolation)
        if key not in self.reads:
            self.reads[key] = kafka_python_read(self.cluster.profile, key[0] + suffix, isolation=isolation)
        return self.reads[key]


_seeded: dict[tuple[str, int], Seeded] = {}
PLAN = plan_estate()


@pytest.fixture
def seeded(any_cluster) -> Seeded:
    """One estate per broker process, seeded on first use."""
    key = (any_cluster.platform, any_cluster.broker.pid)
    if key not in _seeded:
        prefix = unique("seed") + "."
        _seeded[key] = Seeded(any_cluster, seed_estate(any_cluster.profile, prefix=prefix), prefix)
    return _seeded[key]


def contents(records) -> list[tuple]:
    return [(r.key, r.value, tuple(tuple(h) for h in r.headers), r.timestamp) for r in records]


def planned(records) -> list[tuple]:
    return [(r.key, r.value, r.headers, r.timestamp) for r in records]


# --- the plan (pure) ---------------------------------------------------------------------------


def test_partitioner_is_the_java_clients():
    for key in (b"", b"a", b"ab", b"abc", b"abcd", b"wf-000042", "é-ü".encode()):
        for partitions in (1, 3, 6, 1000003):
            assert murmur2_partition(key, partitions) == (murmur2(key) & 0x7FFFFFFF) % partitions


def test_plan_is_deterministic_and_scales():
    assert plan_estate(seed=7) == PLAN
    assert plan_estate(seed=8).records != PLAN.records
    assert PLAN.workflows == WORKFLOWS_PER_SCALE
    assert 2000 <= len(PLAN.records) <= 5000
    assert plan_estate(scale=2).workflows == 2 * WORKFLOWS_PER_SCALE
    assert all(REFERENCE_MS - SPREAD_MS <= r.timestamp < REFERENCE_MS for r in PLAN.records)
    with pytest.raises(UsageError):
        plan_estate(scale=0)


# --- what the broker holds -------------------------------------------------------------------


def test_topics_partitions_and_configs(seeded):
    reader = KafkaConsumer(bootstrap_servers=seeded.cluster.bootstrap)
    try:
        for spec in TOPICS:
            assert reader.partitions_for_topic(seeded.prefix + spec.suffix) == set(range(spec.partitions))
    finally:
        reader.close()
    assert described_configs(seeded, "workflow.state")["cleanup.policy"] == "compact"
    assert described_configs(seeded, "audit.log")["retention.ms"] == "-1"
    # Records are dated before 2026-11-20: a retention shorter than their age would delete them.
    assert int(described_configs(seeded, "workflow.events")["retention.ms"]) >= 5 * 365 * 24 * 3600 * 1000
    assert [t.partitions for t in seeded.summary.topics] == [6, 3, 3, 3, 1, 3, 2]


def described_configs(seeded: Seeded, suffix: str) -> dict[str, str]:
    # Every reported value, default or not: Tansu flags even explicitly set configs as defaults.
    resource = ConfigResource(ConfigResource.Type.TOPIC, seeded.prefix + suffix)
    client = kafka.admin(seeded.cluster.profile)
    entries = client.describe_configs([resource], request_timeout=15)[resource].result(15)
    return {key: entry.value for key, entry in entries.items()}


def test_every_record_as_planned(seeded):
    """Keys, values, headers (duplicates, binary, null), timestamps and partitions, in offset order."""
    expected = PLAN.by_partition(include_aborted=True)
    for spec in TOPICS:
        got = seeded.read(spec.suffix)
        for partition in range(spec.partitions):
            records = got[partition]
            assert contents(records) == planned(expected[(spec.suffix, partition)]), (spec.suffix, partition)
            assert all(r.timestamp_type == CREATE_TIME for r in records)


def test_events_of_a_workflow_are_ordered_in_one_partition(seeded):
    by_workflow: dict[bytes, list] = defaultdict(list)
    for partition, records in seeded.read("workflow.events").items():
        for r in records:
            by_workflow[r.key].append((partition, r.offset, {**json.loads(r.value), "ts": r.timestamp}))
    assert len(by_workflow) == PLAN.workflows
    for key, events in by_workflow.items():
        assert len({p for p, _, _ in events}) == 1, key
        events.sort(key=lambda e: e[1])
        types = [e["type"] for _, _, e in events]
        assert [e["seq"] for _, _, e in events] == list(range(len(events)))
        assert types[0] == "workflow.started" and types[-1] in ("workflow.completed", "workflow.compensated")
        body = types[1:-1]
        if body[-1] == "approval":
            body = body[:-1]
        assert body == ["agent.decision", "tool.call", "tool.result"] * (len(body) // 3), (key, types)
        timestamps = [e["ts"] for _, _, e in events]
        assert timestamps == sorted(timestamps)


def test_headers(seeded):
    calls = [r for rs in seeded.read("tool.calls").values() for r in rs]
    started = [r for rs in seeded.read("workflow.events").values() for r in rs
               if json.loads(r.value)["type"] == "workflow.started"]
    results = [r for rs in seeded.read("tool.results").values() for r in rs]
    for r in calls + started + results:
        names = [k for k, _ in r.headers]
        assert names[:2] == ["trace-id", "agent"]
    assert any([k for k, _ in r.headers].count("hop") == 2 for r in calls), "duplicate header keys"
    assert all(("parent-span", None) in r.headers for r in started), "null header value"
    signatures = [dict(r.headers)["signature"] for r in results]
    assert any(not _is_utf8(s) for s in signatures), "binary header values"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_tombstones_null_keys_and_large_values(seeded):
    summary = seeded.summary
    state = [r for rs in seeded.read("workflow.state").values() for r in rs]
    assert sum(r.value is None for r in state) == summary.topic("workflow.state").tombstones > 0
    audit = [r for rs in seeded.read("audit.log").values() for r in rs]
    assert sum(r.key is None for r in audit) == summary.topic("audit.log").null_keys > 0
    results = seeded.read("tool.results", "read_committed")
    large = [r for rs in results.values() for r in rs if len(r.value) >= LARGE_VALUE_BYTES]
    assert len(large) == summary.topic("tool.results").large_values >= 1
    assert all(len(r.value) < 150 * 1024 for r in large)


def test_aborted_records_are_invisible_to_read_committed(seeded):
    expected = PLAN.by_partition(include_aborted=False)
    assert seeded.summary.transactions_aborted > 0
    visible_aborted = 0
    for suffix in ("tool.results", "workflow.state"):
        got = seeded.read(suffix, "read_committed")
        everything = seeded.read(suffix, "read_uncommitted")
        for partition, records in got.items():
            visible_aborted += len(records) - len(expected[(suffix, partition)])
            if len(records) != len(expected[(suffix, partition)]):
                assert contents(records) == contents(everything[partition])
                continue
            assert contents(records) == planned(expected[(suffix, partition)])
    if visible_aborted and seeded.cluster.platform == "tansu":
        pytest.xfail(f"known Tansu limit (deviation 3): read_committed shows {visible_aborted} records "
                     "of aborted transactions")
    assert visible_aborted == 0


def test_group_offsets_as_designed(seeded):
    summary = seeded.summary
    wanted = [(seeded.prefix + t.suffix, p) for t in TOPICS for p in range(t.partitions)]
    ends = kafka.partition_ends(seeded.cluster.profile, wanted, isolation="read_uncommitted")
    admin = KafkaAdminClient(bootstrap_servers=seeded.cluster.bootstrap)
    try:
        committed = {}
        for spec in GROUPS:  # one group per request: older OffsetFetch versions take only one
            fetched = admin.list_group_offsets({seeded.prefix + spec.suffix: None})[seeded.prefix + spec.suffix]
            committed[spec.suffix] = {(tp.topic, tp.partition): meta.offset for tp, meta in fetched.items()
                                      if meta.offset >= 0}
    finally:
        admin.close()
    for spec in GROUPS:
        assert committed[spec.suffix] == {(t, p): o for t, p, o in summary.group(spec.suffix).offsets}, spec.suffix
    orchestrator = committed["orchestrator"]
    assert orchestrator == {k: ends[k].high for k in wanted if k[0] == seeded.prefix + "workflow.events"}
    lagging = committed["decision-auditor"]
    assert len(lagging) == 3
    assert all(0 < offset < ends[k].high and offset == ends[k].high * 2 // 3 for k, offset in lagging.items())
    assert sorted(p for _, p in committed["tool-runner"]) == [0, 1]
    billing = committed["billing-projector"]
    assert billing == {k: ends[k].high for k in wanted if k[0].endswith(("tool.results", "workflow.state"))}
    assert committed["approval-bot"] == {}
    assert summary.group("approval-bot").position == "no-commits"


def test_same_seed_writes_identical_estates_and_reseeding_is_refused(seeded):
    """A second estate with the same seed, through the CLI, equals the first record for record."""
    other = unique("seed2") + "."
    result = run_cli("local", "seed", "--cluster", seeded.cluster.bootstrap, "--prefix", other, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows if r["kind"] == "topic"] == [other + t.suffix for t in TOPICS]
    # The topics with transactions, tombstones, null keys and large values; the rest are plain.
    for spec in [t for t in TOPICS if t.suffix in ("tool.results", "workflow.state", "audit.log")]:
        first = seeded.read(spec.suffix)
        second = seeded.read(spec.suffix, prefix=other)
        for partition in range(spec.partitions):
            assert [(r.offset, *c) for r, c in zip(second[partition], contents(second[partition]))] == \
                   [(r.offset, *c) for r, c in zip(first[partition], contents(first[partition]))]

    admin = KafkaAdminClient(bootstrap_servers=seeded.cluster.bootstrap)
    try:
        for spec in GROUPS:
            fetched = admin.list_group_offsets({other + spec.suffix: None})[other + spec.suffix]
            offsets = sorted((tp.topic[len(other):], tp.partition, m.offset) for tp, m in fetched.items())
            first = sorted((t[len(seeded.prefix):], p, o) for t, p, o in seeded.summary.group(spec.suffix).offsets)
            assert offsets == first, spec.suffix
    finally:
        admin.close()

    again = run_cli("local", "seed", "--cluster", seeded.cluster.bootstrap, "--prefix", other)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "already has estate topics" in again.stderr
    assert "--prefix" in again.stderr and "Traceback" not in again.stderr
    with pytest.raises(UsageError):
        seed_estate(seeded.cluster.profile, prefix=seeded.prefix)
