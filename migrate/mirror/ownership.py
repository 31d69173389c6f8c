"""Which write slots this worker holds, and how it takes them: the slots group and fencing.

Work is cut into a fixed number of write slots (migrate.mirror.slots states the fencing
invariant): every source partition belongs to one slot, each slot has one transactional
producer, and Kafka's group protocol hands the slots out to the workers of the mirror (group
`migrate.mirror.<name>` on the source, over the coordination topic `__migrate.<name>.slots`,
whose partitions are only tokens of ownership).

A slot goes through three sets, in order:
1. `owned`: the group gave it to this worker (the assign callback).  Nothing else happens in
   the callback: a member is only ready for the group's next rebalance once its callback has
   returned, so the slow part is left to the loop (`take_over`).
2. `slots`: its writer has fenced every earlier holder of the slot (`fence`, slots in parallel).
   A slot whose fencing failed waits for its retry (migrate.mirror.retries).
3. opened: its partitions are reconciled and assigned (`take_over` hands each fenced slot to the
   engine's opener, one slot at a time, serving the group between two).
A slot leaves all three when it is revoked or lost (`give_up`, supplied by the engine: it
commits or drops the slot's transaction and gives its partitions up).  Slots never outlive
ownership: every slot in `slots` is in `owned`.

An exception inside a rebalance callback is kept and raised by the loop (librdkafka would
otherwise swallow it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from migrate import kafka
from migrate.errors import KafkaOperationError, MigrateError, WriterFailed
from migrate.mirror import slots as slot_plans
from migrate.mirror.retries import Retries
from migrate.mirror.spec import MirrorSpec
from migrate.mirror.topicset import TopicSet
from migrate.mirror.writer import SlotWriter

log = logging.getLogger("migrate.mirror")

Key = tuple[str, int]
FENCING_THREADS = 8


class SlotOwnership:
    def __init__(self, spec: MirrorSpec, topics: TopicSet, retries: Retries,
                 give_up: Callable[[int, bool], None], revoked: Callable[[], None],
                 retry_later: Callable[[int, str], None]):
        self.spec = spec
        self.topics = topics
        self.retries = retries
        self._give_up = give_up  # (slot, commit): close the slot's transaction and partitions
        self._revoked = revoked  # after slots were revoked: publish what the next holder reads
        self._retry_later = retry_later
        self.slot_count = spec.slots
        self.owned: set[int] = set()
        self.slots: dict[int, SlotWriter] = {}  # fenced and working
        self.unopened: list[int] = []  # fenced, partitions not opened yet
        self.callback_error: BaseException | None = None

    # --- reading ---------------------------------------------------------------------------------

    def slot_keys(self, slot: int) -> list[Key]:
        return slot_plans.slot_partitions(self.topics.counts, slot, self.slot_count)

    def slot_of(self, key: Key) -> SlotWriter | None:
        """The fenced writer of the slot a partition belongs to, if this worker holds it."""
        return self.slots.get(slot_plans.slot_of(key[0], key[1], self.slot_count))

    def unfenced(self) -> list[int]:
        """Owned slots with no writer yet and no retry scheduled (a slot whose fencing failed waits
        for its retry)."""
        if len(self.slots) == len(self.owned):  # every owned slot has its writer (slots never outlive ownership)
            return []
        return sorted(s for s in self.owned if s not in self.slots and not self.retries.scheduled(s))

    def settled(self) -> bool:
        """Every owned slot is fenced and opened."""
        return not self.unopened and not self.unfenced()

    def held(self) -> list[int]:
        return sorted(list(self.slots))  # list(): one step under the GIL, safe from the heartbeat thread

    # --- taking slots ----------------------------------------------------------------------------

    def fence(self, slots: list[int], map_topic: str, transactions: bool) -> list[int]:
        """Fence the slots' writers in parallel; returns those fenced (their partitions open later)."""
        slots = [s for s in slots if s in self.owned and s not in self.slots]
        if not slots:
            return []
        with ThreadPoolExecutor(max_workers=min(FENCING_THREADS, len(slots))) as pool:
            futures = {slot: pool.submit(self._fenced_slot, slot, map_topic, transactions) for slot in slots}
        fenced = []
        for slot, future in futures.items():
            try:
                self.slots[slot] = future.result()
            except (WriterFailed, KafkaOperationError) as exc:
                self._retry_later(slot, str(exc))
                continue
            self.retries.opened(slot)
            fenced.append(slot)
        self.unopened += fenced
        return fenced

    def _fenced_slot(self, slot: int, map_topic: str, transactions: bool) -> SlotWriter:
        """A slot writer that has fenced every earlier holder of the slot (runs in a thread: no state)."""
        writer = SlotWriter(self.spec.name, self.spec.target, slot, compression=self.spec.compression,
                            map_topic=map_topic, transactions=transactions)
        try:
            writer.fence()
        except BaseException:
            writer.close()
            raise
        return writer

    def take_over(self, open_slot: Callable[[int], None], serve: Callable[[], None], stopped: Callable[[], bool]) -> None:
        """Open the fenced slots' partitions a slot at a time, serving the group between two.

        Not in the rebalance callback: opening a slot reconciles every partition of it (seconds per
        partition on a loaded target).  Done there, one slow member holds every rebalance of the
        fleet back until it returns: the likely cause of a CI run (2 cores, full suite) where two
        workers held no slot for 300 s after a third left.  A slot revoked meanwhile is dropped
        from the queue (`forget`).  Nothing else runs until the queue is done, so metrics and the
        copy see the worker's partitions open together."""
        while self.unopened and not stopped() and self.callback_error is None:
            slot = self.unopened.pop(0)
            if slot in self.slots:
                open_slot(slot)
            if self.unopened:
                serve()

    def forget(self, slot: int) -> SlotWriter | None:
        """The slot is no longer this worker's to write: its writer, if it had one."""
        self.retries.forget(slot)
        self.unopened = [s for s in self.unopened if s != slot]
        return self.slots.pop(slot, None)

    # --- the group's callbacks (in the loop's poll of the coordinator) ----------------------------

    def subscribe(self, coordinator) -> None:
        coordinator.subscribe([slot_plans.slots_topic_name(self.spec.name)], on_assign=self.on_assign,
                              on_revoke=self.on_revoke, on_lost=self.on_lost)

    def on_assign(self, coordinator, partitions) -> None:
        try:
            slots = sorted(tp.partition for tp in partitions)
            log.info("assigned %d write slots: %s", len(slots), ", ".join(map(str, slots)))
            # The coordination topic holds no records: its partitions are only tokens of ownership.
            coordinator.assign(partitions)
            coordinator.pause(partitions)
            self.owned |= set(slots)  # fenced and opened by the loop (take_over)
        except BaseException as exc:  # noqa: BLE001 - librdkafka would swallow it; the loop re-raises it
            self.callback_error = self.callback_error or exc

    def on_revoke(self, coordinator, partitions) -> None:
        try:
            for tp in partitions:
                self.owned.discard(tp.partition)
                self._give_up(tp.partition, True)
            self._revoked()
            coordinator.unassign()
        except BaseException as exc:  # noqa: BLE001
            self.callback_error = self.callback_error or exc

    def on_lost(self, coordinator, partitions) -> None:
        try:
            for tp in partitions:
                self.owned.discard(tp.partition)
                self._give_up(tp.partition, False)
            coordinator.unassign()
        except BaseException as exc:  # noqa: BLE001
            self.callback_error = self.callback_error or exc

    def raise_callback_error(self) -> None:
        exc, self.callback_error = self.callback_error, None
        assert exc is not None  # called only when a callback failed
        if isinstance(exc, (MigrateError, KeyboardInterrupt)):
            raise exc
        raise KafkaOperationError(
            f'handling a write-slot assignment of group "{self.spec.group_id}" on cluster "{self.spec.source.name}" '
            f"failed: {kafka.describe_error(exc)}; nothing is lost: restart the mirror") from exc
