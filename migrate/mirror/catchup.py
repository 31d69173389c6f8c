"""--until-caught-up: when a run has copied everything its source held when it started.

The goal is each selected partition's source end, read once at the start.  The run is caught up
when, in this order:
1. every slot this worker holds is fenced and opened, nothing is open, committing, held or
   waiting to be applied to a map;
2. every partition of the goal that this worker holds was reconciled or mirrored during this
   run up to its goal (progress saved before the run started proves nothing about the target
   now), or stopped for good;
3. every other partition is caught up as the fleet status says, by a progress row of this run
   or one whose worker is alive (a live holder reconciled the partition when it took it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from migrate.mirror import fleet, registry
from migrate.mirror.partitions import Partitions
from migrate.mirror.results import FAILED
from migrate.mirror.spec import MirrorSpec
from migrate.offset_maps.store import MapStore

Key = tuple[str, int]
FLEET_READ_EVERY_S = 2.0


class CatchUp:
    def __init__(self, spec: MirrorSpec, store: MapStore, partitions: Partitions, worker: str,
                 goal: dict[Key, int], started_at: str, flush: Callable[[], None]):
        self.spec = spec
        self.store = store
        self.partitions = partitions
        self.worker = worker
        self.goal = goal
        self.started_at = started_at  # ISO time of the run's start; progress rows older than it are stale
        self._flush = flush  # this worker's status published before the fleet's is read
        self._fleet: fleet.FleetStatus | None = None
        self._fleet_read_at = 0.0
        self._reader: fleet.StatusReader | None = None

    def reached(self, settled: bool) -> bool:
        """`settled`: rule 1 holds for this worker."""
        if not settled or self.partitions.positions_pending:
            return False
        progress = {(r["topic"], r["partition"]): r for r in self.store.progress()}
        others = []
        for key, goal in self.goal.items():
            if self.partitions.failure(key) is not None:
                continue
            row = progress.get(key)
            if row is not None and row["status"] in FAILED:
                continue
            if row is None or row["updated_at"] < self.started_at or (row["source_high"] or 0) < goal:
                if self.partitions.is_open(key):
                    return False
                others.append((key, goal))
        return self._others_reached(others)

    def _others_reached(self, others: list[tuple[Key, int]]) -> bool:
        """Rule 3: partitions this worker does not hold."""
        if not others:
            return True
        now = time.monotonic()
        if self._fleet is None or now - self._fleet_read_at >= FLEET_READ_EVERY_S:
            self._fleet_read_at = now
            self._flush()
            self._reader = self._reader or fleet.StatusReader(self.spec.target, self.spec.name)
            self._fleet = registry.read_fleet(self.spec.target, self.spec.name, self._reader)
        if self._fleet is None:
            return False
        for key, goal in others:
            row = self._fleet.partitions.get(key)
            if row is None:
                return False
            if row.get("status") in FAILED:
                continue
            worker = row.get("worker")
            fresh = (row.get("updated_at") or "") >= self.started_at or (
                worker != self.worker and self._fleet.alive(worker))
            if not fresh or (row.get("source_high") or 0) < goal:
                return False
        return True
