"""Steady state at estate size: the mirror's CPU per record and live latency against the raw pipe's.

    python benchmarks/steady.py [--partitions 2000] [--rate 5000] [--seconds 30] [--initial 50]
                                [--source noida] [--target tansu] [--mirror-args '...']

One source broker (noida-db by default) holds --partitions partitions as topics bench.tNNNN of 5
partitions (mirror_scale.layout), each filled with --initial records (the initial copy; their
values start with b"init").  Then, one after the other in the same run, each phase with a fresh
target broker of its own (Tansu by default: no phase pays for another's partitions on the target,
and no target holds more than one estate):
1. platform: the live producer writes straight to the target's plat.* topics, a reader reads them
   there: the platform's own p50/p99;
2. raw pipe: a child process running the simplest confluent-kafka consume -> produce loop (one
   consumer assigned every partition, one idempotent lz4 producer, no transactions, no maps),
   following bench.* into raw.* until SIGTERM; once the reader on raw.* has the initial copy, the
   live window runs on the source;
3. mirror: `migrate mirror --follow --rename 'mir.{topic}' --session-timeout-ms 6000` (plus
   --mirror-args) in a child process; once the reader on mir.* has everything the source held
   (the initial copy and phase 2's live records), the same live window.
The live window: a producer (linger.ms 5) at --rate records/s spread round-robin over all
partitions (record n to partition n % P), for --seconds; each value carries its send time, its
number and its phase's tag.  The reader is one consumer assigned every target partition from
offset 0 (read_committed, consume(1000, 0.05) as in freshness.py): latency = time read - time sent,
for every live record of the phase, also those read in the drain after the window.  CPU seconds
(utime + stime from /proc) of the pipe process, the brokers and this process (producer + reader)
are taken over exactly the window (producer start to producer stop); CPU per million records =
pipe CPU / records sent in the window * 1e6.  The raw pipe waits up to 10 ms for records
(consume(5000, 0.01)), about as often as the mirror's loop wakes under live traffic (it waits
until its open transactions are due, 30 ms by default, or for the first record).

It prints per phase: records sent in the window and the rate reached, p50/p99/max ms, pipe CPU
seconds and CPU seconds per million records, live records missed (sent, not read --drain seconds
after the window: lost or very late, a bug) and read twice; per phase, the brokers' CPU, whether
the target holds the catch-up records exactly once and how long after the window the last live
record was read; then the ratios: mirror CPU per record / raw pipe's (target <= 1.5), mirror p99 / platform
p99 (target <= 2), mirror p50 / platform p50, raw p99 / platform p99 (for reference).  When the
platform phase itself falls behind (p99 over a second, records not read in time) it says so: the
target is saturated and the latency ratios compare saturated brokers (Tansu 0.6.0 at 2,000
partitions and 5,000 records/s: each record is a batch of its own, and Tansu's Fetch walks every
batch of a partition); the CPU figures are still those of the same windows.
Each phase's (record number, latency) pairs are kept in the work dir as <phase>.latencies.json.
Wall-clock figures on a shared machine are noisy: read the ratios, which share the same conditions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from confluent_kafka import Consumer, Producer, TopicPartition

from freshness import CpuMeter, LatencyReader, LiveProducer, percentiles, profile, stop
from migrate import kafka
from migrate.local import platforms
from mirror_scale import copy_record, layout, start

VALUE_SIZE = 200
TAGS = {"platform": b"plat", "raw pipe": b"raw_", "mirror": b"mir_"}
PREFIX = {"platform": "plat.", "raw pipe": "raw.", "mirror": "mir."}
RAW_WAIT_S = 0.01  # the raw pipe's consume wait (the measured runs used it)
Parts = list[tuple[str, int]]


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def live_value(number: int, tag: bytes) -> bytes:
    return struct.pack(">dQ", time.time(), number) + tag + b"x" * (VALUE_SIZE - 20)


def fill(bootstrap: str, parts: Parts, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1_000_000,
                         "queue.buffering.max.kbytes": 262144})
    for i in range(per_partition * len(parts)):
        topic, partition = parts[i % len(parts)]
        while True:
            try:
                producer.produce(topic, b"init" + struct.pack(">Q", i) + b"i" * (VALUE_SIZE - 12), partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(300)


class SpreadProducer(LiveProducer):
    """freshness.LiveProducer over many partitions: record n goes to parts[n % len(parts)]."""

    def __init__(self, bootstrap: str, parts: Parts, rate: float, tag: bytes):
        super().__init__(bootstrap, "", rate)
        self.parts, self.tag = parts, tag
        self.failed = 0

    def send(self, number: int) -> None:
        topic, partition = self.parts[number % len(self.parts)]
        self.producer.produce(topic, live_value(number, self.tag), partition=partition, on_delivery=self._delivered)

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.failed += 1


class EstateReader(LatencyReader):
    """freshness.LatencyReader over many partitions: live records of its phase's tag are timed,
    every other record (the initial copy, earlier phases' live records) is counted as backlog."""

    def __init__(self, bootstrap: str, parts: Parts, tag: bytes):
        super().__init__(bootstrap, "estate")
        self.parts, self.tag = parts, tag
        self.numbers: set[int] = set()
        self.timeline: list[tuple[int, float]] = []  # (record number, latency) in reading order
        self.live_reads = self.backlog = self.errors = 0

    def run(self) -> None:
        self.consumer.assign([TopicPartition(t, p, 0) for t, p in self.parts])
        while not self.stop.is_set():
            for m in self.consumer.consume(1000, 0.05):
                if m.error() is not None:
                    self.errors += 1
                    continue
                value = m.value() or b""
                if value[16:20] == self.tag:
                    now = time.time()
                    sent, number = struct.unpack(">dQ", value[:16])
                    self.latencies.append(now - sent)
                    self.numbers.add(number)
                    self.timeline.append((number, now - sent))
                    self.live_reads += 1
                else:
                    self.backlog += 1
        self.consumer.close()


def raw_child(job: dict) -> None:
    """The raw pipe, following until SIGINT/SIGTERM; prints {"copied": N} at the end."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    consumer = Consumer({"bootstrap.servers": job["source"], "group.id": "steady-raw", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 20, "receive.message.max.bytes": 2_147_483_647})
    producer = Producer({"bootstrap.servers": job["target"], "linger.ms": 5, "batch.size": 1_000_000,
                         "compression.type": "lz4", "enable.idempotence": True})
    consumer.assign([TopicPartition(t, p, 0) for t, p in job["parts"]])
    copied = 0
    while not stopping.is_set():
        for m in consumer.consume(5000, RAW_WAIT_S):
            if m.error():
                continue
            copy_record(producer, m)
            copied += 1
        producer.poll(0)
    producer.flush(30)
    consumer.close()
    print(json.dumps({"copied": copied}), flush=True)


def start_raw(work: Path, source: str, target: str, parts: Parts) -> subprocess.Popen:
    job = json.dumps({"source": source, "target": target, "parts": parts})
    return subprocess.Popen([sys.executable, __file__, "--raw-child", job], stdout=subprocess.PIPE,
                            stderr=open(work / "raw.log", "wb"), text=True)


def start_mirror(work: Path, source: str, target: str, extra: list[str]) -> subprocess.Popen:
    """Like freshness.start_mirror, with the mirror's log kept (work/mirror.log) to tell why it stopped."""
    return subprocess.Popen([sys.executable, "-m", "migrate", "--state", str(work / "steady.db"), "mirror",
                             "--source", source, "--target", target, "--topics", r"bench\..*", "--name", "steady",
                             "--rename", "mir.{topic}", "--follow", "--session-timeout-ms", "6000", *extra],
                            stdout=subprocess.DEVNULL, stderr=open(work / "mirror.log", "wb"))


@contextlib.contextmanager
def broker(name: str, role: str, data_dir: Path) -> Iterator[platforms.BrokerProcess]:
    process = start(name, role, data_dir)
    try:
        yield process
    finally:
        platforms.stop_broker(process.pid, process.port)


def create(bootstrap: str, topics: dict[str, int], what: str) -> None:
    began = time.monotonic()
    cluster = profile(what, bootstrap)
    kafka.create_topics(cluster, {t: (n, {"retention.ms": "-1"}) for t, n in topics.items()}, timeout=300)
    kafka.wait_for_topics(cluster, topics, timeout=300)
    log(f"{what}: {len(topics)} topics, {sum(topics.values())} partitions created in {time.monotonic() - began:.1f}s")


def wait_for(what: str, done, pipe: subprocess.Popen | None, timeout: float) -> float:
    """Seconds until done() is true; raises if the pipe process ends or the time is up."""
    began = time.monotonic()
    while not done():
        if pipe is not None and pipe.poll() is not None:
            raise SystemExit(f"{what}: the pipe process exited with code {pipe.returncode} (see its log)")
        if time.monotonic() - began > timeout:
            raise SystemExit(f"{what}: not done within {timeout:.0f}s")
        time.sleep(0.1)
    return time.monotonic() - began


def map_size(state: Path) -> int:
    """Offset-map runs in a mirror's state file: the map's growth is a daily cost of dual running."""
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        return db.execute("SELECT COUNT(*) FROM offset_runs").fetchone()[0]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def live_window(phase: str, args, producer_at: str, source_parts: Parts, reader: EstateReader,
                backlog: int, pids: dict[str, int], pipe: subprocess.Popen | None = None,
                state: Path | None = None) -> dict:
    """Waits until the reader has `backlog` earlier records, then the live window; the phase's figures."""
    caught_up = wait_for(f"{phase}: catch-up to {backlog:,} records", lambda: reader.backlog >= backlog,
                         pipe, args.catch_up_timeout)
    log(f"{phase}: target holds the {backlog:,} earlier records after {caught_up:.1f}s; live window")
    time.sleep(1)
    meter = CpuMeter({**pids, "bench": os.getpid()})
    map_before = map_size(state) if state else None
    rss_before = rss_mb(pids["pipe"]) if "pipe" in pids else None
    meter.start()
    producer = SpreadProducer(producer_at, source_parts, args.rate, TAGS[phase])
    producer.start()
    time.sleep(args.seconds)
    producer.stop.set()
    producer.join()
    meter.stop()
    drained = None  # seconds after the window until every live record was read
    with contextlib.suppress(SystemExit):
        drained = wait_for(f"{phase}: drain", lambda: len(reader.numbers) >= producer.sent, None, args.drain)
    reader.stop.set()
    reader.join()
    time.sleep(2 if state else 0)  # the mirror's last commits saved
    map_growth = map_size(state) - map_before if state and map_before is not None else None
    rss_growth = rss_mb(pids["pipe"]) - rss_before if rss_before is not None else None
    p50, p99, worst = percentiles(reader.latencies)
    (args.work / f"{phase.replace(' ', '-')}.latencies.json").write_text(json.dumps(reader.timeline))
    missed = producer.sent - len(reader.numbers)
    log(f"{phase}: sent {producer.sent:,}, read {len(reader.numbers):,} distinct, p99 {p99:.0f} ms")
    return {"phase": phase, "sent": producer.sent, "rate": producer.sent / producer.seconds, "p50": p50,
            "p99": p99, "max": worst, "cpu": meter.used, "missed": missed, "twice": reader.live_reads - len(reader.numbers),
            "failed": producer.failed, "errors": reader.errors, "backlog": (reader.backlog, backlog),
            "caught_up": caught_up, "drained": drained, "map": map_growth, "rss": rss_growth}


def platform_phase(args, work: Path, topics: dict[str, int], src: platforms.BrokerProcess) -> dict:
    with broker(args.target, "target", work / "plat-target") as tgt:
        plat = {"plat." + t: n for t, n in topics.items()}
        create(tgt.bootstrap, plat, "platform target")
        parts = [(t, p) for t, n in plat.items() for p in range(n)]
        reader = EstateReader(tgt.bootstrap, parts, TAGS["platform"])
        reader.start()
        return live_window("platform", args, tgt.bootstrap, parts, reader, 0, {"source": src.pid, "target": tgt.pid})


def raw_phase(args, work: Path, topics: dict[str, int], src: platforms.BrokerProcess, backlog: int) -> dict:
    with broker(args.target, "target", work / "raw-target") as tgt:
        create(tgt.bootstrap, {"raw." + t: n for t, n in topics.items()}, "raw pipe target")
        parts = [(t, p) for t, n in topics.items() for p in range(n)]
        pipe = start_raw(work, src.bootstrap, tgt.bootstrap, parts)
        reader = EstateReader(tgt.bootstrap, [("raw." + t, p) for t, p in parts], TAGS["raw pipe"])
        reader.start()
        try:
            result = live_window("raw pipe", args, src.bootstrap, parts, reader, backlog,
                                 {"pipe": pipe.pid, "source": src.pid, "target": tgt.pid}, pipe)
        finally:
            reader.stop.set()
            pipe.send_signal(signal.SIGTERM)
            out, _ = pipe.communicate(timeout=60)
        log(f"raw pipe: {out.strip()} in all")
        return result


def mirror_phase(args, work: Path, topics: dict[str, int], src: platforms.BrokerProcess, backlog: int) -> dict:
    with broker(args.target, "target", work / "mirror-target") as tgt:
        began = time.monotonic()
        mirror = start_mirror(work, src.bootstrap, tgt.bootstrap, args.mirror_args.split())
        try:
            mir = {"mir." + t: n for t, n in topics.items()}
            wait_for("mirror: target topics", lambda: _exist(tgt.bootstrap, mir), mirror, args.catch_up_timeout)
            log(f"mirror: created its {len(mir)} target topics in {time.monotonic() - began:.1f}s")
            parts = [(t, p) for t, n in topics.items() for p in range(n)]
            reader = EstateReader(tgt.bootstrap, [("mir." + t, p) for t, p in parts], TAGS["mirror"])
            reader.start()
            try:
                return live_window("mirror", args, src.bootstrap, parts, reader, backlog,
                                   {"pipe": mirror.pid, "source": src.pid, "target": tgt.pid}, mirror,
                                   work / "steady.db")
            finally:
                reader.stop.set()
        finally:
            if mirror.poll() is not None:
                log(f"mirror exited with code {mirror.returncode}; its log: {work / 'mirror.log'}")
            stop(mirror)


def _exist(bootstrap: str, topics: dict[str, int]) -> bool:
    try:
        kafka.wait_for_topics(profile("target", bootstrap), topics, timeout=1)
        return True
    except Exception:  # not all there yet
        return False


def report(args, results: list[dict], partitions: int, extra: str) -> None:
    print(f"\n{args.source} -> {args.target}, {partitions:,} partitions, {args.initial} initial records each, "
          f"{args.rate:.0f} records/s for {args.seconds:.0f} s per phase, mirror args: {extra or '(defaults)'}")
    heads = ["phase", "records", "rate/s", "p50 ms", "p99 ms", "max ms", "CPU-s", "CPU-s/M rec", "missed", "twice"]
    print(f"{heads[0]:10}" + "".join(f"{h:>12}" for h in heads[1:]))
    for r in results:
        cpu = r["cpu"].get("pipe")
        cells = [f"{r['sent']:,}", f"{r['rate']:,.0f}", f"{r['p50']:.0f}", f"{r['p99']:.0f}", f"{r['max']:.0f}",
                 "" if cpu is None else f"{cpu:.2f}", "" if cpu is None else f"{cpu / r['sent'] * 1e6:.1f}",
                 f"{r['missed']:,}", f"{r['twice']:,}"]
        print(f"{r['phase']:10}" + "".join(f"{c:>12}" for c in cells))
    print()
    for r in results:
        cpu = ", ".join(f"{k} {v:.2f}s" for k, v in r["cpu"].items() if k != "pipe")
        held, wanted = r["backlog"]
        drained = "never" if r["drained"] is None else f"{r['drained']:.1f}s"
        print(f"{r['phase']}: CPU over the window: {cpu}; earlier records on the target {held:,} of {wanted:,}"
              f"{'' if held == wanted else ' <-- NOT EXACTLY ONCE'}; last live record read {drained} after the "
              f"window; reader errors {r['errors']}, failed sends {r['failed']}")
    for r in results:
        if r["missed"] or r["twice"] or r["failed"]:
            print(f"!!! {r['phase']}: {r['missed']:,} live records sent and not read {args.drain:.0f}s after the "
                  f"window, {r['twice']:,} read twice, {r['failed']:,} sends failed: A BUG (lost, or very late)")
    by = {r["phase"]: r for r in results}
    plat, raw, mir = by.get("platform"), by.get("raw pipe"), by.get("mirror")
    print()
    if raw and mir:
        ratio = (mir["cpu"]["pipe"] / mir["sent"]) / (raw["cpu"]["pipe"] / raw["sent"])
        print(f"mirror CPU per record / raw pipe's: {ratio:.2f} (target <= 1.5)")
    if plat and (plat["missed"] or plat["drained"] is None or plat["p99"] > 1000):
        print(f"!!! the platform alone did not keep up (p99 {plat['p99']:.0f} ms, {plat['missed']:,} not read in time): "
              "the target is saturated at this rate and size, so the latency ratios below compare saturated "
              "brokers; lower --rate or use another --target for them")
    if plat and mir:
        print(f"mirror p99 / platform p99: {mir['p99'] / plat['p99']:.2f} (target <= 2)")
        print(f"mirror p50 / platform p50: {mir['p50'] / plat['p50']:.2f}")
    if plat and raw:
        print(f"raw pipe p99 / platform p99: {raw['p99'] / plat['p99']:.2f} (for reference)")
    if mir and mir["map"] is not None:
        # Each commit ends a run of every partition it wrote (its marker takes a target offset).
        runs = mir["map"]
        print(f"mirror's offset map over the window: {runs:,} runs added ({runs / mir['sent'] * 1000:.0f} per 1,000 live "
              f"records): at this rate {runs / args.seconds * 86400 / 1e6:.1f}M runs a day; the mirror's RSS "
              f"{mir['rss']:+.1f} MB over the window (raw pipe {raw['rss'] if raw else float('nan'):+.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--initial", type=int, default=50, help="records per partition before the live phases")
    parser.add_argument("--source", default="noida", choices=platforms.PLATFORMS)
    parser.add_argument("--target", default="tansu", choices=platforms.PLATFORMS)
    parser.add_argument("--mirror-args", default="", help="extra arguments of `migrate mirror`")
    parser.add_argument("--catch-up-timeout", type=float, default=300)
    parser.add_argument("--drain", type=float, default=60, help="seconds at most to wait for the last live records")
    parser.add_argument("--raw-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_child:
        return raw_child(json.loads(args.raw_child))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop every child
    began = time.monotonic()
    work = args.work = Path(tempfile.mkdtemp(prefix="steady-"))
    topics = layout(args.partitions)
    parts = [(t, p) for t, n in topics.items() for p in range(n)]
    results: list[dict] = []
    with broker(args.source, "source", work / "source") as src:
        create(src.bootstrap, topics, "source")
        fill(src.bootstrap, parts, args.initial)
        log(f"source: {args.initial * len(parts):,} initial records written")
        results.append(platform_phase(args, work, topics, src))
        results.append(raw_phase(args, work, topics, src, args.initial * len(parts)))
        backlog = args.initial * len(parts) + results[-1]["sent"]
        results.append(mirror_phase(args, work, topics, src, backlog))
    report(args, results, len(parts), args.mirror_args)
    log(f"done in {time.monotonic() - began:.0f}s; work dir {work}")


if __name__ == "__main__":
    main()
