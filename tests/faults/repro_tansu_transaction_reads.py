"""Tansu 0.6.0: records written in transactions reach readers much later (not a test: run it by hand).

    python tests/faults/repro_tansu_transaction_reads.py {idempotent,transactions} [--partitions 250]
                                                        [--rate 1000] [--seconds 15] [--platform tansu]

One producer (linger.ms 5, lz4) writes --rate records/s spread round-robin over --partitions
partitions (topics of 5), for --seconds; with `transactions` it commits one transaction per round
(a round is what became due since the last, then a 30 ms pause).  A read_committed reader assigned
every partition records, per record, time read - time sent.  It prints p50/p99 and the commits.

Measured on Tansu 0.6.0 (2026-12-07, 250 partitions, 1,000 records/s, two runs each): idempotent,
p50 38 ms / p99 66-68 ms; transactions, p50 445-555 ms / p99 560-874 ms, commits of p50 266-487 ms
(one or two ms of broker time per partition in a transaction).  This is the floor of a mirror's
live latency on Tansu at estate size.
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.local import platforms


def read(bootstrap: str, parts: list[tuple[str, int]], latencies: list[float], stop: threading.Event) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "repro", "fetch.wait.max.ms": 5,
                         "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(t, p, 0) for t, p in parts])
    while not stop.is_set():
        for m in consumer.consume(1000, 0.05):
            if m.error() is None:
                latencies.append(time.time() - struct.unpack(">d", m.value()[:8])[0])
    consumer.close()


def write(bootstrap: str, parts: list[tuple[str, int]], mode: str, rate: float, seconds: float) -> tuple[int, list[float]]:
    settings = {"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "lz4"}
    if mode == "transactions":
        settings["transactional.id"] = "repro"
    producer = Producer(settings)
    if mode == "transactions":
        producer.init_transactions(30)
    sent, commits, began = 0, [], time.monotonic()
    while time.monotonic() - began < seconds:
        due = int((time.monotonic() - began) * rate)
        if mode == "transactions":
            producer.begin_transaction()
        while sent < due:
            topic, partition = parts[sent % len(parts)]
            producer.produce(topic, struct.pack(">d", time.time()) + b"x" * 190, partition=partition)
            sent += 1
        if mode == "transactions":
            at = time.monotonic()
            producer.commit_transaction(60)
            commits.append(time.monotonic() - at)
        else:
            producer.poll(0)
        time.sleep(0.03)
    producer.flush(60)
    return sent, commits


def pick(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["idempotent", "transactions"])
    parser.add_argument("--partitions", type=int, default=250)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--platform", default="tansu")
    args = parser.parse_args()
    broker = platforms.start_broker(platforms.platform(args.platform), "target", data_dir=Path(tempfile.mkdtemp()),
                                    die_with_parent=True)
    try:
        cluster = ClusterProfile("repro", {"bootstrap.servers": broker.bootstrap})
        topics = {f"repro.t{i:04d}": 5 for i in range(args.partitions // 5)}
        kafka.create_topics(cluster, {t: (n, {}) for t, n in topics.items()})
        kafka.wait_for_topics(cluster, topics)
        parts = [(t, p) for t, n in topics.items() for p in range(n)]
        latencies: list[float] = []
        stop = threading.Event()
        reader = threading.Thread(target=read, args=(broker.bootstrap, parts, latencies, stop))
        reader.start()
        time.sleep(1)
        sent, commits = write(broker.bootstrap, parts, args.mode, args.rate, args.seconds)
        time.sleep(3)
        stop.set()
        reader.join()
        print(f"{args.platform} {args.mode}, {args.partitions} partitions, {args.rate:.0f} records/s: read "
              f"{len(latencies):,} of {sent:,}, p50 {pick(latencies, 0.5):.0f} ms, p99 {pick(latencies, 0.99):.0f} ms"
              + (f"; {len(commits)} commits, p50 {pick(commits, 0.5):.0f} ms, p99 {pick(commits, 0.99):.0f} ms"
                 if commits else ""))
    finally:
        platforms.stop_broker(broker.pid, broker.port)


if __name__ == "__main__":
    main()
