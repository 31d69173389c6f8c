"""The two source consumers a worker reads through (lanes), and the one place that assigns,
pauses and gives up partitions in them.

- The live lane holds every partition that is near its end (fewer than LIVE_LAG records behind
  when it is opened); the backfill lane holds those that start further behind.  Why two lanes
  and how they are read: see migrate.mirror.engine.
- A partition is assigned in at most one lane at a time; it moves from the backfill lane to the
  live lane only through `move_to_live`, at the offset where the backfill lane reached its end.
- A pause is undone before its partition leaves its lane (`unassign`, `move_to_live`).
  librdkafka keeps a partition's pause through an incremental unassign and a later assign
  (measured with confluent-kafka 2.16.1 on noida-db: paused, unassigned and assigned again at
  offset 10 of 100 records, it returned nothing; resumed before the unassign, all 90).  Without
  this, a slot whose commit failed while its partitions were paused (held records past the
  bound) reopened them paused for good, and the mirror waited forever (found by CI on a
  2,000-partition estate).  Resuming is done before the unassign, not after the assign: an
  assign followed at once by a pause or resume can lose the assigned offset (librdkafka
  issue 2190).
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition

from migrate.kafka import PartitionEnds

Key = tuple[str, int]

LIVE_LAG = 5_000  # a partition opened this close to its source end is read in the live lane


def _key(tp: TopicPartition) -> Key:
    return tp.topic, tp.partition


class Lanes:
    def __init__(self, live: Consumer, backfill: Consumer):
        self.live = live
        self.backfill = backfill
        self.backfilling: set[Key] = set()  # partitions read in the backfill lane
        self.paused: set[Key] = set()  # paused by us, in the lane they are read in

    def lane_of(self, key: Key) -> Consumer:
        return self.backfill if key in self.backfilling else self.live

    def assign(self, starts: list[TopicPartition], ends: dict[tuple[str, Key], PartitionEnds]) -> None:
        """Assign partitions to a lane by how far behind their source end they start."""
        # One paused while it was not assigned (a slot held records while the partition was
        # being reopened at a moved log start) is resumed first: the pause would outlive the assign.
        self.resume([tp for tp in starts if _key(tp) in self.paused])
        live: list[TopicPartition] = []
        behind: list[TopicPartition] = []
        for tp in starts:
            end = ends.get(("source", _key(tp)))
            far = end is not None and end.high - tp.offset > LIVE_LAG
            (behind if far else live).append(tp)
        if live:
            self.live.incremental_assign(live)
        if behind:
            self.backfill.incremental_assign(behind)
            self.backfilling.update(_key(tp) for tp in behind)

    def by_lane(self, tps: Iterable[TopicPartition]) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """(backfill lane, live lane) partitions of `tps`."""
        behind: list[TopicPartition] = []
        live: list[TopicPartition] = []
        for tp in tps:
            (behind if _key(tp) in self.backfilling else live).append(tp)
        return behind, live

    def unassign(self, tps: list[TopicPartition]) -> None:
        self.resume(tps)
        behind, live = self.by_lane(tps)
        # Only what a lane holds: a partition whose fetch went out of range was unassigned already.
        held = {_key(tp) for tp in self.live.assignment()}
        live = [tp for tp in live if _key(tp) in held]
        if behind:
            self.backfill.incremental_unassign(behind)
            self.backfilling.difference_update(_key(tp) for tp in behind)
        if live:
            self.live.incremental_unassign(live)

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        self._call("pause", [tp for tp in tps if _key(tp) not in self.paused])

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        self._call("resume", [tp for tp in tps if _key(tp) in self.paused])

    def _call(self, what: str, tps: list[TopicPartition]) -> None:
        if not tps:
            return
        behind, live = self.by_lane(tps)
        if behind:
            getattr(self.backfill, what)(behind)
        if live:
            getattr(self.live, what)(live)
        keys = (_key(tp) for tp in tps)
        if what == "pause":
            self.paused.update(keys)
        else:
            self.paused.difference_update(keys)

    def move_to_live(self, key: Key, offset: int) -> None:
        """The backfill lane reached the partition's end: read it in the live lane from `offset`."""
        self.resume([TopicPartition(*key)])
        self.backfill.incremental_unassign([TopicPartition(*key)])
        self.backfilling.discard(key)
        self.live.incremental_assign([TopicPartition(key[0], key[1], offset)])

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool = True):
        """The cached high watermark of a partition, from whichever lane reads it (progress, metrics)."""
        return self.lane_of(_key(tp)).get_watermark_offsets(tp, cached=cached)

    def close(self) -> None:
        self.live.close()
        self.backfill.close()
