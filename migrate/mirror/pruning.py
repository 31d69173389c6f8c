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
1. Only a partition whose slot is not committing is pruned: a commit in flight may be reading
   the map in its pool thread (--transactions writes map entries inside the transaction).
2. The changes are published and saved at once, like any other map change, so the local index
   and the map topic prune the same runs.
3. A log start that cannot be read (the cluster is unreachable) prunes nothing now: the next
   interval tries again.  Pruning is an economy, never a reason to stop mirroring.
"""

from __future__ import annotations

import logging
import time

from migrate import kafka
from migrate.errors import KafkaOperationError
from migrate.mirror.partitions import Partitions
from migrate.mirror.publisher import Publisher
from migrate.mirror.spec import MirrorSpec

log = logging.getLogger("migrate.mirror")


class Pruner:
    def __init__(self, spec: MirrorSpec, partitions: Partitions, publisher: Publisher):
        self.spec = spec
        self.partitions = partitions
        self.publisher = publisher
        self.last = time.monotonic()  # of the last pass: the first is an interval into the run
        self.dropped = 0  # runs dropped in this run, all partitions

    def due(self, now: float) -> bool:
        interval = self.spec.map_prune_interval_s
        return bool(interval) and not self.spec.until_caught_up and now - self.last >= interval

    def prune(self, now: float) -> int:
        """One pass over the open partitions when one is due (rules 1-3); returns the runs dropped."""
        if not self.due(now):
            return 0
        self.last = now
        writers = [s.writer for s in self.partitions.opened()
                   if s.writer is not None and not s.writer.slot.committing and len(s.writer.pmap.runs) > 1]
        if not writers:
            return 0
        try:
            source = kafka.partition_ends(self.spec.source, [(w.source_topic, w.partition) for w in writers])
            target = kafka.partition_ends(self.spec.target, [(w.target_topic, w.partition) for w in writers])
        except KafkaOperationError as exc:
            log.debug("map pruning skipped: %s", exc)
            return 0
        dropped = 0
        for writer in writers:
            src, tgt = source.get((writer.source_topic, writer.partition)), target.get((writer.target_topic,
                                                                                       writer.partition))
            if src is None or tgt is None:
                continue
            count = writer.pmap.prune_below(src.low, tgt.low)
            if count:
                dropped += count
                self.publisher.publish(writer, writer.map_changes())
        if dropped:
            self.publisher.save()
            self.dropped += dropped
            log.info("offset maps: dropped %d runs that both clusters deleted", dropped)
        return dropped
