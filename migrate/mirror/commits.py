"""When a slot's transaction commits, what waits meanwhile, and what a commit changes.

Records are written in short per-slot transactions.  A due slot commits in a small thread pool
while the loop goes on consuming and producing for the other slots; records that arrive for a
slot whose commit is in flight are held, in order, and written once it is done (past
--held-records a slot's partitions are paused, and fetched again from right after the last
held record: nothing is skipped).

The policy (`start`):
1. A slot whose open transaction holds backfill-lane records commits at --commit-interval, in
   large transactions.
2. Slots holding only live records commit together: once the oldest such transaction has been
   open --live-commit-interval (LIVE_COMMIT_BACKFILLING_S while any partition backfills), every open
   live slot commits with it.  A record waits at most one interval plus the commit, half an
   interval on average, whichever slot it went to; each slot still commits at most about once
   an interval.  (Committing each slot an interval after its own first record made a record
   that opened slot B just after slot A's deadline wait for B's, up to two intervals.)  The
   loop waits for live records only until that deadline (`live_wait`).  (benchmarks/freshness.py,
   noida-db -> Tansu: live p50 was 3.6x the platform's at 100 ms, 2.05-2.24x at 50 ms (four
   runs), 1.78-1.92x at 30 ms (four runs).  Short commits also during a backfill stretched a
   concurrent 1M-record backfill to 1.4-2.1x its time alone, against 1.2-1.5x at 100 ms: on
   Tansu every transaction open beside another costs the broker more CPU; 200 ms did not
   shorten it further, 1.5-2.3x in two runs.)  With these group commits (2026-12-07, one run
   each): 30 ms 1.64-1.74x; 15 ms with 6 slots no better and a worse p99 (1.70x, p99 8.15x the
   platform's: Tansu pays per transaction), with --slots 2 p50 1.42-1.48x and p99 1.32-1.41x.
3. Any slot commits at --commit-max-records.
4. --open-transactions N: at most N slots have a transaction open or committing; a slot
   without one holds its records until a turn is free (the gate), and an open slot commits at
   once when another slot waits for its turn, so the slots take turns with whole transactions
   (waiting out the interval left the others idle: 6 backfilling partitions, 1M records,
   --open-transactions 1: 102-112k records/s, 126-129k with the early turn).
A commit that went through extends the committed partitions' maps (never before: a scrape or
a progress report must never count records whose transaction may still abort), publishes them
(migrate.mirror.publisher) and writes what was held.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from confluent_kafka import Message, TopicPartition

from migrate.errors import WriterFailed
from migrate.mirror.lanes import Lanes
from migrate.mirror.ownership import SlotOwnership
from migrate.mirror.partitions import Partitions
from migrate.mirror.publisher import Publisher
from migrate.mirror.results import MirrorResult
from migrate.mirror.retries import Retries
from migrate.mirror.spec import MirrorSpec
from migrate.mirror.writer import Run, SlotWriter

Key = tuple[str, int]
COMMIT_THREADS = 4
LIVE_COMMIT_BACKFILLING_S = 0.1  # rule 2
COMMIT_CHECK_S = 0.002  # the loop's wait while a commit is in flight: its held records are written once it is seen done


class Commits:
    def __init__(self, spec: MirrorSpec, ownership: SlotOwnership, partitions: Partitions, retries: Retries,
                 publisher: Publisher, result: MirrorResult, metrics,
                 handle: Callable[[list, bool], None], failed: Callable[[SlotWriter, WriterFailed], None]):
        self.spec = spec
        self.ownership = ownership
        self.partitions = partitions
        self.retries = retries
        self.publisher = publisher
        self.result = result
        self.metrics = metrics
        self._handle = handle  # the per-record path, for held records
        self._failed = failed  # a slot whose commit failed (the engine gives it up and retries it)
        self.lanes: Lanes | None = None  # from the start of the run on
        self.in_flight: dict[int, Future] = {}  # slot -> commit running in the pool
        self.held: dict[int, list[tuple[Message, bool]]] = {}  # slot -> (message, from the backfill lane)
        self.held_paused: dict[int, list[TopicPartition]] = {}
        self.pool: ThreadPoolExecutor | None = None

    def start_pool(self, lanes: Lanes) -> None:
        self.lanes = lanes
        self.pool = ThreadPoolExecutor(max_workers=COMMIT_THREADS, thread_name_prefix="commit")

    def close_pool(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    @property
    def busy(self) -> bool:
        """A transaction is open or committing, or records are held."""
        return bool(self.held) or any(s.open or s.committing for s in self.ownership.slots.values())

    # --- the policy ------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Commit every due slot in the pool (rules 1-4)."""
        spec = self.spec
        assert self.pool is not None  # start_pool() ran
        live_interval = self.live_interval()
        live_due = any(slot.due(now, live_interval, spec.commit_max_records)
                       for slot in self.ownership.slots.values() if not slot.backfill)
        turn_over = self.others_wait_their_turn()
        for number, slot in self.ownership.slots.items():
            if not slot.open or slot.committing:
                continue
            own_due = slot.due(now, spec.commit_interval_s, spec.commit_max_records) if slot.backfill else live_due
            if own_due or turn_over:
                slot.committing = True
                slot.backfill = False
                self.in_flight[number] = self.pool.submit(slot.commit)

    def live_interval(self) -> float:
        assert self.lanes is not None  # start_pool() ran
        live = self.spec.live_commit_interval_s
        return min(self.spec.commit_interval_s, max(live, LIVE_COMMIT_BACKFILLING_S) if self.lanes.backfilling else live)

    def live_wait(self, now: float) -> float | None:
        """How long the loop may wait for live records: until the first open transaction is due
        (rules 1 and 2), briefly while a commit is in flight or records are held, None when no slot
        has a transaction open (then the first record is taken as soon as it is read)."""
        if self.in_flight or self.held:
            return COMMIT_CHECK_S
        # A slot still holding backfill records (its partitions moved to the live lane since) is
        # due at --commit-interval: waiting for it as if it were live spun the loop until then.
        live, backfill = self.live_interval(), self.spec.commit_interval_s
        due = [slot.started_at + (backfill if slot.backfill else live)
               for slot in self.ownership.slots.values() if slot.open]
        return max(0.0, min(due) - now) if due else None

    def gate_shut(self) -> bool:
        """Rule 4: no slot may open a transaction now (the limit is reached)."""
        limit = self.spec.open_transactions
        return bool(limit) and sum(1 for s in self.ownership.slots.values() if s.open or s.committing) >= limit

    def others_wait_their_turn(self) -> bool:
        """Rule 4: the limit is reached and some slot holds records, waiting to open a transaction."""
        if not self.spec.open_transactions or not self.held or not self.gate_shut():
            return False
        slots = self.ownership.slots
        return any(not slot.open and not slot.committing
                   for slot in (slots.get(number) for number in self.held) if slot is not None)

    # --- finishing -------------------------------------------------------------------------------

    def poll_slots(self) -> None:
        """Serve the delivery reports of every slot not committing; a slot whose client fails here is
        given up and retried like one whose commit failed (measured: a worker resumed after a pause
        got _FENCED from poll, raised, once another worker had taken its slot's transactional.id)."""
        for slot in list(self.ownership.slots.values()):
            if not slot.committing:
                try:
                    slot.poll()
                except WriterFailed as exc:
                    self._failed(slot, exc)

    def finish(self, wait: bool = False) -> None:
        for number, future in list(self.in_flight.items()):
            if wait or future.done():
                self._finish(number)

    def await_slot(self, number: int) -> None:
        if number in self.in_flight:
            self._finish(number)

    def _finish(self, number: int) -> None:
        future = self.in_flight.pop(number)
        slot = self.ownership.slots[number]
        try:
            runs = future.result()
        except WriterFailed as exc:
            slot.committing = False
            self._failed(slot, exc)
            return
        slot.committing = False
        self.committed(slot, runs)
        self.release_held(number)

    def committed(self, slot: SlotWriter, runs: dict[Key, list[Run]]) -> None:
        """The slot's transaction committed: extend its partitions' maps and publish them."""
        self.retries.succeeded(slot.slot)  # a commit went through: the next failure starts the backoff afresh
        self.result.records += slot.last_count
        self.result.bytes += slot.last_bytes
        for key, written in runs.items():
            self.retries.succeeded(key)  # this partition wrote again: its next failure starts afresh
            writer = slot.partitions[key]
            records = writer.extend_map(written)
            if slot.maps_in_transaction:
                # committed inside the records' own transaction (a pruned run's tombstone is never
                # among them: migrate.mirror.pruning publishes and saves its changes at once)
                records = []
            state = self.partitions.get(key)
            position = self.partitions.take_position(state) if state is not None and state.writer is writer else None
            if position is not None and position > (writer.pmap.source_high or 0):
                writer.pmap.advance(source_high=position)
                records = writer.map_changes()
            self.publisher.publish(writer, records)
            self.metrics.committed(key, writer)  # metrics: counters, commit duration, latency
            if writer.retired:
                slot.partitions.pop(key, None)
                self.partitions.remember(key, writer.pmap)
        self.publisher.save()

    # --- held records ----------------------------------------------------------------------------

    def hold(self, slot: SlotWriter, message: Message, backfill: bool = False) -> None:
        """Keep a message of a committing (or gated) slot, in order; past a bound, stop fetching the slot."""
        held = self.held.setdefault(slot.slot, [])
        held.append((message, backfill))
        if len(held) == self.spec.held_records and slot.slot not in self.held_paused:
            assert self.lanes is not None
            # A paused partition is fetched again from the position after the last message
            # returned to us, and every such message is held here: nothing is skipped.
            paused = [TopicPartition(*key) for key in slot.partitions
                      if self.partitions.is_open(key) and not self.partitions.is_parked(key)]
            self.lanes.pause(paused)
            self.held_paused[slot.slot] = paused

    def release_held(self, number: int) -> None:
        held = self.held.pop(number, None)
        paused = self.held_paused.pop(number, None)
        if held:  # in arrival order, each run with the lane it came from
            run: list[Message] = []
            lane = held[0][1]
            for message, backfill in held:
                if backfill != lane:
                    self._handle(run, lane)
                    run, lane = [], backfill
                run.append(message)
            self._handle(run, lane)
        if paused:
            assert self.lanes is not None
            self.lanes.resume([tp for tp in paused if not self.partitions.is_parked((tp.topic, tp.partition))])

    def release_waiting(self) -> None:
        """Write what slots held while waiting for a turn to open a transaction, oldest waiter first."""
        for number in list(self.held):
            slot = self.ownership.slots.get(number)
            if slot is None or slot.committing or (not slot.open and self.gate_shut()):
                continue
            self.release_held(number)

    def drop(self, number: int) -> None:
        """The slot is given up: what it held is read again by its next holder."""
        self.held.pop(number, None)
        self.held_paused.pop(number, None)
