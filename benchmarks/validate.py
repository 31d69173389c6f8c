"""Benchmark of `migrate validate` (map mode) against local clusters.

Starts a source and a target broker (noida-db -> Tansu by default), writes the same N records
(~200 B values, keys and headers) to both, records the offset map as a mirror would, then,
each in its own process so that peak RSS is the process's own:
  1. the raw dual read: plain confluent-kafka consume of every record of both clusters, no hashing;
  2. validation with a small window and with a large window (throughput and peak RSS);
  3. hashing alone: xxh3-128 digests of the same records in memory (is hashing the bottleneck?).

Usage: python benchmarks/validate.py [--records 1000000] [--partitions 8] [--windows 1000,100000]
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

from migrate.config import ClusterProfile


def profile(name: str, bootstrap: str) -> ClusterProfile:
    return ClusterProfile(name=name, settings={"bootstrap.servers": bootstrap})


BASE_TS = int(time.time() * 1000) - 3_600_000  # recent: noida-db applies retention to CreateTime


def record(i: int, value_size: int) -> tuple[bytes, bytes, list, int]:
    key = f"workflow-{i % 5000:05d}".encode()
    body = (f"{i:012d}|" * (value_size // 13 + 1)).encode()[:value_size]
    return key, body, [("trace-id", f"{i:016x}".encode()), ("agent", b"planner")], BASE_TS + i // 100


def fill(bootstrap: str, topic: str, partitions: int, records: int, value_size: int) -> None:
    from migrate import kafka

    p = profile("fill", bootstrap)
    kafka.create_topic(p, topic, partitions)
    kafka.wait_for_topic(p, topic, partitions)
    producer = kafka.producer(p, **{"linger.ms": 20, "batch.size": 1 << 20, "enable.idempotence": True,
                                    "queue.buffering.max.messages": 500_000, "compression.type": "none"})
    for i in range(records):
        key, value, headers, ts = record(i, value_size)
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=i % partitions, headers=headers, timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit(f"could not write records to {bootstrap}")


def save_map(state_path: str, topic: str, partitions: int, records: int) -> None:
    from migrate.offset_maps.runs import PartitionMap
    from migrate.offset_maps.store import MapStore
    from migrate.state import State

    with State(state_path) as state:
        store = MapStore(state, "bench")
        for p in range(partitions):
            n = records // partitions + (1 if p < records % partitions else 0)
            pmap = PartitionMap()
            pmap.append_run(0, 0, n)
            store.save(topic, p, pmap, topic)


# --- child processes ---------------------------------------------------------------------------


def child_raw(args) -> dict:
    from confluent_kafka import Consumer, TopicPartition

    started = time.perf_counter()
    total = 0
    for bootstrap in (args.source, args.target):
        client = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-raw", "enable.auto.commit": False,
                           "enable.partition.eof": True, "auto.offset.reset": "earliest",
                           "isolation.level": "read_committed", "queued.max.messages.kbytes": 16384,
                           "fetch.max.bytes": 8 << 20, "max.partition.fetch.bytes": 4 << 20,
                           "fetch.wait.max.ms": 50, "receive.message.max.bytes": 2_147_483_647})
        client.assign([TopicPartition(args.topic, p, 0) for p in range(args.partitions)])
        done: set[int] = set()
        last = time.monotonic()
        while len(done) < args.partitions:
            messages = client.consume(1000, timeout=1.0)
            if messages:
                last = time.monotonic()
            elif time.monotonic() - last > 60:
                raise SystemExit(f"raw read of {bootstrap} stalled: {total} read, done {sorted(done)}, "
                                 f"positions {client.position(client.assignment())}")
            for m in messages:
                if m.error() is None:
                    total += 1
                    m.value()
                elif m.partition() not in done:
                    done.add(m.partition())
        client.close()
    return {"seconds": time.perf_counter() - started, "records_read": total}


def child_validate(args) -> dict:
    from migrate.state import State
    from migrate.validation import ValidateSpec, run_validation
    from migrate.validators.digest import make_options

    with State(args.state) as state:
        spec = ValidateSpec(source=profile("source", args.source), target=profile("target", args.target),
                            source_spec=args.source, target_spec=args.target, topics=(args.topic,), match="map",
                            mirror="bench", window=args.window, options=make_options(), parallel=args.parallel)
        started = time.perf_counter()
        result = run_validation(spec, state)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "records_compared": result.records_compared, "divergences": result.divergences}


def child_hash(args) -> dict:
    from migrate.validators.digest import content_digest

    data = [record(i, args.value_size) for i in range(min(args.records, 200_000))]
    started = time.perf_counter()
    for key, value, headers, ts in data:
        content_digest(key, value, headers, ts)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "records": len(data)}


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def run_child(kind: str, args, **extra) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--source", args.source, "--target", args.target,
               "--topic", args.topic, "--partitions", str(args.partitions), "--records", str(args.records),
               "--value-size", str(args.value_size), "--state", args.state]
    for k, v in extra.items():
        command += [f"--{k}", str(v)]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--windows", default="1000,100000", help="two window sizes to compare peak RSS")
    parser.add_argument("--source-platform", default="noida")
    parser.add_argument("--target-platform", default="tansu")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the timed reads; medians are printed")
    parser.add_argument("--child"), parser.add_argument("--source"), parser.add_argument("--target")
    parser.add_argument("--topic", default="bench.validate"), parser.add_argument("--state")
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=4, help="partitions validated at once")
    args = parser.parse_args()

    if args.child:
        result = {"raw": child_raw, "validate": child_validate, "hash": child_hash}[args.child](args)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes of a large validation
        result["max_rss_mb"] = usage.ru_maxrss / 1024
        result["worker_rss_mb"] = workers.ru_maxrss / 1024
        # CPU of this process (librdkafka threads included) and of its worker processes
        result["cpu_s"] = usage.ru_utime + usage.ru_stime + workers.ru_utime + workers.ru_stime
        print(json.dumps(result))
        return

    from migrate.local import platforms

    workdir = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    brokers = []
    try:
        for role, name in (("source", args.source_platform), ("target", args.target_platform)):
            plat = platforms.platform(name)
            data_dir = workdir / role if plat.keeps_data else None
            brokers.append(platforms.start_broker(plat, f"bench-{role}", data_dir=data_dir, die_with_parent=True))
        args.source, args.target = brokers[0].bootstrap, brokers[1].bootstrap
        args.state = str(workdir / "state.db")
        print(f"clusters: source {args.source_platform} at {args.source}, target {args.target_platform} at "
              f"{args.target}; {args.records:,} records of {args.value_size} B in {args.partitions} partitions")
        started = time.perf_counter()
        for bootstrap in (args.source, args.target):
            fill(bootstrap, args.topic, args.partitions, args.records, args.value_size)
        save_map(args.state, args.topic, args.partitions, args.records)
        print(f"filled both clusters in {time.perf_counter() - started:.1f}s")

        # Raw reads and validations alternate, so that both see the same machine load.
        sizes = [int(w) for w in args.windows.split(",")]
        raws: list[dict] = []
        validations: dict[int, list[dict]] = {w: [] for w in sizes}
        for _ in range(args.repeat):
            raws.append(run_child("raw", args))
            for w in sizes:
                validations[w].append(run_child("validate", args, window=w, parallel=args.parallel))
        assert raws[0]["records_read"] == 2 * args.records, raws[0]
        hashing = run_child("hash", args)

        raw_s = median([r["seconds"] for r in raws])
        raw_cpu = median([r["cpu_s"] for r in raws])
        print(f"raw dual read (plain consume of both clusters): {raw_s:.2f}s = {args.records / raw_s:,.0f} "
              f"record pairs/s ({2 * args.records / raw_s:,.0f} msg/s), {raw_cpu:.1f} CPU-s, "
              f"peak RSS {raws[0]['max_rss_mb']:.0f} MB")
        for w, runs in validations.items():
            v_s = median([r["seconds"] for r in runs])
            v_cpu = median([r["cpu_s"] for r in runs])
            assert runs[0]["records_compared"] == args.records and runs[0]["divergences"] == 0, runs[0]
            print(f"validation, window {w:>7,} ({args.parallel} workers): {v_s:.2f}s = {args.records / v_s:,.0f} "
                  f"records/s = {raw_s / v_s:.2f}x the raw dual read, {v_cpu:.1f} CPU-s, "
                  f"peak RSS {max(r['max_rss_mb'] for r in runs):.0f} MB"
                  + (f" + per worker process {max(r['worker_rss_mb'] for r in runs):.0f} MB"
                     if runs[0]["worker_rss_mb"] else ""))
        hash_rate = hashing["records"] / hashing["seconds"]
        print(f"hashing alone (xxh3-128 over the canonical encoding, in memory): {hash_rate:,.0f} records/s "
              f"= {2 * args.records / hash_rate:.2f}s of CPU for both sides")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        for broker in brokers:
            platforms.stop_broker(broker.pid, broker.port)
        platforms.remove_data(str(workdir))


if __name__ == "__main__":
    main()
