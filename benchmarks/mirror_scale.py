"""Mirror at estate size: the same records spread over more and more partitions, one worker.

    python benchmarks/mirror_scale.py [--records 200000] [--size 200] [--partitions 6,100,1000,2000]
                                      [--source noida] [--target tansu] [--open-transactions 1]

For each partition count P it fills P partitions (topics of at most 5 partitions; 6 is one
topic) with the same total records on a fresh source broker, then, each in a child process
sampled from /proc every 0.1 s and each writing to a fresh target broker of its own:
- raw: the simplest confluent-kafka consume -> produce loop (no transactions, no maps), one
  consumer and one producer over all partitions: what the platforms give at that size;
- mirror: `Mirror(...).run()` with --until-caught-up, default settings (8 write slots);
- mirror --open-transactions N (default 1; 0 skips it): the same, as a second mirror into
  other target topics, with at most N slot transactions open at once (Tansu's transactions
  cost more broker CPU when several are open together: see docs/platforms.md).
It prints records/s, the ratio to the smallest P of the same invocation, peak threads, peak
RSS, peak open file descriptors, the start-up time (to the first partition copying), CPU
seconds per million records, and the same for the copy alone (start-up excluded).  Then `migrate validate` of the largest estate against a raw
read of the same partitions (both sides, one consumer per 250 partitions).
Wall-clock figures on a shared machine are noisy: CPU seconds are steadier.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from cpuclock import CpuClock
from migrate import kafka
from migrate.config import ClusterProfile
from migrate.local import platforms


def profile(name: str, bootstrap: str) -> ClusterProfile:
    return ClusterProfile(name, {"bootstrap.servers": bootstrap})


def layout(partitions: int) -> dict[str, int]:
    if partitions <= 6:
        return {"bench.t0000": partitions}
    return {f"bench.t{i:04d}": 5 for i in range(partitions // 5)}


def fill(bootstrap: str, topics: dict[str, int], records: int, size: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1_000_000,
                         "queue.buffering.max.kbytes": 262144})
    value = b"v" * size
    keys = [(t, p) for t, n in topics.items() for p in range(n)]
    for i in range(records):
        topic, partition = keys[i % len(keys)]
        while True:
            try:
                producer.produce(topic, value, b"key-%d" % (i % 1000), partition=partition,
                                 headers=[("trace-id", b"%d" % i)])
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(300)


def copy_record(producer: Producer, m) -> None:
    """The raw pipe's copy of one record to the same partition of raw.<topic>, waiting when the queue is full."""
    while True:
        try:
            producer.produce("raw." + m.topic(), m.value(), m.key(), partition=m.partition(),
                             timestamp=m.timestamp()[1], headers=m.headers())
            return
        except BufferError:
            producer.poll(0.05)


def raw_pipe(source: str, target: str, topics: dict[str, int], records: int) -> dict:
    consumer = Consumer({"bootstrap.servers": source, "group.id": "bench-raw", "enable.auto.commit": False,
                         "enable.partition.eof": True, "fetch.wait.max.ms": 20,
                         "receive.message.max.bytes": 2_147_483_647})
    producer = Producer({"bootstrap.servers": target, "linger.ms": 5, "batch.size": 1_000_000,
                         "compression.type": "lz4", "enable.idempotence": True})
    parts = [TopicPartition(t, p, 0) for t, n in topics.items() for p in range(n)]
    consumer.assign(parts)
    started = time.monotonic()
    copied = eofs = 0
    while eofs < len(parts):
        for m in consumer.consume(5000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eofs += 1
                continue
            copy_record(producer, m)
            copied += 1
        producer.poll(0)
    producer.flush(120)
    seconds = time.monotonic() - started
    consumer.close()
    assert copied == records, f"raw pipe copied {copied} of {records}"
    return {"records": copied, "seconds": seconds, "startup": 0.0, "copy_from": started}


def mirror_job(source: str, target: str, state: str, open_transactions: int = 0) -> dict:
    from migrate.mirror import MirrorSpec, run_mirror
    from migrate.state import State

    # A gated run is a second mirror (own name, own target topics, own target broker) over the same source.
    name, rename = ("bench", "{topic}") if not open_transactions else ("gated", "gated.{topic}")
    spec = MirrorSpec(name=name, source=profile("source", source), target=profile("target", target),
                      topics=(r"bench\..*",), until_caught_up=True, compression="lz4", rename=rename,
                      open_transactions=open_transactions)
    with State(state) as st:
        began = time.monotonic()
        result = run_mirror(spec, st)
    assert result.ok and result.caught_up
    startup = result.seconds - result.copy_seconds
    return {"records": result.records, "seconds": result.seconds, "startup": startup, "copy_from": began + startup}


def child(job: dict) -> None:
    clock = CpuClock()
    if job["kind"] == "raw":
        out = raw_pipe(job["source"], job["target"], job["topics"], job["records"])
    else:
        out = mirror_job(job["source"], job["target"], job["state"], job.get("open_transactions", 0))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu"] = usage.ru_utime + usage.ru_stime
    # CPU of the copy alone: from the first record read (the raw pipe) or the first partition
    # copying (the mirror), to the end; imports, group join, fencing and reconciliation excluded.
    out["copy_cpu"] = out["cpu"] - clock.at(out.pop("copy_from"))
    print(json.dumps(out))


def proc_figures(pid: int) -> tuple[int, int, int]:
    """(threads, RSS in MB, open fds) of a live process."""
    threads = rss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0, 0, 0
    return threads, rss, fds


def run_child(job: dict) -> dict:
    process = subprocess.Popen([sys.executable, "-X", "faulthandler", __file__, "--child", json.dumps(job)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    peaks = [0, 0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            for i, value in enumerate(proc_figures(process.pid)):
                peaks[i] = max(peaks[i], value)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{job['kind']} failed (exit {process.returncode}):\n{err[-3000:]}{out[-1000:]}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures.update(threads=peaks[0], rss=peaks[1], fds=peaks[2])
    return figures


def start(platform_name: str, role: str, data_dir: Path) -> platforms.BrokerProcess:
    plat = platforms.platform(platform_name)
    return platforms.start_broker(plat, role, data_dir=data_dir if plat.keeps_data else None, die_with_parent=True)


@contextlib.contextmanager
def fresh(platform_name: str, data_dir: Path) -> Iterator[str]:
    """A target broker of its own for one job; yields its bootstrap address."""
    broker = start(platform_name, "target", data_dir)
    try:
        yield broker.bootstrap
    finally:
        platforms.stop_broker(broker.pid, broker.port)


def raw_read(profile_: ClusterProfile, keys: list[tuple[str, int]]) -> int:
    ends = kafka.partition_ends(profile_, keys)
    messages = kafka.read_ranges(profile_, {k: (ends[k].low, ends[k].high) for k in keys}, eof_ends=True)
    return sum(len(m) for m in messages.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--partitions", default="6,100,1000,2000")
    parser.add_argument("--source", default="noida", choices=platforms.PLATFORMS)
    parser.add_argument("--target", default="tansu", choices=platforms.PLATFORMS)
    parser.add_argument("--open-transactions", type=int, default=1,
                        help="also run the mirror with this --open-transactions limit (0: skip that run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))

    base = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    sizes = [int(p) for p in args.partitions.split(",")]
    rows, first_rate, first_gated, validate_row = [], None, None, None
    for size in sizes:
        source_broker = start(args.source, "source", base / f"source-{size}")
        source = source_broker.bootstrap
        try:
            topics = layout(size)
            kafka.create_topics(profile("source", source), {t: (n, {"retention.ms": "-1"}) for t, n in topics.items()})
            kafka.wait_for_topics(profile("source", source), topics, timeout=120)
            fill(source, topics, args.records, args.size)
            common = {"source": source, "topics": topics, "records": args.records}
            # Each job writes to a target of its own: a platform's cost per partition can grow with
            # the partitions it already holds (Tansu's transactions do), which would charge a later
            # job for an earlier one's topics.
            with fresh(args.target, base / f"raw-target-{size}") as target:
                kafka.create_topics(profile("target", target), {"raw." + t: (n, {}) for t, n in topics.items()})
                kafka.wait_for_topics(profile("target", target), {"raw." + t: n for t, n in topics.items()},
                                      timeout=120)
                rows.append(["raw pipe", size, run_child({**common, "target": target, "kind": "raw"})])
            with fresh(args.target, base / f"mirror-target-{size}") as target:
                mirror = run_child({**common, "target": target, "kind": "mirror", "state": str(base / f"state-{size}.db")})
                rows.append(["mirror", size, mirror])
                first_rate = first_rate or mirror["records"] / mirror["seconds"]
                if size == sizes[-1]:
                    validate_row = compare_validate(source, target, topics, base / f"state-{size}.db")
            if args.open_transactions:
                with fresh(args.target, base / f"gated-target-{size}") as target:
                    gated = run_child({**common, "target": target, "kind": "mirror",
                                       "state": str(base / f"gated-{size}.db"),
                                       "open_transactions": args.open_transactions})
                rows.append([f"mirror --open-transactions {args.open_transactions}", size, gated])
                first_gated = first_gated or gated["records"] / gated["seconds"]
        finally:
            platforms.stop_broker(source_broker.pid, source_broker.port)
    from tabulate import tabulate

    table = []
    raw_first = next(f for label, _s, f in rows if label == "raw pipe")
    for label, size, f in rows:
        rate = f["records"] / f["seconds"]
        base = (first_rate if label == "mirror" else first_gated if label.startswith("mirror ")
                else raw_first["records"] / raw_first["seconds"])
        table.append([label, size, f"{f['records']:,}", f"{rate:,.0f}",
                      f"{rate / base:.2f}", f["threads"], f["rss"], f["fds"],
                      f"{f['startup']:.1f}", f"{f['cpu'] / f['records'] * 1e6:.1f}",
                      f"{f['copy_cpu'] / f['records'] * 1e6:.1f}"])
    print(f"{args.source} -> {args.target}, {args.records:,} records of {args.size} B, {os.cpu_count()} cores")
    print(tabulate(table, headers=["job", "partitions", "records", "records/s", f"vs {sizes[0]} partitions",
                                   "peak threads", "peak RSS MB", "peak fds", "start-up s", "CPU s / M records",
                                   "copy CPU s / M records"]))
    if validate_row:
        print(f"validate at {sizes[-1]} partitions: {validate_row[0]:.1f}s (exit {validate_row[2]}); "
              f"raw read of both sides: {validate_row[1]:.1f}s")


def compare_validate(source: str, target: str, topics: dict[str, int], state: Path) -> tuple[float, float, int]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "migrate", "--state", str(state), "validate", "--name", "bench",
                           "--source", source, "--target", target], capture_output=True, text=True)
    validate_s = time.monotonic() - started
    keys = [(t, p) for t, n in topics.items() for p in range(n)]
    started = time.monotonic()
    raw_read(profile("source", source), keys)
    raw_read(profile("target", target), keys)
    return validate_s, time.monotonic() - started, done.returncode


if __name__ == "__main__":
    main()
