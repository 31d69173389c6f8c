"""Freshness: how long a live record takes to reach the target, with and without a backfill.

    python benchmarks/freshness.py [--rate 2000] [--seconds 20] [--backlog 1000000] [--source noida] [--target tansu]

All in one run, on fresh local clusters (noida-db source, Tansu target by default):
1. platform: a producer at --rate records/s to a 6-partition topic of the target, a reader on the
   target: latency = time read - send time carried in the record (the platform alone);
2. live: the same producer on the source, `migrate mirror --follow` running, the reader on the target;
3. live + backfill: the same, while the same mirror copies a --backlog record topic from its start;
4. backfill alone: the backlog copied with no live traffic (its time is the baseline for 3).
It prints p50/p99/max per phase and the ratios the freshness targets are stated in:
live p99 during backfill / live p99 alone (target <= 2), live p50 / platform p50 (target <= 2),
backfill time with live traffic / alone (target <= 1.3).  Wall-clock figures on a shared machine
are noisy: read the ratios, which share the same conditions.
"""

from __future__ import annotations

import argparse
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.local import platforms

PARTITIONS = 6


def profile(name: str, bootstrap: str) -> ClusterProfile:
    return ClusterProfile(name, {"bootstrap.servers": bootstrap})


class LiveProducer(threading.Thread):
    """Sends records at a steady rate; each value carries its send time."""

    def __init__(self, bootstrap: str, topic: str, rate: float):
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topic, self.rate = topic, rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due:
                self.producer.produce(self.topic, struct.pack(">d", time.time()) + b"x" * 192,
                                      partition=self.sent % PARTITIONS)
                self.sent += 1
            self.producer.poll(0)
            time.sleep(0.002)
        self.producer.flush(30)


class LatencyReader(threading.Thread):
    """Reads a topic from its current end and records time read - time sent per record."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fresh-{os.getpid()}-{topic}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 5,
                                  "receive.message.max.bytes": 2_147_483_647})
        self.topic = topic
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        self.consumer.assign([TopicPartition(self.topic, p, 0) for p in range(PARTITIONS)])
        while not self.stop.is_set():
            for m in self.consumer.consume(1000, 0.05):
                if m.error() is None and m.value() and len(m.value()) >= 8:
                    self.latencies.append(time.time() - struct.unpack(">d", m.value()[:8])[0])
        self.consumer.close()


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.5) * 1000, pick(0.99) * 1000, ordered[-1] * 1000


def fill(bootstrap: str, topic: str, records: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1_000_000,
                         "queue.buffering.max.kbytes": 262144})
    for i in range(records):
        while True:
            try:
                producer.produce(topic, b"b" * 200, b"k%d" % (i % 1000), partition=0)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(300)


def mirrored_to(state: Path, name: str, topic: str) -> int:
    from migrate.offset_maps.store import MapStore
    from migrate.state import State

    with State(state) as db:
        return sum((r["source_high"] or 0) for r in MapStore(db, name).progress() if r["topic"] == topic)


def start_mirror(work: Path, source: str, target: str, pattern: str, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migrate", "--state", str(work / f"{name}.db"), "mirror",
                             "--source", source, "--target", target, "--topics", pattern, "--name", name,
                             "--follow", "--session-timeout-ms", "6000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def live_phase(source: str, target: str, live_topic: str, read_topic: str, rate: float,
               seconds: float) -> list[float]:
    reader = LatencyReader(target, read_topic)
    reader.start()
    time.sleep(1)
    producer = LiveProducer(source, live_topic, rate)
    producer.start()
    time.sleep(seconds)
    producer.stop.set()
    producer.join()
    time.sleep(3)  # let the last records arrive
    reader.stop.set()
    reader.join()
    return reader.latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--source", default="noida")
    parser.add_argument("--target", default="tansu")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fresh-"))
    src = platforms.start_broker(platforms.platform(args.source), "source", data_dir=work / "src", die_with_parent=True)
    tgt = platforms.start_broker(platforms.platform(args.target), "target", data_dir=work / "tgt", die_with_parent=True)
    source, target = profile("source", src.bootstrap), profile("target", tgt.bootstrap)
    rows = []
    try:
        for name, cluster in (("platform", target), ("live", source), ("live2", source)):
            kafka.create_topic(cluster, f"bench.{name}", PARTITIONS)
        for name in ("backlog", "backlog2"):
            kafka.create_topic(source, f"bench.{name}", 1, {"retention.ms": "-1"})
            print(f"filling bench.{name} with {args.backlog:,} records ...", flush=True)
            fill(src.bootstrap, f"bench.{name}", args.backlog)

        lat = live_phase(tgt.bootstrap, tgt.bootstrap, "bench.platform", "bench.platform", args.rate, args.seconds)
        rows.append(("platform only", *percentiles(lat), None))

        mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, r"bench\.live", "live")
        time.sleep(8)  # started and caught up
        lat = live_phase(src.bootstrap, tgt.bootstrap, "bench.live", "bench.live", args.rate, args.seconds)
        stop(mirror)
        rows.append(("mirror, live only", *percentiles(lat), None))

        # the backlog alone: how long the same mirror takes to copy it with no live traffic
        alone_started = time.monotonic()
        mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, r"bench\.backlog", "alone")
        while mirrored_to(work / "alone.db", "alone", "bench.backlog") < args.backlog:
            time.sleep(0.2)
        alone = time.monotonic() - alone_started
        stop(mirror)
        rows.append(("backfill alone", None, None, None, alone))

        # live traffic while the same mirror copies the other backlog from its start
        reader = LatencyReader(tgt.bootstrap, "bench.live2")
        reader.start()
        both_started = time.monotonic()
        mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, r"bench\.(live2|backlog2)", "both")
        while mirrored_to(work / "both.db", "both", "bench.backlog2") == 0:  # the copy has begun
            time.sleep(0.05)
        producer = LiveProducer(src.bootstrap, "bench.live2", args.rate)
        producer.start()
        while mirrored_to(work / "both.db", "both", "bench.backlog2") < args.backlog:
            time.sleep(0.1)
        both = time.monotonic() - both_started
        producer.stop.set()
        producer.join()
        time.sleep(3)
        reader.stop.set()
        reader.join()
        stop(mirror)
        rows.append(("mirror, live during backfill", *percentiles(reader.latencies), both))
        live_alone, live_during = rows[1], rows[3]
        print(f"\nlive p99 during backfill / alone: {live_during[2] / live_alone[2]:.2f} (target <= 2)")
        print(f"live p50 alone / platform p50: {live_alone[1] / rows[0][1]:.2f} (target <= 2)")
        print(f"backfill with live traffic / alone: {both / alone:.2f} (target <= 1.3)")
        print(f"live records measured: {len(reader.latencies):,} during a backfill of {args.backlog:,}")
    finally:
        platforms.stop_broker(src.pid, src.port)
        platforms.stop_broker(tgt.pid, tgt.port)
    print(f"\n{'phase':32} {'p50 ms':>10} {'p99 ms':>10} {'max ms':>10} {'seconds':>10}")
    for name, p50, p99, worst, seconds in rows:
        cells = [f"{v:10.0f}" if isinstance(v, float) else f"{'':>10}" for v in (p50, p99, worst, seconds)]
        print(f"{name:32} " + " ".join(cells))


if __name__ == "__main__":
    main()
