"""Write slots: how a mirror's work is cut into a fixed number of fenceable pieces.

A mirror has N write slots (`--slots`, fixed when the mirror is first run).  Every source
partition belongs to exactly one slot, by a stable hash of its topic plus its partition
number, so the partitions of one topic spread over consecutive slots.  Each slot has one
transactional producer on the target, transactional.id `migrate.<mirror>.slot.<k>`
(migrate.mirror.writer), so a worker holds at most N producers whatever the partition count.

Slots are handed out by Kafka's group protocol, as Kafka Connect hands out tasks: every
worker of the mirror joins group `migrate.mirror.<mirror>` on the source cluster, subscribed
to the coordination topic `__migrate.<mirror>.slots`, which has one partition per slot and
never holds a record.  Owning partition k of that topic means owning slot k, and with it
every source partition that hashes to k.  The coordination topic's partition count is the
slot count every worker agrees on; a worker started with another `--slots` uses it.

Invariant (as MirrorMaker 2's exactly-once source tasks, KIP-618, with task ids):
- no two live workers commit for the same slot: a worker writes a slot only after the group
  gave it the slot and its `init_transactions` for the slot's transactional.id succeeded;
- a worker that lost a slot (rebalance, session timeout while paused or cut off) is fenced
  by the new owner's `init_transactions`: its producer's epoch is stale, so the target
  refuses every later write or commit of it, and its open transaction is aborted;
- what a fenced worker wrote before it was fenced and did not map is found by the new
  owner's reconciliation of each partition's target tail (migrate.mirror.reconcile), which
  runs after fencing and before anything new is written.
The group only decides who should write; fencing is what makes a stale owner harmless.
"""

from __future__ import annotations

import logging
import zlib

from migrate import kafka
from migrate.config import ClusterProfile

log = logging.getLogger("migrate.mirror")

DEFAULT_SLOTS = 8
MAX_SLOTS = 256


def slots_topic_name(mirror: str) -> str:
    return f"__migrate.{mirror}.slots"


def slot_of(topic: str, partition: int, slots: int) -> int:
    """The slot of a source partition: stable across processes and versions (not Python's hash)."""
    return (zlib.crc32(topic.encode()) + partition) % slots


def slot_partitions(counts: dict[str, int], slot: int, slots: int) -> list[tuple[str, int]]:
    """Every source partition of the given topics (topic -> partition count) that belongs to `slot`."""
    out: list[tuple[str, int]] = []
    for topic, count in counts.items():
        first = (slot - zlib.crc32(topic.encode())) % slots
        out.extend((topic, p) for p in range(first, count, slots))
    return out


def ensure_slots_topic(source: ClusterProfile, mirror: str, wanted: int) -> int:
    """Create the coordination topic if needed; returns the slot count in force (the topic's)."""
    name = slots_topic_name(mirror)
    with kafka.AdminSession(source) as session:
        existing = session.list_topics().get(name)
        if existing is None:
            kafka.create_topic(source, name, wanted, {"retention.ms": "-1"})
            session.wait_for_topic(name, wanted)
            existing = session.list_topics()[name]
    if existing.partitions != wanted:
        log.warning('mirror "%s" has %d write slots (topic %s on cluster "%s"); --slots %d is ignored: every '
                    "worker of a mirror must agree, and the slot count is fixed when the mirror is first run",
                    mirror, existing.partitions, name, source.name, wanted)
    return existing.partitions
