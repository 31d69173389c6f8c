"""Offset translation: lookup rate, map size, and `offsets sync --all-groups` time.

    python benchmarks/offsets.py [--records 10000000] [--lookups 200000]
                                 [--groups 1000] [--partitions 12] [--source noida] [--target tansu]

1. Builds the map of a partition of `--records` mirrored records with realistic gaps: a
   transactional source (transactions of 1-100 records, each followed by its commit marker,
   3% of them aborted: records plus abort marker), a few compacted-away stretches, and the
   mirror's own target transaction committed every 5,000 records (a target marker).  Then
   times forward and reverse translations of random committed offsets (pure, in-process).
2. Map size: the runs saved in a fresh state database (SQLite file size after checkpoint) and
   the durable map topic's records (key + value bytes, one record per run plus the head;
   Kafka batch overhead and compression not included), both per million mirrored records.
3. Starts a local source and target broker, creates a `--partitions` topic on each (mapped 1:1),
   commits `--groups` source groups on every partition, and times `sync_groups` for all groups
   listed by the source (the library call behind `migrate offsets sync --all-groups`): the first
   sync (every partition committed) and a second one (idempotent: nothing to change), plus
   `translate_groups` for all of them (the `offsets translate --all-groups` call).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from migrate import groups as kgroups
from migrate import kafka
from migrate.local import platforms
from migrate.config import ClusterProfile
from migrate.offset_maps import checkpoint
from migrate.offset_maps import route as offroute
from migrate.offset_maps import sync as offsync
from migrate.offset_maps.runs import PartitionMap, Run
from migrate.offset_maps.store import MapStore
from migrate.offset_maps.topic import map_records
from migrate.offset_maps.translate import translate, translate_reverse
from migrate.state import State


def realistic_map(records: int, seed: int = 3) -> PartitionMap:
    rng = random.Random(seed)
    pmap = PartitionMap()
    pmap.start_at(0, 0)
    source = target = mirrored = 0
    since_commit = 0
    while mirrored < records:
        if rng.random() < 0.002:  # a stretch compacted away
            source += rng.randint(1, 50)
            continue
        size = rng.randint(1, 100)
        if rng.random() < 0.03:  # aborted transaction: records and the abort marker are source gaps
            source += size + 1
            continue
        size = min(size, records - mirrored)
        while size:
            chunk = min(size, 5000 - since_commit)
            pmap.append_run(source, target, chunk)
            source += chunk
            target += chunk
            mirrored += chunk
            since_commit += chunk
            size -= chunk
            if since_commit == 5000:  # the mirror's target transaction commits: a target marker
                target += 1
                since_commit = 0
        source += 1  # the source transaction's commit marker
    pmap.advance(source_high=source, target_high=target + 1)
    return pmap


def bench_lookups(pmap: PartitionMap, lookups: int) -> dict:
    rng = random.Random(9)
    forward = [rng.randrange(pmap.source_low, pmap.source_high + 1) for _ in range(lookups)]
    reverse = [rng.randrange(0, pmap.target_high + 1) for _ in range(lookups)]
    started = time.perf_counter()
    for c in forward:
        translate(pmap, c)
    fwd = time.perf_counter() - started
    started = time.perf_counter()
    for t in reverse:
        translate_reverse(pmap, t)
    rev = time.perf_counter() - started
    return {"forward_lookups_per_s": round(lookups / fwd), "reverse_lookups_per_s": round(lookups / rev)}


def bench_size(pmap: PartitionMap, records: int, workdir: Path) -> dict:
    state = State(workdir / "size.db")
    empty = _db_bytes(state)
    stored = PartitionMap(pmap.runs, pmap.source_low, pmap.source_high, pmap.target_high)
    MapStore(state, "bench").replace("topic", 0, stored, "topic")
    used = _db_bytes(state) - empty
    state.close()
    fresh = PartitionMap([], pmap.source_low, pmap.source_high, pmap.target_high)
    for run in pmap.runs:  # everything dirty, as if written from scratch
        fresh.append_run(run.source_start, run.target_start, run.length)
    topic_bytes = sum(len(k) + len(v) for k, v in map_records("topic", 0, fresh, "topic"))
    per_million = 1_000_000 / records
    return {"runs": len(pmap.runs), "state_bytes_per_million": round(used * per_million),
            "topic_records_per_million": round((len(pmap.runs) + 1) * per_million),
            "topic_payload_bytes_per_million": round(topic_bytes * per_million)}


def _db_bytes(state: State) -> int:
    state.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    state.db.execute("VACUUM")
    return state.path.stat().st_size


def bench_sync(groups: int, partitions: int, source_platform: str, target_platform: str, workdir: Path) -> dict:
    source = platforms.start_broker(platforms.platform(source_platform), "bench-source",
                                    data_dir=workdir / "source" if platforms.platform(source_platform).keeps_data else None,
                                    die_with_parent=True)
    target = platforms.start_broker(platforms.platform(target_platform), "bench-target",
                                    data_dir=workdir / "target" if platforms.platform(target_platform).keeps_data else None,
                                    die_with_parent=True)
    try:
        src = ClusterProfile("source", {"bootstrap.servers": source.bootstrap})
        tgt = ClusterProfile("target", {"bootstrap.servers": target.bootstrap})
        per_partition = 1000
        for profile in (src, tgt):
            kafka.create_topic(profile, "events", partitions)
            kafka.wait_for_topic(profile, "events", partitions)
            producer = kafka.producer(profile)
            for p in range(partitions):
                for i in range(per_partition):
                    producer.produce("events", value=b"x" * 100, key=b"%d" % i, partition=p)
            producer.flush(60)
        state = State(workdir / "sync.db")
        now = "2026-11-27T00:00:00+00:00"
        with state.transaction() as db:
            db.execute("INSERT INTO mirrors VALUES ('bench', ?, ?, '[\"events\"]', '[]', '{topic}', ?, ?)",
                       [source.bootstrap, target.bootstrap, now, now])
            db.execute("INSERT INTO topic_mappings VALUES ('bench', 'events', 'events', ?)", [partitions])
        store = MapStore(state, "bench")
        for p in range(partitions):
            store.replace("events", p, PartitionMap([Run(0, 0, per_partition)], 0, per_partition, per_partition),
                          "events")
        rng = random.Random(1)
        plans = {f"group-{g:04d}": {("events", p): rng.randint(0, per_partition) for p in range(partitions)}
                 for g in range(groups)}
        started = time.perf_counter()
        assert set(kgroups.commit(src, plans).values()) == {None}
        seed_s = time.perf_counter() - started

        route = offroute.build_route(state, "bench", src, tgt)
        started = time.perf_counter()
        rows = offsync.translate_groups(route, offsync.select_groups(route, all_groups=True))
        translate_s = time.perf_counter() - started
        started = time.perf_counter()
        first = checkpoint.sync_groups(route, offsync.select_groups(route, all_groups=True))
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        second = checkpoint.sync_groups(route, offsync.select_groups(route, all_groups=True))
        second_s = time.perf_counter() - started
        committed = kgroups.committed(tgt, list(plans))
        assert all(committed[g] == {k: v for k, v in o.items()} for g, o in plans.items()), "sync was not exact"
        assert {r.outcome for r in first} == {"changed"} and {r.outcome for r in second} == {"unchanged"}
        state.close()
        return {"groups": groups, "partitions_per_group": partitions, "translated_rows": len(rows),
                "commit_source_groups_s": round(seed_s, 2), "translate_all_groups_s": round(translate_s, 2),
                "sync_all_groups_first_s": round(first_s, 2), "sync_all_groups_again_s": round(second_s, 2),
                "source": source_platform, "target": target_platform}
    finally:
        platforms.stop_broker(source.pid, source.port)
        platforms.stop_broker(target.pid, target.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--source", default="noida", choices=platforms.PLATFORMS)
    parser.add_argument("--target", default="tansu", choices=platforms.PLATFORMS)
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of lines.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-offsets-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        pmap = realistic_map(args.records)
        figures = {"records": args.records, "build_map_s": round(time.perf_counter() - started, 1)}
        figures.update(bench_lookups(pmap, args.lookups))
        figures.update(bench_size(pmap, args.records, workdir))
        figures.update(bench_sync(args.groups, args.partitions, args.source, args.target, workdir))
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:34} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
