"""Cutover and rollback end to end on real brokers, with live producers and consumers.

The proof is the apps' own files: every event the producer had acknowledged must be
processed exactly once by each consumer group, across both clusters (see migrate.demo.live).
Source is noida-db (the faithful Kafka), target is Tansu (the Kafka-compatible platform).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import kafka
from migrate.demo.live import LiveApps
from migrate.playbooks import processes
from migrate.state import State
from support import run_cli, unique, wait_until


class Estate:
    """Two clusters as profiles `source` and `target`, a live topic, its groups and apps."""

    def __init__(self, tmp_path: Path, source, target, rate: float = 150.0):
        self.tmp = tmp_path
        self.source, self.target = source, target
        self.config = tmp_path / "migrate.toml"
        self.config.write_text(f'[clusters.source]\n"bootstrap.servers" = "{source.bootstrap}"\n\n'
                               f'[clusters.target]\n"bootstrap.servers" = "{target.bootstrap}"\n')
        self.state_path = tmp_path / "state.db"
        self.topic = unique("live")
        self.groups = [unique("engine"), unique("audit")]
        self.mirror = unique("fwd")
        self.reverse = unique("back")
        kafka.create_topic(source.profile, self.topic, 3)
        kafka.wait_for_topic(source.profile, self.topic, 3)
        self.apps = LiveApps(tmp_path / "apps", source.bootstrap, target.bootstrap, self.topic, self.groups,
                             rate=rate)

    def vars(self, playbook: str = "cutover", probe: bool = False, **extra: str) -> list[str]:
        values = {"groups": ",".join(self.groups), "mirror": self.mirror, "reverse_mirror": self.reverse}
        if playbook == "cutover":
            values["topics"] = re.escape(self.topic)
            if not probe:  # the platform probe of the target is proven once, below; it costs seconds
                values["requires"] = ""
        hooks = self.apps.hook_vars()
        names = (["stop_source_consumers", "start_target_consumers", "stop_source_producers",
                  "start_target_producers", "start_source_consumers", "start_source_producers"]
                 if playbook == "cutover" else
                 ["stop_target_consumers", "start_source_consumers", "stop_target_producers",
                  "start_source_producers"])
        values.update({n: hooks[n] for n in names})
        values.update(extra)
        out = []
        for key, value in values.items():
            out += ["--var", f"{key}={value}"]
        return out

    def env(self) -> dict[str, str]:
        return {"MIGRATE_STATE": str(self.state_path), "MIGRATE_CONFIG": str(self.config)}

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_cli(*args, env=self.env(), cwd=self.tmp, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen:
        import os

        return subprocess.Popen([sys.executable, "-m", "migrate", *args], env={**os.environ, **self.env()},
                                cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def close(self) -> None:
        self.apps.stop()
        if self.state_path.exists():
            state = State(self.state_path)
            for (key,) in state.db.execute("SELECT key FROM playbook_processes").fetchall():
                processes.stop(state, key, grace=10)
            state.close()


@pytest.fixture
def estate(tmp_path, source_cluster, target_cluster):
    made = Estate(tmp_path, source_cluster, target_cluster)
    yield made
    made.close()


def _ok(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


def _assert_exact(proof) -> None:
    assert proof.produced > 0
    for group in proof.groups:
        assert (group.lost, group.twice, group.unknown) == (0, 0, 0), (proof, group)


@pytest.fixture
def reverse_estate(tmp_path, cluster_pool):
    """The other direction: from Tansu (the Kafka-compatible platform) back to noida-db."""
    made = Estate(tmp_path, cluster_pool("source", "tansu"), cluster_pool("target", "noida"))
    yield made
    made.close()


@pytest.mark.slow  # brokers, through request.getfixturevalue
@pytest.mark.parametrize("direction", ["noida-to-tansu", "tansu-to-noida"])
def test_cutover_with_live_apps_processes_every_event_exactly_once(request, direction):
    estate = request.getfixturevalue("estate" if direction == "noida-to-tansu" else "reverse_estate")
    estate.apps.start()
    estate.apps.wait_processed(50)
    outcome = _ok(estate.cli("playbook", "run", "cutover", "--yes", *estate.vars(probe=True), "--format", "json"))
    assert outcome["status"] == "succeeded"
    assert outcome["downtime_s"] is not None
    preflight = outcome["steps"][0]
    assert preflight["name"] == "preflight probe"
    assert "target: meets produce-fetch-fidelity, transactions" in preflight["output"], preflight
    statuses = {s["name"]: s["status"] for s in outcome["steps"]}
    assert statuses["parity gate"] == statuses["post-cutover parity"] == "ok", outcome["steps"][-1]
    before = estate.apps.produced()
    estate.apps.wait_processed(before + 100)  # the apps now live on the target
    proof = estate.apps.drain_and_stop()
    _assert_exact(proof)
    produced_on_target = before  # events after the move were produced on the target
    assert proof.produced > produced_on_target


def _events(profile, topic) -> list[dict]:
    from support import kafka_python_read

    return [json.loads(r.value) for records in kafka_python_read(profile, topic).values() for r in records]


def test_cutover_then_rollback_round_trip_exactly_once_and_target_events_reach_source(estate):
    estate.apps.start()
    estate.apps.wait_processed(50)
    _ok(estate.cli("playbook", "run", "cutover", "--yes", *estate.vars(), "--format", "json"))
    estate.apps.wait_processed(estate.apps.produced() + 100)  # running on the target now
    outcome = _ok(estate.cli("playbook", "run", "rollback", "--yes", *estate.vars("rollback"), "--format", "json"))
    assert outcome["status"] == "succeeded"
    assert outcome["steps"][-1]["name"] == "parity after rollback"
    assert outcome["steps"][-1]["status"] == "ok", outcome["steps"][-1]
    assert outcome["downtime_s"] is not None
    estate.apps.wait_processed(estate.apps.produced() + 100)  # and back on the source
    proof = estate.apps.drain_and_stop()
    _assert_exact(proof)
    on_target = {e["event_id"] for e in _events(estate.target.profile, estate.topic) if e["produced_on"] == "target"}
    source_events = _events(estate.source.profile, estate.topic)
    assert on_target and on_target <= {e["event_id"] for e in source_events}
    ids = [e["event_id"] for e in source_events]
    assert len(ids) == len(set(ids))  # nothing that came from the source was mirrored back


def _running_step(state_path: Path) -> tuple[str, str] | None:
    if not state_path.exists():
        return None
    state = State(state_path)
    try:
        row = state.db.execute("SELECT run_id, name FROM playbook_steps WHERE status = 'running'").fetchone()
        return (row[0], row[1]) if row else None
    finally:
        state.close()


def test_playbook_killed_mid_cutover_resumes_with_the_same_guarantees(estate):
    estate.apps.start()
    estate.apps.wait_processed(50)
    proc = estate.popen("playbook", "run", "cutover", "--yes", *estate.vars(), "--format", "json")
    try:
        found = wait_until(lambda: (_running_step(estate.state_path) or ("", ""))[1] == "start target consumers"
                           and _running_step(estate.state_path), timeout=120, interval=0.01,
                           message="the cutover to reach 'start target consumers'")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    run_id = found[0]
    history = _ok(estate.cli("playbook", "history", "--format", "json"))
    assert history[0]["id"] == run_id and history[0]["status"] == "killed"
    outcome = _ok(estate.cli("playbook", "resume", run_id, "--yes", "--format", "json"))
    assert outcome["status"] == "succeeded"
    restarted = next(s for s in outcome["steps"] if s["name"] == "start target consumers")
    assert restarted["status"] == "ok"
    estate.apps.wait_processed(estate.apps.produced() + 100)
    _assert_exact(estate.apps.drain_and_stop())


def _group_offsets(profile, groups):
    from migrate import groups as kgroups

    return kgroups.committed(profile, groups)


def _commit(profile, group: str, topic: str, offsets: dict[int, int]) -> None:
    from migrate import groups as kgroups

    assert kgroups.commit(profile, {group: {(topic, p): o for p, o in offsets.items()}}) == {group: None}


def _fill(estate: Estate, count: int) -> None:
    from migrate import kafka as k

    producer = k.producer(estate.source.profile)
    for i in range(count):
        event = {"event_id": f"seed-{i}", "workflow": f"wf-{i % 7}", "produced_on": "source"}
        producer.produce(estate.topic, json.dumps(event).encode(), key=event["workflow"].encode())
    assert producer.flush(30) == 0


def test_rehearsal_with_rollback_leaves_production_groups_and_topics_untouched(estate):
    _fill(estate, 300)
    ends = kafka.partition_ends(estate.source.profile, [(estate.topic, p) for p in range(3)])
    _commit(estate.source.profile, estate.groups[0], estate.topic, {p: ends[(estate.topic, p)].high // 2 for p in range(3)})
    _commit(estate.source.profile, estate.groups[1], estate.topic, {p: ends[(estate.topic, p)].high for p in range(3)})
    groups_before = _group_offsets(estate.source.profile, estate.groups)
    content_before = _events(estate.source.profile, estate.topic)
    hooks = estate.apps.hook_vars()
    result = estate.cli("playbook", "rehearse", "cutover", "--with-rollback", *estate.vars(), "--var",
                        f"stop_target_consumers={hooks['stop_target_consumers']}", "--var",
                        f"stop_target_producers={hooks['stop_target_producers']}", "--format", "json")
    report = _ok(result)
    assert report["passed"] is True, report
    assert [r["playbook"] for r in report["runs"]] == ["cutover", "rollback"]
    assert report["downtime_s"] is not None
    assert all(s["duration_s"] is not None for r in report["runs"] for s in r["steps"])
    # production: the same groups at the same offsets, the same records, nothing on the target
    assert _group_offsets(estate.source.profile, estate.groups) == groups_before
    assert _events(estate.source.profile, estate.topic) == content_before
    assert estate.topic not in kafka.list_topics(estate.target.profile)
    assert _group_offsets(estate.target.profile, estate.groups) == {g: {} for g in estate.groups}
    # the shadows were really used, then cleaned up
    forward = next(s for s in report["runs"][0]["steps"] if s["action"] == "offsets.sync")
    assert forward["data"] == {"groups": 2, "partitions": 6}, forward
    assert all(g + ".rehearsal" in forward["output"] for g in estate.groups)
    back = next(s for s in report["runs"][1]["steps"] if s["action"] == "offsets.sync")
    assert back["status"] == "ok" and back["data"]["partitions"] == 6, back
    prefix = report["shadow_prefix"]
    for cluster in (estate.source, estate.target):
        assert not [t for t in kafka.list_topics(cluster.profile) if t.startswith(prefix)]


MIRROR_ONLY = """
name: mirror-only
vars: {mirror: null, topics: null}
steps:
  - name: mirror running
    action: mirror.start
    with: {name: "${mirror}", source: source, target: target, topics: ["${topics}"]}
  - name: mirror caught up
    action: mirror.wait-caught-up
    with: {name: "${mirror}", max_lag: 0}
"""


@pytest.mark.parametrize("policy", ["abort", "rollback"])
def test_failing_parity_gate_stops_the_cutover_before_consumers_move(estate, policy):
    _fill(estate, 200)
    (estate.tmp / "mirror-only.yaml").write_text(MIRROR_ONLY)
    _ok(estate.cli("playbook", "run", "mirror-only.yaml", "--var", f"mirror={estate.mirror}",
                   "--var", f"topics={re.escape(estate.topic)}", "--format", "json"))
    # a record the source never had appears on the target (another writer): a divergence
    # the running mirror does not look for, but the parity gate must find
    producer = kafka.producer(estate.target.profile)
    producer.produce(estate.topic, b'{"event_id": "intruder"}', partition=0, timestamp=1_700_000_000_000)
    assert producer.flush(30) == 0
    markers = {name: f"touch {name}.ran" for name in
               ["stop_source_consumers", "start_target_consumers", "stop_source_producers",
                "start_target_producers", "start_source_consumers", "start_source_producers"]}
    args = []
    for key, value in {**markers, "groups": ",".join(estate.groups), "mirror": estate.mirror,
                       "topics": re.escape(estate.topic), "parity_gate_on_failure": policy,
                       "requires": ""}.items():
        args += ["--var", f"{key}={value}"]
    result = estate.cli("playbook", "run", "cutover", "--yes", *args, "--format", "json")
    assert result.returncode == 1, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["status"] == {"abort": "failed", "rollback": "rolled-back"}[policy]
    gate = next(s for s in outcome["steps"] if s["name"] == "parity gate")
    assert gate["status"] == "failed" and gate["error"].startswith("divergence found")
    main_steps = [s["name"] for s in outcome["steps"] if s["phase"] == "main"]
    assert main_steps[-1] == "parity gate"  # nothing after the gate ran
    ran = sorted(p.name for p in estate.tmp.glob("*.ran"))
    if policy == "abort":
        assert ran == []
    else:
        assert ran == ["start_source_consumers.ran", "start_source_producers.ran"]
    assert "parity gate" in result.stderr and "divergence" in result.stderr


ASSERTS = """
name: predicates
vars: {mirror: null, groups: null}
steps:
  - name: lag and groups hold
    action: assert
    with:
      lag: {mirror: "${mirror}", max: 0}
      groups: {cluster: source, groups: "${groups}", state: inactive}
  - name: parity holds
    action: assert
    with: {parity: {mirror: "${mirror}"}}
"""


def test_assert_predicates_on_lag_group_state_and_parity(estate):
    _fill(estate, 50)
    (estate.tmp / "mirror-only.yaml").write_text(MIRROR_ONLY)
    (estate.tmp / "asserts.yaml").write_text(ASSERTS)
    _ok(estate.cli("playbook", "run", "mirror-only.yaml", "--var", f"mirror={estate.mirror}",
                   "--var", f"topics={re.escape(estate.topic)}", "--format", "json"))
    args = ["--var", f"mirror={estate.mirror}", "--var", f"groups={','.join(estate.groups)}"]
    held = _ok(estate.cli("playbook", "run", "asserts.yaml", *args, "--format", "json"))
    assert [s["status"] for s in held["steps"]] == ["ok", "ok"]
    assert held["steps"][0]["output"] == "lag 0 <= 0; groups inactive"
    producer = kafka.producer(estate.target.profile)
    producer.produce(estate.topic, b'{"event_id": "intruder"}', partition=1, timestamp=1_700_000_000_000)
    assert producer.flush(30) == 0
    broken = estate.cli("playbook", "run", "asserts.yaml", *args, "--format", "json")
    assert broken.returncode == 1
    steps = json.loads(broken.stdout)["steps"]
    assert steps[1]["status"] == "failed" and steps[1]["error"].startswith("divergence found")


def test_preflight_fails_when_the_target_lacks_what_the_plan_needs(estate):
    """Tansu shows aborted records to read_committed readers (brokers.md, deviation 3)."""
    (estate.tmp / "needs.yaml").write_text("""
name: needs
steps:
  - name: preflight
    action: probe
    with: {clusters: [source, target], target: target, requires: [read-committed-hides-aborted]}
  - name: after
    action: exec
    with: {command: "touch after.ran"}
""")
    result = estate.cli("playbook", "run", "needs.yaml", "--format", "json")
    assert result.returncode == 1
    step = json.loads(result.stdout)["steps"][0]
    assert step["status"] == "failed"
    assert step["error"].startswith("target target does not meet: read-committed-hides-aborted (")
    assert not (estate.tmp / "after.ran").exists()
