"""Mirroring at estate size: thousands of partitions with bounded resources, slots that fence.

Partitions are cut into a fixed number of write slots (migrate.mirror.slots): a worker holds
one transactional producer per slot it owns, however many partitions it mirrors.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from migrate import kafka
from migrate.mirror.slots import slot_of, slot_partitions
from support import unique

TOPICS, PARTITIONS, PER_PARTITION = 400, 5, 3
# One worker, 8 slots: librdkafka runs a few threads per client (main, internal and one per
# broker connection), so a worker needs some tens of threads whatever the partition count.
# The old design used one producer per partition: 4,000+ threads at 2,000 partitions.
THREAD_BOUND = 120


def test_every_partition_belongs_to_exactly_one_slot_and_topics_spread_over_slots():
    counts = {"orders": 12, "payments": 5, "a.b-c_d": 1, "wf.1": 300}
    for slots in (1, 3, 8, 16):
        owners: dict[tuple[str, int], int] = {}
        for slot in range(slots):
            for key in slot_partitions(counts, slot, slots):
                assert key not in owners, f"{key} is in slots {owners[key]} and {slot}"
                owners[key] = slot
                assert slot_of(*key, slots) == slot
        assert len(owners) == sum(counts.values())
    # Consecutive partitions of one topic land in consecutive slots: a topic with at least
    # as many partitions as slots uses every slot.
    assert {slot_of("orders", p, 8) for p in range(8)} == set(range(8))


def fill_estate(profile, prefix: str) -> dict[str, int]:
    topics = {f"{prefix}.t{i:04d}": PARTITIONS for i in range(TOPICS)}
    kafka.create_topics(profile, {name: (n, {"retention.ms": "-1"}) for name, n in topics.items()})
    kafka.wait_for_topics(profile, topics, timeout=60)
    producer = Producer({"bootstrap.servers": profile.bootstrap, "linger.ms": 20})
    base = int(time.time() * 1000) - 60_000
    for name in topics:
        for partition in range(PARTITIONS):
            for i in range(PER_PARTITION):
                producer.produce(name, f"{name}/{partition}/{i}".encode(), f"k{i}".encode(), partition=partition,
                                 headers=[("seq", str(i).encode())], timestamp=base + i)
        producer.poll(0)
    assert producer.flush(60) == 0
    return topics


def read_all(profile, topics: dict[str, int]) -> dict[tuple[str, int], list[tuple]]:
    """Every record of every partition, with kafka-python (the independent client), in chunks."""
    from kafka import KafkaConsumer, TopicPartition

    wanted = [TopicPartition(t, p) for t, n in topics.items() for p in range(n)]
    out: dict[tuple[str, int], list[tuple]] = {(tp.topic, tp.partition): [] for tp in wanted}
    for first in range(0, len(wanted), 500):
        chunk = wanted[first:first + 500]
        consumer = KafkaConsumer(bootstrap_servers=profile.bootstrap, enable_auto_commit=False,
                                 auto_offset_reset="earliest", isolation_level="read_committed")
        try:
            consumer.assign(chunk)
            consumer.seek_to_beginning(*chunk)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                for tp, records in consumer.poll(timeout_ms=500, max_records=10000).items():
                    out[(tp.topic, tp.partition)].extend(
                        (r.offset, r.key, r.value, tuple(r.headers), r.timestamp) for r in records)
                if all(consumer.highwater(tp) is not None and consumer.position(tp) >= consumer.highwater(tp)
                       for tp in chunk):
                    break
        finally:
            consumer.close()
    return out


def threads_of(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@pytest.mark.slow
def test_one_worker_mirrors_2000_partitions_exactly_with_bounded_threads(private_cluster, tmp_path):
    source, target = private_cluster("noida", "source"), private_cluster("tansu", "target")
    prefix = unique("est")
    topics = fill_estate(source.profile, prefix)
    worker = subprocess.Popen(
        [sys.executable, "-m", "migrate", "--state", str(tmp_path / "state.db"), "mirror",
         "--source", source.bootstrap, "--target", target.bootstrap, "--topics", rf"{prefix}\..*",
         "--until-caught-up", "--session-timeout-ms", "6000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.2):
            peak.append(threads_of(worker.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = worker.communicate(timeout=900)
    finally:
        sampling.set()
        sampler.join()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err[-3000:]
    assert "caught up" in out
    assert max(peak) < THREAD_BOUND, f"peak {max(peak)} threads"

    src, tgt = read_all(source.profile, topics), read_all(target.profile, topics)
    assert len(src) == TOPICS * PARTITIONS
    for key, records in src.items():
        assert len(records) == PER_PARTITION, f"source {key} has {len(records)} records"
        assert [r[1:] for r in tgt[key]] == [r[1:] for r in records], f"{key} differs"
