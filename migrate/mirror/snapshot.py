"""What a running mirror shows of itself: a frozen snapshot of where its partitions stand.

The metrics (migrate.metrics.mirror) read this and nothing else of the engine.  A snapshot is
taken in the engine's own thread, between two loop turns (`Mirror.snapshot`), so nothing in it
changes while it is read, and it counts only what is committed on the target:
- `mirrored_to` is the map's source_high, and a map grows only after its target transaction
  committed (migrate.mirror.commits);
- `source_end` is the high watermark of the mirror consumer's latest Fetch response (the last
  stable offset: the mirror reads read_committed), never ListOffsets, which some platforms get
  wrong; None where the partition is not fetched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicPartition

from migrate.mirror.lanes import Lanes
from migrate.mirror.partitions import Partitions
from migrate.mirror.retries import Retries
from migrate.offset_maps.store import MapStore

Key = tuple[str, int]
STATES = ("mirroring", "retrying", "diverged", "data-loss")


@dataclass(frozen=True)
class PartitionView:
    """One partition as the engine saw it when the snapshot was taken."""

    topic: str
    partition: int
    state: str
    mirrored_to: int | None  # the map's source_high: every source offset below it is on the target
    source_end: int | None  # from the mirror consumer's latest Fetch (None: not fetching)
    runs: int
    oldest_pending: int | None  # CreateTime (ms) of the open transaction's first record


@dataclass(frozen=True)
class Snapshot:
    taken: float
    partitions: tuple[PartitionView, ...]


def take(partitions: Partitions, retries: Retries, slot_keys: Callable[[int], list[Key]], lanes: Lanes,
         store: MapStore) -> Snapshot:
    """Every partition this worker holds, is retrying, or stopped, as it stands now."""
    views = []
    for state in partitions.opened():
        key, writer = state.key, state.writer
        assert writer is not None
        pmap = writer.pmap
        try:
            _low, high = lanes.get_watermark_offsets(TopicPartition(*key), cached=True)
        except KafkaException:
            high = -1
        stamp = writer.first_timestamp if writer.open else None
        views.append(PartitionView(key[0], key[1], "mirroring", pmap.source_high, high if high >= 0 else None,
                                   len(pmap.runs), stamp if stamp and stamp > 0 else None))
    stopped = [(failure.topic, failure.partition, failure.kind) for failure in partitions.failures()]
    # retries hold partitions and, with write slots, slot numbers: a slot retries all its partitions
    retrying = [k for what in retries.at for k in (slot_keys(what) if isinstance(what, int) else [what])]
    stopped += [(k[0], k[1], "retrying") for k in dict.fromkeys(retrying) if partitions.get(k) is None]
    for topic, partition, state_name in stopped:
        known = partitions.last_known.get((topic, partition))
        if known is None:
            pmap = store.load(topic, partition)
            known = partitions.last_known[(topic, partition)] = (pmap.source_high, len(pmap.runs))
        views.append(PartitionView(topic, partition, state_name, known[0], None, known[1], None))
    return Snapshot(time.time(), tuple(views))
