"""What a worker does when a slot or a partition cannot go on: give up, stop, retry.

The rules, each spanning several parts of the engine:
1. A slot given up (revoked, lost, or at the end of the run) commits or drops its open
   transaction, then its partitions are given up and unassigned (`give_up_slot`).
2. A partition stopped for good (diverged, lost data, blocked) keeps what it already wrote,
   which commits with its slot, and is reported in the state, the fleet status and the result
   (`stop`, `fail`); the other partitions go on.
3. A slot whose writer fails aborts its transaction and gives up its partitions; it is fenced,
   reloaded and reconciled again after a growing backoff (migrate.mirror.retries).  A record
   the target refuses: while following, its partition waits out its own backoff and the slot
   reopens at once without it; with --until-caught-up, the partition is stopped and says what
   to raise (nothing was skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import TopicPartition

from migrate.errors import CheckFailed, PartitionDiverged, WriterFailed
from migrate.mirror.commits import Commits
from migrate.mirror.lanes import Lanes
from migrate.mirror.ownership import SlotOwnership
from migrate.mirror.partitions import Partitions
from migrate.mirror.publisher import Publisher
from migrate.mirror.results import PartitionFailure
from migrate.mirror.retries import Retries
from migrate.mirror.spec import MirrorSpec
from migrate.mirror.topicset import TopicSet
from migrate.mirror.writer import SlotWriter
from migrate.offset_maps.store import MapStore

log = logging.getLogger("migrate.mirror")

Key = tuple[str, int]


class Setbacks:
    def __init__(self, spec: MirrorSpec, store: MapStore, worker: str, partitions: Partitions, retries: Retries,
                 metrics, slot_keys: Callable[[int], list[Key]]):
        self.spec = spec
        self.store = store
        self.worker = worker
        self.partitions = partitions
        self.retries = retries
        self.metrics = metrics
        self._slot_keys = slot_keys
        # Set once the parts exist (migrate.mirror.engine wires them; each of these calls back here).
        self.topics: TopicSet
        self.publisher: Publisher
        self.ownership: SlotOwnership | None = None
        self.commits: Commits | None = None
        self.lanes: Lanes | None = None

    # --- slots (rules 1 and 3) ---------------------------------------------------------------------

    def give_up_slot(self, number: int, commit: bool) -> None:
        """Rule 1: finish or drop the slot's transaction, stop reading its partitions."""
        assert self.ownership is not None and self.commits is not None
        self.commits.await_slot(number)
        writer = self.ownership.forget(number)
        self.commits.drop(number)
        if writer is None:
            return
        if commit and writer.open:
            try:
                self.commits.committed(writer, writer.commit())
            except WriterFailed as exc:
                log.warning("slot %d: could not commit while giving it up: %s", number, exc)
                writer.abort()
        else:
            writer.abort()
        self.give_up_partitions(list(writer.partitions))
        writer.close()

    def slot_failed(self, slot: SlotWriter, exc: WriterFailed) -> None:
        """Rule 3."""
        assert self.ownership is not None and self.commits is not None
        keys = [k for k, w in slot.partitions.items() if not w.retired]
        refused = [k for k in (exc.partitions or tuple(k for k, w in slot.partitions.items() if w.open))
                   if k in keys]
        slot.abort()
        self.ownership.slots.pop(slot.slot, None)
        self.commits.drop(slot.slot)
        self.give_up_partitions(list(slot.partitions))
        slot.close()
        if exc.refused and self.spec.until_caught_up:
            for key in refused:
                self.fail(key, PartitionDiverged(
                    key[0], key[1],
                    f"{key[0]}[{key[1]}]: the target refuses a record of this partition as too large "
                    f"({exc}); raise max.message.bytes on target topic {self.topics.mapping[key[0]]} (and the "
                    "broker's message.max.bytes), then run the mirror again: nothing was skipped",
                ))
        elif exc.refused and refused:
            # Following: the refused partitions wait out their own growing backoff, and the slot
            # reopens without them, so the slot's other partitions go on meanwhile.  (Retrying
            # the whole slot held every partition of it behind one refused record.)  Each retry
            # of a refused partition still aborts the slot's open transaction once: what the
            # others had in it is read and written again, never lost.
            for key in refused:
                self.retry_later(key, f"target write failed: {exc}")
            self.retries.at_once(slot.slot)  # fenced again at once, without them
            log.info("slot %d: reopened without %s (a record the target refuses); its other partitions go on",
                     slot.slot, ", ".join(f"{t}[{p}]" for t, p in refused[:4]))
            return
        self.retry_later(slot.slot, f"target write failed: {exc}")

    def retry_later(self, what, reason: str) -> None:
        """Open a partition (Key) or a whole slot (int) again after a growing backoff."""
        delay = self.retries.later(what)
        keys = self._slot_keys(what) if isinstance(what, int) else [what]
        for key in keys:
            self.metrics.retry(key, reason)  # metrics: retries by reason
        if isinstance(what, int):
            named = ", ".join(f"{t}[{p}]" for t, p in keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
            log.warning("slot %d (%s): %s; retrying in %.0fs", what, named or "no partition", reason, delay)
        else:
            log.warning("%s[%d]: %s; retrying in %.0fs", what[0], what[1], reason, delay)

    # --- partitions (rule 2) -----------------------------------------------------------------------

    def give_up_partitions(self, keys: list[Key]) -> None:
        for key in keys:
            self.retries.forget(key)
        writers = self.partitions.give_up(keys)
        if writers and self.lanes is not None:
            self.lanes.unassign([TopicPartition(w.source_topic, w.partition) for w in writers])

    def stop(self, key: Key, exc: CheckFailed) -> None:
        """Rule 2 for an open partition: what it already wrote commits with its slot."""
        writer = self.partitions.writer(key)
        if writer is not None:
            writer.retired = True
            if not writer.open:
                writer.slot.partitions.pop(key, None)
        self.give_up_partitions([key])
        self.fail(key, exc)

    def fail(self, key: Key, exc: CheckFailed, kind: str | None = None) -> None:
        """Rule 2: reported in the state, the fleet status and the result."""
        kind = kind or ("diverged" if isinstance(exc, PartitionDiverged) else "data-loss")
        self.partitions.fail(key, PartitionFailure(key[0], key[1], kind, str(exc)))
        self.retries.forget(key)
        log.error("%s", exc)
        pmap = self.store.load(*key)
        self.store.save(key[0], key[1], pmap, self.topics.target_of(key[0]), status=kind, worker=self.worker,
                        error=str(exc))
        if self.publisher.producer is not None:  # before the run set it up: published there
            self.publisher.publish_failure(key, pmap)

    def block(self, key: Key, exc: PartitionDiverged) -> None:
        """A source partition the target topic has no partition for: reported, lag counted, not mirrored."""
        if self.partitions.failure(key) is None:
            self.fail(key, exc, kind="blocked")
