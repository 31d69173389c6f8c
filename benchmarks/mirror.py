"""Mirror throughput and memory against the raw pipe, all measured in the same run.

    python benchmarks/mirror.py [--records 1000000] [--size 200] [--partitions 6]
                                [--backlogs 1,4] [--source noida] [--target tansu]

For each backlog factor F it fills a source topic with F x records, then measures, each in
a fresh child process (so peak RSS is its own):
- raw: the simplest confluent-kafka consume -> produce loop (no transactions, no maps);
- mirror: `migrate mirror --until-caught-up` in the default mode;
- mirror --transactions.
It prints records/s, MB/s, the ratio to the raw pipe, peak RSS, and CPU seconds per million
records: the whole process, and the copy alone (start-up excluded; the lowest of the repeats).  Wall-clock figures on a
shared machine are noisy: read the ratios, which share the same conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from cpuclock import CpuClock
from migrate import kafka
from migrate.config import ClusterProfile
from migrate.local import platforms


def profile(name: str, bootstrap: str) -> ClusterProfile:
    return ClusterProfile(name, {"bootstrap.servers": bootstrap})


def fill(bootstrap: str, topic: str, records: int, size: int, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1_000_000,
                         "queue.buffering.max.kbytes": 262144})
    value = b"v" * size
    for i in range(records):
        while True:
            try:
                producer.produce(topic, value, b"key-%d" % (i % 1000), partition=i % partitions,
                                 headers=[("trace-id", b"%d" % i)])
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def raw_pipe(source: str, target: str, topic: str, out_topic: str, partitions: int, records: int) -> dict:
    consumer = Consumer({"bootstrap.servers": source, "group.id": "bench-raw", "enable.auto.commit": False,
                         "enable.partition.eof": True, "fetch.wait.max.ms": 20,
                         "receive.message.max.bytes": 2_147_483_647})
    producer = Producer({"bootstrap.servers": target, "linger.ms": 5, "batch.size": 1_000_000,
                         "compression.type": "lz4", "enable.idempotence": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    started = time.monotonic()
    copied = nbytes = eofs = 0
    while eofs < partitions:
        for m in consumer.consume(5000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eofs += 1
                continue
            value = m.value()
            while True:
                try:
                    producer.produce(out_topic, value, m.key(), partition=m.partition(),
                                     timestamp=m.timestamp()[1], headers=m.headers())
                    break
                except BufferError:
                    producer.poll(0.05)
            copied += 1
            nbytes += len(value)
        producer.poll(0)
    producer.flush(120)
    seconds = time.monotonic() - started
    consumer.close()
    assert copied == records, f"raw pipe copied {copied} of {records}"
    return {"records": copied, "bytes": nbytes, "seconds": seconds, "copy_from": started}


def mirror_job(source: str, target: str, topic: str, name: str, transactions: bool, state: str) -> dict:
    from migrate.mirror import MirrorSpec, run_mirror
    from migrate.state import State

    spec = MirrorSpec(name=name, source=profile("source", source), target=profile("target", target),
                      topics=(topic,), rename="mirror-" + name + ".{topic}", until_caught_up=True,
                      transactions=transactions, compression="lz4")
    with State(state) as st:
        began = time.monotonic()
        result = run_mirror(spec, st)
    assert result.ok and result.caught_up
    return {"records": result.records, "bytes": result.bytes, "seconds": result.seconds,
            "copy_seconds": result.copy_seconds, "copy_from": began + result.seconds - result.copy_seconds}


def child(args: argparse.Namespace) -> None:
    job = json.loads(args.child)
    clock = CpuClock()
    if job["kind"] == "raw":
        out = raw_pipe(job["source"], job["target"], job["topic"], job["out_topic"], job["partitions"], job["records"])
    else:
        out = mirror_job(job["source"], job["target"], job["topic"], job["name"], job["transactions"], job["state"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mb"] = usage.ru_maxrss / 1024
    out["cpu"] = usage.ru_utime + usage.ru_stime
    # the copy alone: from the first record read (raw) or the first partition copying (mirror)
    out["copy_cpu"] = out["cpu"] - clock.at(out.pop("copy_from"))
    print(json.dumps(out))


def run_child(job: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{job['kind']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--backlogs", default="1,4", help="backlog factors, comma separated")
    parser.add_argument("--source", default="noida", choices=platforms.PLATFORMS)
    parser.add_argument("--target", default="tansu", choices=platforms.PLATFORMS)
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each job, interleaved; the best of each is reported (shared machines are noisy)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    base = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    rows = []
    for factor in [int(f) for f in args.backlogs.split(",")]:
        records = args.records * factor
        brokers = []
        for role, plat_name in (("source", args.source), ("target", args.target)):
            plat = platforms.platform(plat_name)
            brokers.append(platforms.start_broker(plat, role, data_dir=base / f"{role}-{factor}" if plat.keeps_data
                                                  else None, die_with_parent=True))
        source, target = (b.bootstrap for b in brokers)
        try:
            topic = "bench.events"
            kafka.create_topic(profile("source", source), topic, args.partitions, {"retention.ms": "-1"})
            started = time.monotonic()
            fill(source, topic, records, args.size, args.partitions)
            print(f"backlog {factor}x: filled {records:,} records of {args.size} B in {time.monotonic() - started:.1f}s",
                  file=sys.stderr)
            common = {"source": source, "target": target, "topic": topic, "partitions": args.partitions,
                      "records": records}
            runs: dict[str, list[dict]] = {"raw": [], "default": [], "txn": []}
            for attempt in range(args.repeats):
                out_topic = f"raw{attempt}.{topic}"
                kafka.create_topic(profile("target", target), out_topic, args.partitions, {"retention.ms": "-1"})
                runs["raw"].append(run_child({**common, "kind": "raw", "out_topic": out_topic}))
                for label, transactions in (("default", False), ("txn", True)):
                    runs[label].append(run_child({**common, "kind": "mirror", "name": f"{label}{attempt}",
                                                  "transactions": transactions,
                                                  "state": str(base / f"state-{factor}-{label}{attempt}.db")}))
            raw, default, txn = (max(runs[k], key=lambda r: r["records"] / r["seconds"]) for k in ("raw", "default", "txn"))
            peak = {k: max(r["peak_rss_mb"] for r in runs[k]) for k in runs}
            cpu = {k: (min(r["cpu"] for r in runs[k]) / records * 1e6, min(r["copy_cpu"] for r in runs[k]) / records * 1e6)
                   for k in runs}
        finally:
            for broker in brokers:
                platforms.stop_broker(broker.pid, broker.port)
        for label, key, figures in (("raw pipe", "raw", raw), ("mirror (default)", "default", default),
                                    ("mirror --transactions", "txn", txn)):
            rate = figures["records"] / figures["seconds"]
            raw_rate = raw["records"] / raw["seconds"]
            steady = figures["records"] / figures.get("copy_seconds", figures["seconds"]) / raw_rate
            rows.append([f"{factor}x", label, f"{figures['records']:,}", f"{rate:,.0f}",
                         f"{figures['bytes'] / figures['seconds'] / 1e6:.1f}",
                         f"{rate / raw_rate:.2f}", f"{steady:.2f}", f"{peak[key]:.0f}",
                         f"{cpu[key][0]:.2f}", f"{cpu[key][1]:.2f}"])
    from tabulate import tabulate

    print(f"{args.source} -> {args.target}, {args.partitions} partitions, {args.size} B values, "
          f"{os.cpu_count()} cores")
    print(tabulate(rows, headers=["backlog", "job", "records", "records/s", "MB/s", "vs raw",
                                 "vs raw, start-up excluded", "peak RSS MB", "CPU s / M records",
                                 "copy CPU s / M records"]))
    print(f"best of {args.repeats} interleaved runs per job (CPU: the lowest); 'vs raw' counts the mirror's start-up "
          "(group join, fencing, reconciliation), the next column counts from the first partition resumed")


if __name__ == "__main__":
    main()
