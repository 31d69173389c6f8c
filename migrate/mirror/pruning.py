"""Keeping a followed partition's map bounded: runs deleted on both clusters are dropped.

Every commit that writes to a partition leaves a transaction marker on the target, so the next
commit's records start one target offset later and the map gains a run.  A partition that gets
about one record per commit gains about one run per record (measured: 148-1,000 runs per 1,000
live records, benchmarks/steady.py), and each run is a state-file row, a map-topic record and an
object in the worker's memory.  Over weeks of dual running that has no bound but retention: so
every --map-prune-interval a following worker reads both clusters' log starts for the partitions
it holds and drops the runs below both (migrate.offset_maps.runs, `prune_below`), from the local
index and, as tombstones, from the map topic.  What is dropped answers only for offsets no
consumer can read on either cluster any more; every readable offset translates as before.

Rules:
1. The log starts are read beside the loop, in a thread (one bulk read per cluster, both at
   once): at 2,000 partitions a read takes seconds, which the loop must not wait for (live
   records would).  The loop applies the answer on a later turn.
2. Only a partition still held by the same writer, whose slot is not committing, is pruned: a
   commit in flight may be reading the map in its pool thread (--transactions writes map
   entries inside the transaction).
3. At most PRUNE_BUDGET runs are dropped per loop turn (a pass may span turns): dropping and
   saving 100,000 runs took 128 ms (benchmarks/map_cost.py), which live records would wait for.
   The changes are published and saved at once, like any other map change, so the local index
   and the map topic prune the same runs.  (A tombstone lost with a failed map producer leaves a
   true run in the map topic: harmless, it still describes a mirrored pair, and it is pruned
   again by a worker that loads the map from the topic.)
4. A log start that cannot be read (a cluster is unreachable) prunes nothing now: the next
   interval tries again.  Pruning is an economy, never a reason to stop mirroring.
"""

from __future__ import annotations

import logging
import threading
import time

from migrate import kafka
from migrate.mirror.partitions import Partitions
from migrate.mirror.publisher import Publisher
from migrate.mirror.spec import MirrorSpec
from migrate.mirror.writer import PartitionWriter

log = logging.getLogger("migrate.mirror")

PRUNE_BUDGET = 20_000  # runs dropped per loop turn at most (rule 3)


class Pruner:
    def __init__(self, spec: MirrorSpec, partitions: Partitions, publisher: Publisher):
        self.spec = spec
        self.partitions = partitions
        self.publisher = publisher
        self.last = time.monotonic()  # of the last pass: the first is an interval into the run
        self._reading: _LogStarts | None = None
        self._applying: list[tuple[PartitionWriter, tuple[int, int]]] = []  # the pass's partitions still to prune
        self._pass_dropped = 0

    def due(self, now: float) -> bool:
        interval = self.spec.map_prune_interval_s
        return bool(interval) and not self.spec.until_caught_up and now - self.last >= interval

    def prune(self, now: float) -> int:
        """Start a pass when one is due, go on with one whose read is done (rules 1-4); returns the runs dropped."""
        if self._applying:
            return self._apply()
        reading = self._reading
        if reading is not None:
            if not reading.done.is_set():
                return 0
            self._reading = None
            if reading.failed:
                log.debug("map pruning skipped: %s", reading.failed)
                return 0
            self._applying = [(w, reading.starts[(w.source_topic, w.partition)]) for w in reading.writers
                              if (w.source_topic, w.partition) in reading.starts]
            return self._apply()
        if not self.due(now):
            return 0
        self.last = now
        writers = [s.writer for s in self.partitions.opened() if s.writer is not None and len(s.writer.pmap.runs) > 1]
        if writers:
            self._reading = _LogStarts(self.spec, writers)
        return 0

    def _apply(self) -> int:
        """Rules 2 and 3, for up to PRUNE_BUDGET runs."""
        dropped = 0
        while self._applying and dropped < PRUNE_BUDGET:
            writer, starts = self._applying.pop()
            if self.partitions.writer((writer.source_topic, writer.partition)) is not writer or writer.slot.committing:
                continue
            count = writer.pmap.prune_below(*starts)
            if count:
                dropped += count
                self.publisher.publish(writer, writer.map_changes())
        if dropped:
            self.publisher.save()
            self._pass_dropped += dropped
        if not self._applying and self._pass_dropped:
            log.info("offset maps: dropped %d runs that both clusters deleted", self._pass_dropped)
            self._pass_dropped = 0
        return dropped


class _LogStarts:
    """Both clusters' log starts of some partitions, read in a daemon thread (a stop never waits for it)."""

    def __init__(self, spec: MirrorSpec, writers: list[PartitionWriter]):
        self.spec = spec
        self.writers = writers
        self.starts: dict[tuple[str, int], tuple[int, int]] = {}  # source key -> (source, target) log start
        self.failed = ""
        self.done = threading.Event()
        threading.Thread(target=self._read, name="map-pruning", daemon=True).start()

    def _read(self) -> None:
        sources = [(w.source_topic, w.partition) for w in self.writers]
        targets = [(w.target_topic, w.partition) for w in self.writers]
        try:
            source, target = kafka.at_once([lambda: kafka.partition_ends(self.spec.source, sources),
                                            lambda: kafka.partition_ends(self.spec.target, targets)], 2)
            for key, target_key in zip(sources, targets):
                if key in source and target_key in target:
                    self.starts[key] = (source[key].low, target[target_key].low)
        except Exception as exc:  # rule 4: whatever the reason, this pass prunes nothing
            self.failed = str(exc) or type(exc).__name__
        finally:
            self.done.set()
