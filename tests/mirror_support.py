"""Helpers for mirror tests: a small varied workload, running the mirror, comparing clusters."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

from confluent_kafka import Producer

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.mirror import MirrorSpec, run_mirror
from migrate.state import State
from support import kafka_python_read


def make_topic(profile: ClusterProfile, topic: str, partitions: int = 3, configs: dict | None = None) -> None:
    kafka.create_topic(profile, topic, partitions, configs or {})
    kafka.wait_for_topic(profile, topic, partitions)


def produce_workload(profile: ClusterProfile, topic: str, count: int, partitions: int = 3, seed: int = 1,
                     transactions: int = 0, aborted: tuple[int, ...] = (), txn_id: str | None = None) -> None:
    """Keys, null keys, tombstones, duplicate and null headers, explicit timestamps, optional transactions."""
    rng = random.Random(seed)
    # Recent timestamps: a faithful broker deletes records older than retention.ms (7 days by default).
    base = int(time.time() * 1000) - 3_600_000
    producer = Producer({"bootstrap.servers": profile.bootstrap, "linger.ms": 5})
    for i in range(count):
        key = None if i % 17 == 0 else f"wf-{rng.randrange(50)}".encode()
        value = None if i % 23 == 0 else (f"event-{seed}-{i}-" + "x" * rng.randrange(0, 300)).encode()
        headers = [("trace-id", f"{i}".encode()), ("agent", b"planner")]
        if i % 5 == 0:
            headers += [("agent", b"critic"), ("nullable", None)]
        producer.produce(topic, value, key, partition=i % partitions, headers=headers,
                         timestamp=base + i * 7)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(30)
    if transactions:
        tx = Producer({"bootstrap.servers": profile.bootstrap, "linger.ms": 5,
                       "transactional.id": txn_id or f"workload-{topic}"})
        tx.init_transactions(30)
        for t in range(transactions):
            tx.begin_transaction()
            for i in range(9):
                tx.produce(topic, f"tx-{t}-{i}".encode(), f"wf-{i}".encode(), partition=i % partitions,
                           timestamp=base + 1_000_000 + t * 100 + i)
            if t in aborted:
                tx.flush(30)  # on the broker before the abort, or librdkafka just drops them
                tx.abort_transaction(30)
            else:
                tx.commit_transaction(30)


def content(record) -> tuple:
    return (record.key, record.value, [(k, v) for k, v in record.headers], record.timestamp)


def read_contents(profile: ClusterProfile, topic: str) -> dict[int, list[tuple]]:
    return {p: [content(r) for r in records] for p, records in kafka_python_read(profile, topic).items()}


def mirror_once(state_path, source: ClusterProfile, target: ClusterProfile, topics, name="default", **kwargs):
    spec = MirrorSpec(name=name, source=source, target=target, topics=tuple(topics), until_caught_up=True,
                      session_timeout_ms=6000, **kwargs)
    with State(state_path) as state:
        return run_mirror(spec, state)


def mirror_process(state_path, source: ClusterProfile, target: ClusterProfile, pattern: str, name="default",
                   *extra: str) -> subprocess.Popen:
    """A real `migrate mirror --follow` process (to kill with SIGKILL)."""
    return subprocess.Popen(
        [sys.executable, "-m", "migrate", "--state", str(state_path), "mirror", "--source", source.bootstrap,
         "--target", target.bootstrap, "--topics", pattern, "--name", name, "--follow",
         "--session-timeout-ms", "6000", "--commit-interval", "0.2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


OVERSIZED_LIMIT = 4000


def make_oversized_topic(source: ClusterProfile, target: ClusterProfile, topic: str,
                         limit: int = OVERSIZED_LIMIT) -> None:
    """A one-partition source topic of 11 records whose 6th is larger than the pre-created target
    topic allows (noida-db applies max.message.bytes; Tansu stores it without applying it).

    The big record is random bytes, so that the mirror's compression cannot shrink it under the
    limit; the records' CreateTimes are a minute old.
    """
    make_topic(source, topic, 1)
    make_topic(target, topic, 1, {"max.message.bytes": str(limit)})
    base = int(time.time() * 1000) - 60_000
    producer = Producer({"bootstrap.servers": source.bootstrap, "linger.ms": 5})
    for i in range(11):
        value = os.urandom(3 * limit) if i == 5 else f"small-{i}".encode()
        producer.produce(topic, value, f"k{i}".encode(), partition=0, timestamp=base + i)
    assert producer.flush(30) == 0


def raise_max_message_bytes(profile: ClusterProfile, topic: str) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "1048588", incremental_operation=AlterConfigOpType.SET)])
    client = kafka.admin(profile)  # kept alive until the result is in
    client.incremental_alter_configs([resource])[resource].result(30)
