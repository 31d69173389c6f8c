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

import json
import time

import pytest

from migrate import groups as kgroups
from apps_support import (APPS, PYTHON, App, Move, json_lines, make_topic, node_app, node_process, run_app,
                          session_timeout_ms, wait_lines)
from support import unique

EVENTS = 300
PARTITIONS = 3
FIRST_RUN = 120  # events the app processes on the source before the move

DIRECTIONS = [("noida", "tansu"), ("tansu", "noida")]
AIO_APP = str(APPS / "aio" / "app.py")


class KafkajsApp:
    """tests/apps/node: producer.js, consumer.js (the group app) and dump.js."""

    name = "kafkajs"
    null_headers = False  # kafkajs drops a header whose value is null
    mirror_flags = ("--compression", "none")  # kafkajs reads no LZ4 without a plugin: see the test below

    def produce(self, cluster, topic, log, **cfg):
        # Tansu refuses kafkajs' idempotent InitProducerId (test_kafkajs_idempotent_producer_is_refused_by_tansu)
        node_app("producer.js", log, brokers=cluster.bootstrap, topic=topic,
                 idempotent=cluster.platform != "tansu", **cfg)

    def consumer(self, cluster, log, **cfg) -> App:
        return node_process("consumer.js", log, brokers=cluster.bootstrap,
                            session_timeout_ms=session_timeout_ms(cluster.platform), **cfg)

    def dump(self, cluster, topic, path, expected) -> list[dict]:
        node_app("dump.js", path.with_suffix(".log"), brokers=cluster.bootstrap, topic=topic,
                 group=unique("dump"), session_timeout_ms=session_timeout_ms(cluster.platform), expected=expected,
                 idle_ms=1000, timeout_ms=40000, out=str(path))
        return json_lines(path)


class AiokafkaApp:
    """tests/apps/aio/app.py: produce, consume (the group app) and dump, on aiokafka."""

    name = "aiokafka"
    null_headers = True
    mirror_flags = ()  # the mirror's default LZ4 is read by aiokafka (through cramjam)

    def produce(self, cluster, topic, log, **cfg):
        # Tansu refuses aiokafka's idempotent InitProducerId too (UnknownError), like kafkajs'
        run_app([PYTHON, AIO_APP, "produce", json.dumps({"brokers": cluster.bootstrap, "topic": topic,
                                                          "idempotent": cluster.platform != "tansu", **cfg})], log)

    def consumer(self, cluster, log, **cfg) -> App:
        return App([PYTHON, AIO_APP, "consume", json.dumps({
            "brokers": cluster.bootstrap, "session_timeout_ms": session_timeout_ms(cluster.platform), **cfg})], log)

    def dump(self, cluster, topic, path, expected) -> list[dict]:
        run_app([PYTHON, AIO_APP, "dump", json.dumps({"brokers": cluster.bootstrap, "topic": topic,
                                                       "out": str(path), "timeout_s": 40})], path.with_suffix(".log"))
        return json_lines(path)


CLIENTS = {"kafkajs": KafkajsApp(), "aiokafka": AiokafkaApp()}


def expected_event(i: int, base: int, null_headers: bool) -> dict:
    """What the producers write as event i (computed here, independently of them)."""
    headers = [["event-id", str(i)], ["agent", "planner"]]
    if i % 3 == 0:
        headers.append(["agent", "critic"])
    if null_headers and i % 5 == 0:
        headers.append(["nullable", None])
    return {"partition": i % PARTITIONS, "key": f"wf-{i % 7}", "value": f"event-{i}", "timestamp": base + i * 13,
            "headers": headers}


def content(record: dict) -> dict:
    return {k: record[k] for k in ("partition", "key", "value", "timestamp", "headers")}


def by_partition(records: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in records:
        out.setdefault(r["partition"], []).append(r)
    return out


def event_id(record: dict) -> int:
    return int(record["value"].split("-")[1])


@pytest.mark.slow
@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("direction", DIRECTIONS, ids=[f"{s}-to-{t}" for s, t in DIRECTIONS])
def test_consumer_group_app_moves_and_processes_every_event_exactly_once(tmp_path, cluster_pool, direction,
                                                                         client):
    app_kind = CLIENTS[client]
    source, target = (cluster_pool(role, platform) for role, platform in zip(("source", "target"), direction))
    topic, group = unique(f"{client}-orders"), unique(f"{client}-app")
    make_topic(source.profile, topic, PARTITIONS)
    base = int(time.time() * 1000) - 60_000
    app_kind.produce(source, topic, tmp_path / "producer.log", count=EVENTS, partitions=PARTITIONS,
                     base_timestamp=base)
    expected = [expected_event(i, base, app_kind.null_headers) for i in range(EVENTS)]

    # on the source: the app processes part of the events, committing each synchronously, and leaves
    first = tmp_path / "first.jsonl"
    app = app_kind.consumer(source, tmp_path / "first.log", topic=topic, group=group, max=FIRST_RUN, out=str(first))
    assert app.wait(60) == 0, app.log.read_text()
    processed_first = json_lines(first)
    assert len(processed_first) == FIRST_RUN

    # the move, as a user runs it
    move = Move(tmp_path, source, target)
    assert "caught up" in move.mirror(topic, extra=app_kind.mirror_flags)
    assert "1 changed" in move.sync(group)

    # on the target: the same app, same group id, until every remaining event is processed
    second = tmp_path / "second.jsonl"
    app = app_kind.consumer(target, tmp_path / "second.log", topic=topic, group=group, max=None, out=str(second))
    try:
        wait_lines(second, EVENTS - FIRST_RUN, app, timeout=60)
    finally:
        assert app.stop() == 0, app.log.read_text()
    processed_second = json_lines(second)

    processed = processed_first + processed_second
    assert sorted(map(event_id, processed)) == list(range(EVENTS)), "every event exactly once across the move"
    for record in processed:
        assert content(record) == expected[event_id(record)]
    # per partition, the target run starts right after what the source run committed
    firsts, seconds = by_partition(processed_first), by_partition(processed_second)
    for p in range(PARTITIONS):
        values = [r["value"] for r in firsts.get(p, []) + seconds.get(p, [])]
        assert values == [e["value"] for e in expected if e["partition"] == p]
    # the group's committed position on the target is right after each partition's last record there
    ends = {(topic, p): max(r["offset"] for r in seconds.get(p, []) + firsts.get(p, [])) + 1
            for p in range(PARTITIONS)}
    committed = kgroups.committed(target.profile, [group])[group]
    assert {tp: committed.get(tp) for tp in ends} == ends

    # read back with the app's own client on both sides: record by record, the same content in the same
    # order per partition, and what the producer wrote
    on_source = app_kind.dump(source, topic, tmp_path / "source.jsonl", EVENTS)
    on_target = app_kind.dump(target, topic, tmp_path / "target.jsonl", EVENTS)
    want = {p: [content(e) for e in expected if e["partition"] == p] for p in range(PARTITIONS)}
    source_parts = {p: [content(r) for r in rs] for p, rs in by_partition(on_source).items()}
    target_parts = {p: [content(r) for r in rs] for p, rs in by_partition(on_target).items()}
    for p in range(PARTITIONS):
        assert len(source_parts[p]) == len(target_parts[p]) == len(want[p])
        for i, (a, b) in enumerate(zip(source_parts[p], target_parts[p])):
            assert a == b == want[p][i], f"partition {p}, record {i}"


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
