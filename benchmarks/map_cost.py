"""What an offset map costs per run, and what pruning it costs: no broker.

A followed partition that gets about one record per commit gains one run per record (each
commit's marker takes a target offset: docs/dual-running.md).  This prints, for such a map of
--runs runs:
- the bytes of Python memory per run (tracemalloc), and of the state file per run (SQLite);
- how long pruning half of it takes (PartitionMap.prune_below plus the local save), against
  the baseline of saving the same map's head alone, measured in the same run.

    python benchmarks/map_cost.py [--runs 200000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc

from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.store import MapStore
from migrate.state import State


def live_map(runs: int) -> PartitionMap:
    pmap = PartitionMap()
    pmap.start_at(0, 0)
    for n in range(runs):
        pmap.append(n, 2 * n)  # one record per commit; the commit's marker follows it
    return pmap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    runs = parser.parse_args().runs
    tracemalloc.start()
    pmap = live_map(runs)
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "state.db")
        with State(path) as state:
            MapStore(state, "m").save("t", 0, pmap, "t")
        size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))  # closed: checkpointed
        with State(path) as state:
            store = MapStore(state, "m")
            began = time.perf_counter()
            pmap.advance(source_high=runs + 1)
            store.save("t", 0, pmap, "t")  # the baseline: a head-only save
            head_only = time.perf_counter() - began
            began = time.perf_counter()
            dropped = pmap.prune_below(runs // 2, runs)
            store.save("t", 0, pmap, "t")
            pruning = time.perf_counter() - began
            kept = len(store.load("t", 0).runs)
    print(f"runs: {runs:,}")
    print(f"memory per run: {memory / runs:.0f} bytes; state file per run: {size / runs:.0f} bytes")
    print(f"pruned {dropped:,} runs ({kept:,} kept) and saved in {pruning * 1000:.1f} ms; "
          f"a head-only save took {head_only * 1000:.2f} ms ({pruning / head_only:.0f}x)")


if __name__ == "__main__":
    main()
