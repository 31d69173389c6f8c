"""Freshness: how long a live record takes to reach the target, with and without a backfill.

    python benchmarks/freshness.py [--rate 2000] [--seconds 20] [--backlog 1000000] [--source noida] [--target tansu]
                                   [--no-hops] [--mirror-args '...'] [--patch 'module.NAME=value ...' ...]

All in one run, on fresh local clusters (noida-db source, Tansu target by default):
1. platform: a producer at --rate records/s to a 6-partition topic of the target, a reader on the
   target: latency = time read - send time carried in the record (the platform alone);
2. live: the same producer on the source, `migrate mirror --follow` running, the reader on the target;
   with --patch, again with those constants of migrate.mirror modules set (e.g.
   `writer.LINGER_MS=1 intake.LIVE_WAIT_S=0.02`; repeat --patch for a phase per setting):
   settings compared with the defaults in the same run;
3. hops: phase 2 again with a second reader on the source, so each record's way splits into
   producer -> source -> its reader, and source reader -> mirror -> target reader (the second
   reader costs the source broker CPU, so this phase is kept apart from phase 2);
4. backfill alone: a --backlog record topic copied with no live traffic (its time is the baseline
   for 5; --backlog 0 skips 4 and 5);
5. live + backfill: phase 2 while the same mirror copies the other backlog from its start.
Both readers read like a consumer that waits for batches: `consume(1000, 0.05)` (librdkafka
answers when the batch is full or the wait is up), the same in every phase.  It prints p50/p99/max
per phase and the ratios the targets are stated in: live p50 / platform p50 (target <= 1.5),
live p99 / platform p99 (target <= 2), live p99 during backfill / live p99 alone (target <= 2),
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
import socket
import tempfile
import threading
import time
import urllib.request
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
        self.seconds = 0.0  # how long it sent, once stopped

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due:
                try:
                    self.send(self.sent)
                except BufferError:
                    self.producer.poll(0.01)
                    continue
                self.sent += 1
            self.producer.poll(0)
            time.sleep(0.002)
        self.seconds = time.monotonic() - started
        self.producer.flush(30)

    def send(self, number: int) -> None:
        self.producer.produce(self.topic, struct.pack(">dQ", time.time(), number) + b"x" * 184,
                              partition=number % PARTITIONS)


class LatencyReader(threading.Thread):
    """Reads a topic from its start and records, per record, when it was read (and time read - time sent)."""

    def __init__(self, bootstrap: str, topic: str, isolation: str = "read_committed"):
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fresh-{os.getpid()}-{topic}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 5,
                                  "isolation.level": isolation, "receive.message.max.bytes": 2_147_483_647})
        self.topic = topic
        self.latencies: list[float] = []
        self.read_at: dict[int, float] = {}  # record number -> when it was read
        self.stop = threading.Event()

    def run(self) -> None:
        self.consumer.assign([TopicPartition(self.topic, p, 0) for p in range(PARTITIONS)])
        while not self.stop.is_set():
            for m in self.consumer.consume(1000, 0.05):
                value = m.value() if m.error() is None else None
                if value and len(value) >= 16:
                    now = time.time()
                    sent, number = struct.unpack(">dQ", value[:16])
                    self.latencies.append(now - sent)
                    self.read_at[number] = now
        self.consumer.close()

    def since(self, earlier: LatencyReader) -> list[float]:
        """Per record read by both: when this reader read it minus when `earlier` did."""
        return [self.read_at[n] - at for n, at in earlier.read_at.items() if n in self.read_at]


class CpuMeter:
    """CPU seconds of some processes (utime + stime from /proc) between start() and stop()."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.used: dict[str, float] = {}

    @staticmethod
    def seconds(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self._began = time.monotonic()
        self._at = {name: self.seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> str:
        wall = time.monotonic() - self._began
        self.used = {name: self.seconds(pid) - self._at[name] for name, pid in self.pids.items()}
        return ", ".join(f"{name} {used / wall * 100:.0f}%" for name, used in self.used.items())


def scrape(port: int) -> dict[str, float]:
    """The mirror's commit-duration and replication-latency histograms: count, mean, p50/p99 bucket bounds."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        short = {"migrate_mirror_commit_duration_seconds": "commit",
                 "migrate_mirror_replication_latency_seconds": "latency"}.get(family.name)
        if short is None:
            continue
        buckets = sorted((float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket"))
        count = sum(s.value for s in family.samples if s.name.endswith("_count"))
        total = sum(s.value for s in family.samples if s.name.endswith("_sum"))
        out[f"{short} count"] = count
        out[f"{short} mean ms"] = total / count * 1000 if count else float("nan")
        for q in (0.5, 0.99):
            bound = next((le for le, c in buckets if c >= q * count), float("inf")) if count else float("nan")
            out[f"{short} p{int(q * 100)} <= ms"] = bound * 1000
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def start_mirror(work: Path, source: str, target: str, pattern: str, name: str, extra: list[str],
                 patch: str = "", metrics_port: int = 0) -> subprocess.Popen:
    """`migrate mirror --follow` in a process of its own; `patch` ("module.NAME=value ...", modules under
    migrate.mirror) sets module constants first: the baseline settings, measured in the same run."""
    code = "".join(f"import migrate.mirror.{m} as _m; _m.{n} = {v}\n" for m, n, v in map(_split, patch.split()))
    metrics = ["--metrics-port", str(metrics_port)] if metrics_port else []
    return subprocess.Popen([sys.executable, "-c", code + "from migrate.cli import main; main()",
                             "--state", str(work / f"{name}.db"), "mirror",
                             "--source", source, "--target", target, "--topics", pattern, "--name", name,
                             "--follow", "--session-timeout-ms", "6000", *metrics, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _split(item: str) -> tuple[str, str, str]:
    target, value = item.split("=", 1)
    module, name = target.rsplit(".", 1)
    return module, name, value


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def live_phase(source: str, target: str, topic: str, rate: float, seconds: float,
               hops: bool = False) -> dict[str, LatencyReader]:
    """Readers of one phase, by name: "end" on the target (read_committed) always; with `hops` also
    "source" (the source topic) and "written" (the target, read_uncommitted: a record is there as
    soon as the mirror's producer wrote it, before its transaction commits)."""
    readers = {"end": LatencyReader(target, topic)}
    if hops:
        readers["source"] = LatencyReader(source, topic)
        readers["written"] = LatencyReader(target, topic, "read_uncommitted")
    for reader in readers.values():
        reader.start()
    time.sleep(1)
    producer = LiveProducer(source, topic, rate)
    producer.start()
    time.sleep(seconds)
    producer.stop.set()
    producer.join()
    time.sleep(3)  # let the last records arrive
    for reader in readers.values():
        reader.stop.set()
        reader.join()
    return readers


def row(name: str, values: list[float], seconds: float | None = None) -> tuple:
    return (name, *percentiles(values), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--source", default="noida")
    parser.add_argument("--target", default="tansu")
    parser.add_argument("--no-hops", action="store_true", help="skip the per-hop phase")
    parser.add_argument("--mirror-args", default="", help="extra arguments of `migrate mirror`")
    parser.add_argument("--patch", action="append", default=[],
                        help="also a live phase with these migrate.mirror constants set (repeatable: a phase each)")
    args = parser.parse_args()
    extra = args.mirror_args.split()
    work = Path(tempfile.mkdtemp(prefix="fresh-"))
    src = platforms.start_broker(platforms.platform(args.source), "source", data_dir=work / "src", die_with_parent=True)
    tgt = platforms.start_broker(platforms.platform(args.target), "target", data_dir=work / "tgt", die_with_parent=True)
    source, target = profile("source", src.bootstrap), profile("target", tgt.bootstrap)
    rows: list[tuple] = []
    ratios: list[str] = []
    try:
        for name, cluster in (("platform", target), ("live", source), ("hops", source),
                              ("live2", source)):
            kafka.create_topic(cluster, f"bench.{name}", PARTITIONS)
        if args.backlog:
            for name in ("backlog", "backlog2"):
                kafka.create_topic(source, f"bench.{name}", 1, {"retention.ms": "-1"})
                print(f"filling bench.{name} with {args.backlog:,} records ...", flush=True)
                fill(src.bootstrap, f"bench.{name}", args.backlog)

        lat = live_phase(tgt.bootstrap, tgt.bootstrap, "bench.platform", args.rate, args.seconds)["end"].latencies
        platform_row = row("platform only", lat)
        rows.append(platform_row)

        mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, r"bench\.live", "live", extra)
        time.sleep(8)  # started and caught up
        lat = live_phase(src.bootstrap, tgt.bootstrap, "bench.live", args.rate, args.seconds)["end"].latencies
        stop(mirror)
        live_row = row("mirror, live only", lat)
        rows.append(live_row)
        ratios.append(f"live p50 / platform p50: {live_row[1] / platform_row[1]:.2f} (target <= 1.5)")
        ratios.append(f"live p99 / platform p99: {live_row[2] / platform_row[2]:.2f} (target <= 2)")

        for number, patch in enumerate(args.patch, 1):
            topic = f"bench.livep{number}"
            kafka.create_topic(source, topic, PARTITIONS)
            mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, topic.replace(".", r"\."), f"livep{number}",
                                  extra, patch)
            time.sleep(8)
            lat = live_phase(src.bootstrap, tgt.bootstrap, topic, args.rate, args.seconds)["end"].latencies
            stop(mirror)
            patched = row(f"mirror, live only, patch {number}", lat)
            rows.append(patched)
            ratios.append(f"patch {number} ({patch}): live p50 / platform p50: {patched[1] / platform_row[1]:.2f}, "
                          f"p99: {patched[2] / platform_row[2]:.2f}")

        if not args.no_hops:
            port = free_port()
            mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, r"bench\.hops", "hops", extra, metrics_port=port)
            time.sleep(8)
            r = live_phase(src.bootstrap, tgt.bootstrap, "bench.hops", args.rate, args.seconds, hops=True)
            figures = scrape(port)
            stop(mirror)
            rows += [row("hops: end to end", r["end"].latencies),
                     row("  producer -> source reader", r["source"].latencies),
                     row("  source reader -> written on target (uncommitted)", r["written"].since(r["source"])),
                     row("  written -> committed (read_committed reader)", r["end"].since(r["written"]))]
            ratios.append("mirror's own figures (hops phase): " + ", ".join(f"{k} {v:.0f}" for k, v in figures.items()))

        if args.backlog:
            # the backlog alone: how long the same mirror takes to copy it with no live traffic
            alone_started = time.monotonic()
            mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, r"bench\.backlog", "alone", extra)
            while mirrored_to(work / "alone.db", "alone", "bench.backlog") < args.backlog:
                time.sleep(0.2)
            alone = time.monotonic() - alone_started
            stop(mirror)
            rows.append(("backfill alone", None, None, None, alone))

            # live traffic while the same mirror copies the other backlog from its start
            reader = LatencyReader(tgt.bootstrap, "bench.live2")
            reader.start()
            both_started = time.monotonic()
            mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, r"bench\.(live2|backlog2)", "both", extra)
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
            during = row("mirror, live during backfill", reader.latencies, both)
            rows.append(during)
            ratios.append(f"live p99 during backfill / alone: {during[2] / live_row[2]:.2f} (target <= 2)")
            ratios.append(f"backfill with live traffic / alone: {both / alone:.2f} (target <= 1.3)")
            ratios.append(f"live records measured: {len(reader.latencies):,} during a backfill of {args.backlog:,}")
    finally:
        platforms.stop_broker(src.pid, src.port)
        platforms.stop_broker(tgt.pid, tgt.port)
    print(f"\n{args.source} -> {args.target}, {args.rate:.0f} records/s on {PARTITIONS} partitions, "
          f"{args.seconds:.0f} s per live phase, mirror args: {' '.join(extra) or '(defaults)'}")
    print(f"{'phase':44} {'p50 ms':>10} {'p99 ms':>10} {'max ms':>10} {'seconds':>10}")
    for name, p50, p99, worst, seconds in rows:
        cells = [f"{v:10.0f}" if isinstance(v, float) else f"{'':>10}" for v in (p50, p99, worst, seconds)]
        print(f"{name:44} " + " ".join(cells))
    print()
    for line in ratios:
        print(line)


if __name__ == "__main__":
    main()
