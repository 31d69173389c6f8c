"""Real applications move to the other platform and go on exactly (issue 23).

Each application is written with a client other than ours and runs as a child process, as in
production: a kafkajs producer and consumer-group app (Node.js), an aiokafka app (asyncio, an
independent protocol implementation) and a stateful Quix Streams app (RocksDB state with a
changelog topic).  The move is what docs/applications.md tells users to run: `migrate mirror`
every topic the app uses, `migrate offsets sync` its group, start the same app on the target.
The proof is independent of both the app and our mirror: the events the producer wrote are
known in advance (ids, keys, headers, timestamps), and each must be processed exactly once
across the move, and read back identical on the target with the app's own client.
"""

from __future__ import annotations

import time

import pytest

from migrate import groups as kgroups
from apps_support import Move, json_lines, make_topic, node_app, node_process, session_timeout_ms, wait_lines
from support import unique

EVENTS = 300
PARTITIONS = 3
FIRST_RUN = 120  # events the app processes on the source before the move

DIRECTIONS = [("noida", "tansu"), ("tansu", "noida")]


def expected_event(i: int, base: int) -> dict:
    """What tests/apps/node/producer.js writes as event i (computed here, independently of it)."""
    agents = [["agent", "planner"], ["agent", "critic"]] if i % 3 == 0 else [["agent", "planner"]]
    return {"partition": i % PARTITIONS, "key": f"wf-{i % 7}", "value": f"event-{i}", "timestamp": base + i * 13,
            "headers": [["event-id", str(i)], *agents, ["content-type", "text/plain"]]}


def content(record: dict) -> dict:
    return {k: record[k] for k in ("partition", "key", "value", "timestamp", "headers")}


def by_partition(records: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in records:
        out.setdefault(r["partition"], []).append(r)
    return out


def kafkajs_dump(cluster, topic: str, path, expected: int) -> list[dict]:
    node_app("dump.js", path.with_suffix(".log"), brokers=cluster.bootstrap, topic=topic, group=unique("dump"),
             session_timeout_ms=session_timeout_ms(cluster.platform), expected=expected, idle_ms=1000,
             timeout_ms=40000, out=str(path))
    return json_lines(path)


@pytest.mark.slow
@pytest.mark.parametrize("direction", DIRECTIONS, ids=[f"{s}-to-{t}" for s, t in DIRECTIONS])
def test_kafkajs_app_moves_and_processes_every_event_exactly_once(tmp_path, cluster_pool, direction):
    source, target = (cluster_pool(role, platform) for role, platform in zip(("source", "target"), direction))
    topic, group = unique("kjs-orders"), unique("kjs-app")
    make_topic(source.profile, topic, PARTITIONS)
    base = int(time.time() * 1000) - 60_000
    node_app("producer.js", tmp_path / "producer.log", brokers=source.bootstrap, topic=topic, count=EVENTS,
             partitions=PARTITIONS, base_timestamp=base, idempotent=source.platform != "tansu")
    expected = [expected_event(i, base) for i in range(EVENTS)]

    # on the source: the app processes part of the events, committing each synchronously, and leaves
    first = tmp_path / "first.jsonl"
    node_app("consumer.js", tmp_path / "first.log", brokers=source.bootstrap, topic=topic, group=group,
             session_timeout_ms=session_timeout_ms(source.platform), max=FIRST_RUN, out=str(first))
    processed_first = json_lines(first)
    assert len(processed_first) == FIRST_RUN

    # the move, as a user runs it (kafkajs reads no LZ4 without a plugin: see the test below)
    move = Move(tmp_path, source, target)
    assert "caught up" in move.mirror(topic, extra=("--compression", "none"))
    assert "1 changed" in move.sync(group)

    # on the target: the same app, same group id, until every remaining event is processed
    second = tmp_path / "second.jsonl"
    app = node_process("consumer.js", tmp_path / "second.log", brokers=target.bootstrap, topic=topic, group=group,
                       session_timeout_ms=session_timeout_ms(target.platform), max=None, out=str(second))
    try:
        wait_lines(second, EVENTS - FIRST_RUN, app, timeout=60)
    finally:
        assert app.stop() == 0, app.log.read_text()
    processed_second = json_lines(second)

    ids = [int(r["value"].split("-")[1]) for r in processed_first + processed_second]
    assert sorted(ids) == list(range(EVENTS)), "every event exactly once across the move"
    for record in processed_first + processed_second:
        assert content(record) == expected[int(record["value"].split("-")[1])]
    # per partition, the target run starts right after what the source run committed
    firsts, seconds = by_partition(processed_first), by_partition(processed_second)
    for p in range(PARTITIONS):
        values = [r["value"] for r in firsts.get(p, []) + seconds.get(p, [])]
        assert values == [e["value"] for e in expected if e["partition"] == p]
    # the group's committed position on the target is the end of each partition
    ends = {(topic, p): max(r["offset"] for r in seconds.get(p, []) + firsts.get(p, [])) + 1
            for p in range(PARTITIONS)}
    committed = kgroups.committed(target.profile, [group])[group]
    assert {tp: committed[tp] for tp in ends} == {
        tp: ends[tp] for tp in ends}, "the target group committed past its last processed record"

    # read back with kafkajs on both sides: same records, headers and timestamps, in partition order
    on_source = kafkajs_dump(source, topic, tmp_path / "source.jsonl", EVENTS)
    on_target = kafkajs_dump(target, topic, tmp_path / "target.jsonl", EVENTS)
    want = {p: [content(e) for e in expected if e["partition"] == p] for p in range(PARTITIONS)}
    assert {p: [content(r) for r in rs] for p, rs in by_partition(on_source).items()} == want
    assert {p: [content(r) for r in rs] for p, rs in by_partition(on_target).items()} == want


@pytest.mark.slow
def test_kafkajs_cannot_read_a_mirror_written_with_lz4(tmp_path, source_cluster, target_cluster):
    """Found here: `migrate mirror` compresses the target with LZ4 by default, and kafkajs 2.2.4
    has no LZ4 codec (only GZIP built in; others are plugins): a kafkajs app that read the
    uncompressed source crashes on the target.  Users must mirror with `--compression none` or
    `gzip` for such apps (docs/applications.md), or register an LZ4 codec in the app."""
    topic = unique("kjs-lz4")
    make_topic(source_cluster.profile, topic, 1)
    node_app("producer.js", tmp_path / "producer.log", brokers=source_cluster.bootstrap, topic=topic, count=20,
             partitions=1, base_timestamp=int(time.time() * 1000))
    Move(tmp_path, source_cluster, target_cluster).mirror(topic)
    app = node_process("dump.js", tmp_path / "dump.log", brokers=target_cluster.bootstrap, topic=topic,
                       group=unique("dump"), session_timeout_ms=2000, expected=20, idle_ms=500, timeout_ms=20000,
                       out=str(tmp_path / "dump.jsonl"))
    assert app.wait(30) == 3
    assert app.events() == [{"crashed": "KafkaJSNotImplemented: LZ4 compression not implemented"}]


@pytest.mark.slow
def test_kafkajs_idempotent_producer_is_refused_by_tansu(tmp_path, cluster_pool):
    """Found here (Tansu 0.6.0): kafkajs' InitProducerId (v1, no transactional id) for an idempotent
    producer fails with UNKNOWN_SERVER_ERROR, where confluent-kafka's idempotent producer works; a
    kafkajs producer on Tansu must run with `idempotent: false` (acks=all, one request in flight)."""
    tansu = cluster_pool("source", "tansu")
    topic = unique("kjs-idem")
    make_topic(tansu.profile, topic, 1)
    app = node_process("producer.js", tmp_path / "producer.log", brokers=tansu.bootstrap, topic=topic, count=5,
                       partitions=1, base_timestamp=int(time.time() * 1000))
    assert app.wait(30) == 1
    assert "InitProducerId" in app.log.read_text()
    assert "The server experienced an unexpected error" in app.log.read_text()
