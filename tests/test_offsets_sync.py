"""Group offsets on real brokers: state detection, sync, and every refusal.

These tests build a small mirror by hand (identical records written to both clusters and
the matching map saved in the state), so that they exercise the group side alone; the
exactness proof over a real `migrate mirror` run is in test_offsets_exact.py.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from confluent_kafka import TopicPartition

from migrate import groups as kgroups
from migrate import kafka
from migrate.cli.offsets import summary
from migrate.config import ClusterProfile
from migrate.offset_maps import checkpoint
from migrate.offset_maps import route as offroute
from migrate.offset_maps import sync as offsync
from migrate.offset_maps.runs import PartitionMap, Run
from migrate.offset_maps.store import MapStore
from migrate.state import State
from support import run_cli, unique, wait_until

RECORDS = 20


def group_settings(platform: str) -> dict:
    # Tansu joins in ~session/2, so a short session; noida (like Kafka) refuses sessions below 6 s
    timeout = 2000 if platform == "tansu" else 6000
    return {"session.timeout.ms": timeout, "heartbeat.interval.ms": 200}


def write_records(profile: ClusterProfile, topic: str, partitions: int) -> None:
    kafka.create_topic(profile, topic, partitions)
    kafka.wait_for_topic(profile, topic, partitions)
    producer = kafka.producer(profile)
    for p in range(partitions):
        for i in range(RECORDS):
            producer.produce(topic, key=f"k{i}".encode(), value=f"{topic}-{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0


def fake_mirror(state: State, name: str, source: ClusterProfile, target: ClusterProfile, topic: str,
                to_topic: str, partitions: int, pmap_for) -> None:
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    with state.transaction() as db:
        db.execute("INSERT INTO mirrors (name, source, target, topics, exclude, rename, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, '[]', '{topic}', ?, ?)",
                   [name, source.bootstrap, target.bootstrap, json.dumps([topic]), now, now])
        db.execute("INSERT INTO topic_mappings (mirror, source_topic, target_topic, partitions) VALUES (?, ?, ?, ?)",
                   [name, topic, to_topic, partitions])
    store = MapStore(state, name)
    for p in range(partitions):
        store.replace(topic, p, pmap_for(p), to_topic)


@pytest.fixture
def estate(tmp_path, source_cluster, target_cluster):
    """Source topic and target topic with the same 20 records per partition, mapped 1:1."""
    topic, to_topic = unique("orders"), unique("orders-copy")
    write_records(source_cluster.profile, topic, 2)
    write_records(target_cluster.profile, to_topic, 2)
    state = State(tmp_path / "state.db")
    name = unique("m")
    fake_mirror(state, name, source_cluster.profile, target_cluster.profile, topic, to_topic, 2,
                lambda p: PartitionMap([Run(0, 0, RECORDS)], 0, RECORDS, RECORDS))
    yield state, name, topic, to_topic
    state.close()


def set_offsets(profile: ClusterProfile, group: str, offsets: dict[tuple[str, int], int]) -> None:
    assert kgroups.commit(profile, {group: offsets}) == {group: None}


def committed(profile: ClusterProfile, group: str) -> dict[tuple[str, int], int]:
    return kgroups.committed(profile, [group])[group]


class Member:
    """A live group member (subscribe), so the group is active on its cluster."""

    def __init__(self, cluster, group: str, topic: str):
        self.consumer = kafka.consumer(cluster.profile, **{"group.id": group, "auto.offset.reset": "earliest",
                                                           **group_settings(cluster.platform)})
        self.consumer.subscribe([topic])
        wait_until(lambda: self.consumer.poll(0.1) is not None or self.consumer.assignment(), timeout=30,
                   message=f"group {group} to get an assignment")

    def close(self) -> None:
        self.consumer.close()


def test_group_state_detection(any_cluster):
    profile = any_cluster.profile
    topic, group = unique("gs"), unique("g")
    write_records(profile, topic, 1)
    assert kgroups.describe(profile, [group])[group].active is False  # never seen
    set_offsets(profile, group, {(topic, 0): 3})
    info = kgroups.describe(profile, [group])[group]
    assert (info.state, info.active) == ("EMPTY", False)
    member = Member(any_cluster, group, topic)
    try:
        info = wait_until(lambda: (i := kgroups.describe(profile, [group])[group]).active and i, timeout=20,
                          message="group to be reported active")
        assert info.state == "STABLE"
        if any_cluster.platform == "tansu":
            # known Tansu limit (brokers.md deviation 6): state right, member list always empty
            assert info.members is None and "not reported" in info.members_text
        else:
            assert info.members == 1
        # the broker refuses offsets for an active group, per partition: reported, not raised
        assert kgroups.commit(profile, {group: {(topic, 0): 7}}) == {group: "active"}
    finally:
        member.close()
    wait_until(lambda: not kgroups.describe(profile, [group])[group].active, timeout=20,
               message="group to become inactive")
    assert committed(profile, group) == {(topic, 0): 3}


def test_sync_commits_exact_offsets_and_is_idempotent(estate, source_cluster, target_cluster):
    state, name, topic, to_topic = estate
    group = unique("g")
    set_offsets(source_cluster.profile, group, {(topic, 0): 5, (topic, 1): RECORDS})
    route = offroute.build_route(state, name, source_cluster.profile, target_cluster.profile)

    rows = offsync.translate_groups(route, [group])
    assert [(r.partition, r.committed, r.to_topic, r.to_offset, r.status, r.end, r.lag, r.to_end, r.to_lag)
            for r in rows] == [(0, 5, to_topic, 5, "exact", RECORDS, 15, RECORDS, 15),
                               (1, RECORDS, to_topic, RECORDS, "end", RECORDS, 0, RECORDS, 0)]

    dry = checkpoint.sync_groups(route, [group], dry_run=True)
    assert dry[0].outcome == "would-change"
    assert committed(target_cluster.profile, group) == {}  # a dry run commits nothing

    first = checkpoint.sync_groups(route, [group])
    assert first[0].outcome == "changed"
    assert [(c.to_topic, c.partition, c.current, c.new, c.action) for c in first[0].changes] == [
        (to_topic, 0, None, 5, "commit"), (to_topic, 1, None, RECORDS, "commit")]
    assert committed(target_cluster.profile, group) == {(to_topic, 0): 5, (to_topic, 1): RECORDS}

    second = checkpoint.sync_groups(route, [group])
    assert second[0].outcome == "unchanged" and second[0].reason == "already in sync"
    assert summary(second, "target") == 'nothing to change: all 1 group already in sync on "target"'


def test_sync_refuses_rewind_unless_allowed(estate, source_cluster, target_cluster):
    state, name, topic, to_topic = estate
    group = unique("g")
    set_offsets(source_cluster.profile, group, {(topic, 0): 4})
    set_offsets(target_cluster.profile, group, {(to_topic, 0): 12})
    route = offroute.build_route(state, name, source_cluster.profile, target_cluster.profile)
    refused = checkpoint.sync_groups(route, [group])[0]
    assert refused.outcome == "refused"
    assert "back from 12 to 4" in refused.reason and "--allow-rewind" in refused.reason
    assert committed(target_cluster.profile, group) == {(to_topic, 0): 12}
    allowed = checkpoint.sync_groups(route, [group], allow_rewind=True)[0]
    assert allowed.outcome == "changed" and allowed.changes[0].action == "rewind"
    assert committed(target_cluster.profile, group) == {(to_topic, 0): 4}


def test_sync_refuses_untranslatable_offsets_and_commits_nothing(tmp_path, source_cluster, target_cluster):
    topic, to_topic = unique("orders"), unique("orders-copy")
    write_records(source_cluster.profile, topic, 2)
    write_records(target_cluster.profile, to_topic, 2)
    with State(tmp_path / "state.db") as state:
        name = unique("m")
        # partition 0: the mirror has reached only source offset 8; partition 1 began at 10 (retention)
        maps = {0: PartitionMap([Run(0, 0, 8)], 0, 8, 8), 1: PartitionMap([Run(10, 0, 10)], 10, 20, 10)}
        fake_mirror(state, name, source_cluster.profile, target_cluster.profile, topic, to_topic, 2, maps.get)
        group = unique("g")
        set_offsets(source_cluster.profile, group, {(topic, 0): 15, (topic, 1): 12})
        route = offroute.build_route(state, name, source_cluster.profile, target_cluster.profile)
        result = checkpoint.sync_groups(route, [group])[0]
        assert result.outcome == "refused"
        assert "not-yet" in result.reason and "7 short of 15" in result.reason
        assert committed(target_cluster.profile, group) == {}  # partition 1 was translatable, yet nothing

        set_offsets(source_cluster.profile, group, {(topic, 0): 5, (topic, 1): 3})
        result = checkpoint.sync_groups(route, [group])[0]
        assert result.outcome == "refused" and "before-start" in result.reason
        assert committed(target_cluster.profile, group) == {}

        # continuous mode commits what is exact and leaves the rest for a later round
        partial = checkpoint.sync_groups(route, [group], partial=True)[0]
        assert partial.outcome == "changed"
        assert committed(target_cluster.profile, group) == {(to_topic, 0): 5}


def test_sync_refuses_group_active_on_receiving_side(estate, source_cluster, target_cluster):
    state, name, topic, to_topic = estate
    group = unique("g")
    set_offsets(source_cluster.profile, group, {(topic, 0): 6})
    member = Member(target_cluster, group, to_topic)
    try:
        route = offroute.build_route(state, name, source_cluster.profile, target_cluster.profile)
        result = checkpoint.sync_groups(route, [group])[0]
        assert result.outcome == "refused"
        assert f'group "{group}" has active members (member count not reported by this platform)' in result.reason
        assert "nothing committed" in result.reason
        skipped = checkpoint.sync_groups(route, [group], partial=True, skip_active=True)[0]
        assert skipped.outcome == "skipped"
    finally:
        member.close()
    wait_until(lambda: not kgroups.describe(target_cluster.profile, [group])[group].active, timeout=20,
               message="group to leave")
    # the member itself committed nothing (auto commit off); sync did not either
    assert committed(target_cluster.profile, group) == {}


def test_reverse_sync_through_the_forward_map(estate, source_cluster, target_cluster):
    state, name, topic, to_topic = estate
    group = unique("g")
    set_offsets(target_cluster.profile, group, {(to_topic, 0): 9, (to_topic, 1): RECORDS})
    set_offsets(source_cluster.profile, group, {(topic, 0): 2})
    route = offroute.build_route(state, name, source_cluster.profile, target_cluster.profile, reverse=True)
    result = checkpoint.sync_groups(route, [group])[0]
    assert result.outcome == "changed"
    assert committed(source_cluster.profile, group) == {(topic, 0): 9, (topic, 1): RECORDS}


def test_sync_groups_once_matches_by_regex(estate, source_cluster, target_cluster):
    state, name, topic, to_topic = estate
    prefix = unique("wf")
    match, other = f"{prefix}-a", f"other-{prefix}"
    for group in (match, other):
        set_offsets(source_cluster.profile, group, {(topic, 0): 7})
    changes = checkpoint.sync_groups_once(state, name, source_cluster.profile, target_cluster.profile,
                                          f"{prefix}-.*")
    assert [(c.group, c.to_topic, c.partition, c.new) for c in changes] == [(match, to_topic, 0, 7)]
    assert committed(target_cluster.profile, other) == {}
    # never rewinds: a target group ahead stays where it is
    set_offsets(source_cluster.profile, match, {(topic, 0): 3})
    assert checkpoint.sync_groups_once(state, name, source_cluster.profile, target_cluster.profile,
                                       f"{prefix}-.*") == []
    assert committed(target_cluster.profile, match) == {(to_topic, 0): 7}


def test_timestamp_fallback_is_marked_approximate(tmp_path, source_cluster, target_cluster):
    topic, to_topic = unique("orders"), unique("orders-copy")
    write_records(source_cluster.profile, topic, 1)
    # the target holds only the source's records 10.. (the mirror began at 10), same timestamps
    kafka.create_topic(target_cluster.profile, to_topic, 1)
    kafka.wait_for_topic(target_cluster.profile, to_topic, 1)
    reader = kafka.consumer(source_cluster.profile)
    reader.assign([TopicPartition(topic, 0, 0)])
    records = []
    while len(records) < RECORDS:
        records.extend(m for m in reader.consume(100, timeout=1) if m.error() is None)
    reader.close()
    producer = kafka.producer(target_cluster.profile)
    for m in records[10:]:
        producer.produce(to_topic, key=m.key(), value=m.value(), partition=0, timestamp=m.timestamp()[1])
    assert producer.flush(30) == 0
    with State(tmp_path / "state.db") as state:
        name = unique("m")
        fake_mirror(state, name, source_cluster.profile, target_cluster.profile, topic, to_topic, 1,
                    lambda p: PartitionMap([Run(10, 0, 10)], 10, 20, 10))
        group = unique("g")
        set_offsets(source_cluster.profile, group, {(topic, 0): 4})
        exact_only = offroute.build_route(state, name, source_cluster.profile, target_cluster.profile)
        assert offsync.translate_groups(exact_only, [group])[0].status == "before-start"
        route = offroute.build_route(state, name, source_cluster.profile, target_cluster.profile,
                                     fallback="timestamp")
        row = offsync.translate_groups(route, [group])[0]
        assert row.status == "approximate" and row.note.startswith("approximate")
        ts4 = records[4].timestamp()[1]
        expected = next((i for i, m in enumerate(records[10:]) if m.timestamp()[1] >= ts4), 10)
        assert row.to_offset == expected


def test_cli_translate_and_sync(estate, tmp_path, source_cluster, target_cluster):
    state, name, topic, to_topic = estate
    group = unique("g")
    set_offsets(source_cluster.profile, group, {(topic, 0): 5, (topic, 1): 25})
    base = ["--state", str(state.path), "--config", str(tmp_path / "none.toml"), "offsets"]
    out = run_cli(*base, "translate", "--name", name, "--group", group, "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["partition"], r["to_offset"], r["status"], r["behind"]) for r in rows] == [
        (0, 5, "exact", 0), (1, None, "not-yet", 5)]

    out = run_cli(*base, "sync", "--name", name, "--group", group)
    assert out.returncode == 2
    assert out.stderr.startswith(f'error: 1 of 1 group refused: group "{group}": {topic}[1]@25 is not-yet')
    assert "nothing committed" in out.stderr and "Traceback" not in out.stderr
    assert committed(target_cluster.profile, group) == {}

    set_offsets(source_cluster.profile, group, {(topic, 1): 20})
    out = run_cli(*base, "sync", "--name", name, "--group", group, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert '1 group: 1 would-change; partitions: 2 would commit on "target"' in out.stdout
    assert committed(target_cluster.profile, group) == {}
    out = run_cli(*base, "sync", "--name", name, "--group", group)
    assert out.returncode == 0, out.stderr
    assert '1 group: 1 changed; partitions: 2 committed on "target"' in out.stdout
    out = run_cli(*base, "sync", "--name", name, "--group", group)
    assert out.returncode == 0 and "nothing to change: all 1 group already in sync" in out.stdout
    assert committed(target_cluster.profile, group) == {(to_topic, 0): 5, (to_topic, 1): 20}

    out = run_cli(*base, "translate", "--name", name, "--group", group, "--reverse", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert [(r["topic"], r["to_topic"], r["to_offset"], r["status"]) for r in json.loads(out.stdout)] == [
        (to_topic, topic, 5, "exact"), (to_topic, topic, 20, "end")]

    out = run_cli(*base, "sync", "--name", "no-such-mirror", "--group", group)
    assert out.returncode == 2 and out.stderr.startswith('error: no mirror named "no-such-mirror" is recorded')


def test_mirror_follow_syncs_matching_groups_continuously(tmp_path, source_cluster, target_cluster):
    """`migrate mirror --follow --sync-groups REGEX`: matching groups follow, never rewound."""
    import signal
    import subprocess
    import sys

    topic = unique("live")
    write_records(source_cluster.profile, topic, 1)
    prefix = unique("team")
    first, second, other = f"{prefix}-a", f"{prefix}-b", unique("other")
    set_offsets(source_cluster.profile, first, {(topic, 0): 7})
    set_offsets(source_cluster.profile, other, {(topic, 0): 9})
    state_file = tmp_path / "state.db"
    mirror = subprocess.Popen(
        [sys.executable, "-m", "migrate", "--state", str(state_file), "--config", str(tmp_path / "none.toml"),
         "mirror", "--source", source_cluster.bootstrap, "--target", target_cluster.bootstrap,
         "--topics", topic, "--name", unique("live"), "--follow", "--sync-groups", f"{prefix}-.*",
         "--sync-interval", "1", "--session-timeout-ms", "6000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: committed(target_cluster.profile, first) == {(topic, 0): 7}, timeout=60,
                   message="the first group to be synced by the running mirror")
        # a rewind on the source is not followed; a new matching group is picked up
        set_offsets(source_cluster.profile, first, {(topic, 0): 3})
        set_offsets(source_cluster.profile, second, {(topic, 0): RECORDS})
        wait_until(lambda: committed(target_cluster.profile, second) == {(topic, 0): RECORDS}, timeout=60,
                   message="the second group to be synced")
        set_offsets(source_cluster.profile, second, {(topic, 0): 5})
        set_offsets(source_cluster.profile, first, {(topic, 0): 11})  # forward again: followed
        wait_until(lambda: committed(target_cluster.profile, first) == {(topic, 0): 11}, timeout=60,
                   message="the first group to move forward")
        assert committed(target_cluster.profile, second) == {(topic, 0): RECORDS}  # never rewound
        assert committed(target_cluster.profile, other) == {}  # not matched
    finally:
        mirror.send_signal(signal.SIGINT)
        try:
            _, err = mirror.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            mirror.kill()
            _, err = mirror.communicate()
    assert "Traceback" not in err, err
