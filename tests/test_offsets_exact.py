"""Exactness proof on real brokers: synced group offsets read exactly what the source would.

The seeded estate (transactions with aborts, so marker and aborted-record gaps on a noida-db
source; 21 partitions) is mirrored to Tansu by `migrate mirror`.  For many commit positions
per partition (zero, every gap offset of both kinds, random records, the partition end), a
source group is committed there and synced; a consumer then reads the target from the
group's committed offset (OffsetFetch, as a resuming consumer does), and what it reads must
be, record for record (key, value, headers, timestamp), what the source group would read
next: no duplicate, no loss.  The same in reverse: first through the forward map alone, then
after records were produced directly on the target and copied back by a rollback mirror.
Compaction gaps cannot be produced by either local platform: see test_offset_translate.py.
"""

from __future__ import annotations

import random
import re
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

from migrate import groups as kgroups
from migrate import kafka
from migrate.config import ClusterProfile
from migrate.mirror import MirrorSpec, registry, run_mirror
from migrate.offset_maps import checkpoint
from migrate.offset_maps import route as offroute
from migrate.offset_maps import sync as offsync
from migrate.records import from_message
from migrate.seed import seed_estate
from migrate.state import State
from support import unique

Log = dict[int, tuple]  # offset -> content
Key = tuple[str, int]


def content(message) -> tuple:
    r = from_message(message)
    return (r.key, r.value, r.headers, r.timestamp)


def read_all(profile: ClusterProfile, partitions: list[Key], isolation: str = "read_committed") -> dict[Key, Log]:
    """Every readable record of the partitions, by offset."""
    ends = kafka.partition_ends(profile, partitions, isolation=isolation)
    reader = kafka.consumer(profile, **{"isolation.level": isolation, "enable.partition.eof": True})
    out: dict[Key, Log] = {k: {} for k in partitions}
    try:
        todo = {k for k in partitions if ends[k].high > ends[k].low}
        reader.assign([TopicPartition(t, p, ends[(t, p)].low) for t, p in sorted(todo)])
        deadline = time.monotonic() + 60
        while todo:
            assert time.monotonic() < deadline, f"reading {sorted(todo)[:3]} did not reach the end"
            for m in reader.consume(5000, timeout=0.2):
                key = (m.topic(), m.partition())
                if m.error() is None:
                    out[key][m.offset()] = content(m)
                elif m.error().code() == KafkaError._PARTITION_EOF and m.offset() >= ends[key].high:
                    todo.discard(key)
    finally:
        reader.close()
    return out


def read_from_committed(profile: ClusterProfile, group: str, partitions: list[Key],
                        ends: dict[Key, kafka.PartitionEnds]) -> dict[Key, list[tuple]]:
    """What a consumer of `group` reads next: assign without offsets resumes at the committed ones."""
    reader = kafka.consumer(profile, **{"group.id": group, "enable.partition.eof": True,
                                        "auto.offset.reset": "error"})
    out: dict[Key, list[tuple]] = {k: [] for k in partitions}
    try:
        reader.assign([TopicPartition(t, p) for t, p in partitions])
        todo = set(partitions)
        deadline = time.monotonic() + 60
        while todo:
            assert time.monotonic() < deadline, f"reading {sorted(todo)[:3]} did not reach the end"
            for m in reader.consume(5000, timeout=0.2):
                key = (m.topic(), m.partition())
                if m.error() is None:
                    out[key].append(content(m))
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= ends[key].high:
                        todo.discard(key)
                else:
                    raise AssertionError(f"{group} reading {key}: {m.error()}")
    finally:
        reader.close()
    return out


def after(log: Log, offset: int) -> list[tuple]:
    return [c for o, c in sorted(log.items()) if o >= offset]


def positions(log: Log, raw: Log, low: int, end: int, rng: random.Random) -> list[tuple[int, str]]:
    """Commit positions worth testing, each with its kind."""
    gaps = [(o, "aborted" if o in raw else "marker") for o in range(low, end) if o not in log]
    chosen = [(low, "zero"), (end, "end")]
    for kind in ("aborted", "marker"):  # a sample of each kind keeps the rounds few
        of_kind = [g for g in gaps if g[1] == kind]
        chosen += rng.sample(of_kind, min(6, len(of_kind)))
    records = sorted(log)
    chosen += [(o, "record") for o in rng.sample(records, min(6, len(records)))]
    return sorted(set(chosen))


def commit_rounds(profile: ClusterProfile, prefix: str, plan: dict[Key, list[tuple[int, str]]]) -> dict[str, dict]:
    """One group per round; round r commits every partition at its r-th position (cycling)."""
    rounds = max(len(v) for v in plan.values())
    groups = {}
    for r in range(rounds):
        offsets = {key: plan[key][r % len(plan[key])][0] for key in plan}
        groups[f"{prefix}-r{r}"] = offsets
    assert set(kgroups.commit(profile, groups).values()) == {None}
    return groups


def check_synced(sending_logs: dict[Key, Log], receiving: ClusterProfile, receiving_logs: dict[Key, Log],
                 mapping: dict[str, str], groups: dict[str, dict]) -> list[str]:
    """Assert every synced offset exact; return where a resuming consumer read something else.

    Exactness of the offset: the receiving log read from its start, taken from the committed
    offset on, equals what the sending group reads next.  Then a real consumer resumes from
    the committed offset; any difference there is the receiving platform's (returned).
    """
    committed = kgroups.committed(receiving, list(groups))
    ends = kafka.partition_ends(receiving, list(receiving_logs))
    resumed_wrong = []
    for group, offsets in groups.items():
        read = read_from_committed(receiving, group, [(mapping[t], p) for t, p in offsets], ends)
        for (topic, partition), offset in offsets.items():
            to_key = (mapping[topic], partition)
            expected = after(sending_logs[(topic, partition)], offset)
            at = committed[group][to_key]
            assert after(receiving_logs[to_key], at) == expected, (
                f"{group} {topic}[{partition}]@{offset} -> {to_key[0]}[{partition}]@{at}: not exact")
            got = read[to_key]
            if got != expected:
                missing = [c for c in expected if c not in got]
                assert len(got) + len(missing) == len(expected), f"{group} {to_key}: duplicates or foreign records"
                resumed_wrong.append(f"{to_key[0]}[{partition}]@{at}: {len(missing)} of {len(expected)} "
                                     "committed records not returned")
    return resumed_wrong


def mid_partition_read_committed_loss(profile: ClusterProfile) -> str | None:
    """Evidence when the platform drops committed records for a read_committed fetch that
    starts after an aborted transaction (known on noida-db), else None.

    One producer writes transactions commit, abort, commit, commit (two records each); a read
    from the log start returns the committed records, a read starting at each later offset
    must return the same records from there on.
    """
    topic = unique("txn-resume")
    kafka.create_topic(profile, topic, 1)
    kafka.wait_for_topic(profile, topic, 1)
    producer = kafka.producer(profile, **{"transactional.id": unique("txn-resume")})
    producer.init_transactions(30)
    for commit in (True, False, True, True):
        producer.begin_transaction()
        for i in range(2):
            producer.produce(topic, value=b"%d" % i, partition=0)
        producer.flush(30)
        (producer.commit_transaction if commit else producer.abort_transaction)(30)
    key = (topic, 0)
    full = sorted(read_all(profile, [key])[key])
    ends = kafka.partition_ends(profile, [key])
    lost = []
    for start in range(ends[key].high):
        group = unique("resume")
        assert kgroups.commit(profile, {group: {key: start}}) == {group: None}
        got = [c for c in read_from_committed(profile, group, [key], ends)[key]]
        expected = [o for o in full if o >= start]
        if len(got) != len(expected):
            lost.append(f"from {start}: {len(got)} of {len(expected)} committed records")
    if not lost:
        return None
    first = int(lost[0].split(":")[0].split()[-1])
    independent = kafka_python_count(profile, topic, first, ends[key].high)
    return (f"committed records at {full} (read from the log start); a read_committed consumer resuming "
            f"mid-partition after the aborted transaction gets fewer: {'; '.join(lost)}; kafka-python from "
            f"{first}: {independent} of {len([o for o in full if o >= first])}")


def kafka_python_count(profile: ClusterProfile, topic: str, start: int, end: int) -> int:
    """Records a read_committed kafka-python consumer (the independent client) reads from start."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition

    consumer = KafkaConsumer(bootstrap_servers=profile.bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, consumer_timeout_ms=1500)
    try:
        tp = KTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        return sum(1 for m in consumer if m.offset < end)
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def estate(cluster_pool, tmp_path_factory):
    source, target = cluster_pool("source", "noida"), cluster_pool("target", "tansu")
    prefix = unique("ex")
    seed_estate(source.profile, prefix=prefix + ".")
    state = State(tmp_path_factory.mktemp("offsets-exact") / "state.db")
    name = unique("fwd")
    result = run_mirror(MirrorSpec(name=name, source=source.profile, target=target.profile,
                                   topics=(re.escape(prefix) + r"\..*",), until_caught_up=True,
                                   source_spec=source.bootstrap, target_spec=target.bootstrap), state)
    assert result.ok and result.caught_up
    mapping = registry.get(state, name).topics
    partitions = [(t, p) for t, info in kafka.list_topics(source.profile).items() if t in mapping
                  for p in range(info.partitions)]
    yield state, name, source, target, prefix, mapping, sorted(partitions)
    state.close()


def test_forward_sync_is_exact_at_every_kind_of_position(estate):
    state, name, source, target, prefix, mapping, partitions = estate
    logs = read_all(source.profile, partitions)
    raw = read_all(source.profile, partitions, "read_uncommitted")
    ends = kafka.partition_ends(source.profile, partitions)
    rng = random.Random(11)
    plan = {k: positions(logs[k], raw[k], ends[k].low, ends[k].high, rng) for k in partitions}
    kinds = {kind for v in plan.values() for _, kind in v}
    assert kinds == {"zero", "end", "aborted", "marker", "record"}, kinds  # every gap kind is covered

    groups = commit_rounds(source.profile, unique(prefix + "-fw"), plan)
    route = offroute.build_route(state, name, source.profile, target.profile)
    # the mirror's own source group is listed by the broker but never synced as a user's group
    assert f"migrate.mirror.{name}" in kgroups.list_groups(source.profile)
    assert f"migrate.mirror.{name}" not in offsync.select_groups(route, all_groups=True)
    results = checkpoint.sync_groups(route, list(groups))
    assert {r.outcome for r in results} == {"changed"}, [r.reason for r in results if r.outcome != "changed"]
    assert all(c.status in ("exact", "gap", "end") for r in results for c in r.changes)
    assert sum(len(g) for g in groups.values()) >= 21 * 10
    tlogs = read_all(target.profile, [(mapping[t], p) for t, p in partitions])
    assert check_synced(logs, target.profile, tlogs, mapping, groups) == []  # Tansu resumes exactly

    again = checkpoint.sync_groups(route, list(groups))  # idempotent
    assert {r.outcome for r in again} == {"unchanged"}


def test_reverse_sync_is_exact_through_the_forward_map_then_a_rollback_mirror(estate):
    state, name, source, target, prefix, mapping, partitions = estate
    inverse = {t: s for s, t in mapping.items()}
    to_parts = [(mapping[t], p) for t, p in partitions]
    rng = random.Random(5)

    # 1. no rollback mirror yet: target offsets go back through the forward map
    tlogs = read_all(target.profile, to_parts)
    tends = kafka.partition_ends(target.profile, to_parts)
    plan = {k: positions(tlogs[k], tlogs[k], tends[k].low, tends[k].high, rng) for k in to_parts}
    groups = commit_rounds(target.profile, unique(prefix + "-rv"), plan)
    route = offroute.build_route(state, name, source.profile, target.profile, reverse=True)
    results = checkpoint.sync_groups(route, list(groups))
    assert {r.outcome for r in results} == {"changed"}, [r.reason for r in results if r.outcome != "changed"]
    slogs = read_all(source.profile, partitions)
    problems = check_synced(tlogs, source.profile, slogs, inverse, groups)

    # 2. records produced directly on the target after cutover: not translatable by the forward map
    direct = [k for k in to_parts if k[0].endswith(("workflow.events", "tool.results"))]
    producer = kafka.producer(target.profile)
    for topic, partition in direct:
        for i in range(12):
            producer.produce(topic, key=f"after-cutover-{i}".encode(), value=f"{topic}/{partition}/{i}".encode(),
                             partition=partition, headers=[("origin", b"target")])
    assert producer.flush(30) == 0
    tends = kafka.partition_ends(target.profile, to_parts)
    late = unique(prefix + "-late")
    probe = direct[0]
    kgroups.commit(target.profile, {late: {probe: tends[probe].high}})
    refused = checkpoint.sync_groups(route, [late])[0]
    assert refused.outcome == "refused" and "not-yet" in refused.reason and "reverse mirror" in refused.reason
    assert kgroups.committed(source.profile, [late])[late] == {}

    # 3. the rollback mirror copies them back; reverse translation now covers every target offset
    back = unique("rollback")
    result = run_mirror(MirrorSpec(name=back, source=target.profile, target=source.profile,
                                   topics=(re.escape(prefix) + r"\..*",), until_caught_up=True,
                                   source_spec=target.bootstrap, target_spec=source.bootstrap,
                                   session_timeout_ms=2000), state)  # its group is on Tansu: join fast
    assert result.ok and result.caught_up
    tlogs = read_all(target.profile, to_parts)
    plan = {k: positions(tlogs[k], tlogs[k], tends[k].low, tends[k].high, rng) for k in to_parts}
    for k in direct:  # positions inside the directly produced records and at their end
        plan[k] += [(tends[k].high - 12, "direct"), (tends[k].high - 5, "direct"), (tends[k].high, "end")]
    groups = commit_rounds(target.profile, unique(prefix + "-rb"), plan)
    groups[late] = {probe: tends[probe].high}
    route = offroute.build_route(state, name, source.profile, target.profile, reverse=True)
    assert route.reverse_mirror is not None and route.reverse_mirror.name == back
    results = checkpoint.sync_groups(route, list(groups))
    assert {r.outcome for r in results} == {"changed"}, [r.reason for r in results if r.outcome != "changed"]
    before, slogs = slogs, read_all(source.profile, partitions)
    for topic, partition in direct:  # the rollback mirror copied exactly the new records back
        key = (inverse[topic], partition)
        assert list(slogs[key].values())[len(before[key]):] == list(tlogs[(topic, partition)].values())[-12:]
    problems += check_synced(tlogs, source.profile, slogs, inverse, groups)
    if problems:  # the offsets are exact (asserted above); the platform loses records on resume
        assert mid_partition_read_committed_loss(source.profile), (
            f"consumers resuming on the source missed records, not explained by a platform limit: {problems[:3]}")


def test_resuming_read_committed_after_an_aborted_transaction(source_cluster):
    """Detects the source platform dropping records for a consumer that resumes mid-partition.

    Reported here because it defeats any exact offset on that platform: the offset is right,
    the broker's answer to a fetch from it is not.
    """
    evidence = mid_partition_read_committed_loss(source_cluster.profile)
    if evidence:
        pytest.xfail(f"known {source_cluster.platform} limit (the platform's fetch answer; confluent-kafka and "
                     f"kafka-python figures follow): {evidence}")
