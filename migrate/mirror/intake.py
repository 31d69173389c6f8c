"""The per-record path: what the loop does with each record and event the lanes return.

Freshness: live partitions are never queued behind a backlog.  The source is read through two
consumers, two lanes (migrate.mirror.lanes), each with its own fetch queue:
- the live lane holds every partition that is near its end (fewer than lanes.LIVE_LAG records
  behind when it is opened) and is served first, every loop turn;
- the backfill lane holds the partitions that start far behind; it is read after the live lane,
  at most BACKFILL_BATCH records per turn, so a live record waits at most one such batch.  (One
  shared queue was measured to hold live records behind a whole backlog: noida-db answers a
  fetch with everything up to the partition's end, and no live record reached the target
  until a 1M-record backfill was done.)
With --max-bytes-per-second the lanes are read within a byte budget, live first
(migrate.mirror.throttle).
A backfill partition moves to the live lane when the backfill lane reports its end (EOF): it is
unassigned there and assigned in the live lane at the offset that end-of-partition reported, so
nothing is read twice or skipped.  Which lane a partition is read in changes only when and how
fast records are read, never what is written or mapped.

For each record of an open partition, in order:
1. its slot is committing, or has no open transaction while the --open-transactions gate is
   shut: the record is held (migrate.mirror.commits) and written later, in order;
2. it lies below the partition's resume point (re-read after a gap in the map): it must be in
   the map, and is dropped;
3. otherwise it is written into its slot's open transaction (migrate.mirror.writer).
An end-of-partition event records the position reached: applied to the map once nothing of the
partition is in an open transaction (`apply_positions`), parks the partition at its goal
(--until-caught-up), or moves it to the live lane.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, TopicPartition

from migrate import kafka
from migrate.errors import CheckFailed, DataLossDetected, WriterFailed
from migrate.mirror import throttle
from migrate.mirror.commits import Commits
from migrate.mirror.lanes import Lanes
from migrate.mirror.partitions import Partitions, PartitionState
from migrate.mirror.publisher import Publisher
from migrate.mirror.spec import MirrorSpec
from migrate.mirror.writer import SlotWriter

log = logging.getLogger("migrate.mirror")

Key = tuple[str, int]
BACKFILL_BATCH = 10_000  # backfill records handled per loop turn, after the live lane
LIVE_BATCH = 5_000
# How long one loop turn waits for live records when nothing is backfilling: consume() returns when
# its batch is full or its wait is up, so a record read early in a wait waited all of it (a fixed
# 100 ms wait was half of live p50's distance from the platform's).  So the loop waits only until
# the open transactions are due (Commits.live_wait), and with none open it takes the first record
# as soon as it is read (poll), and what came with it; LIVE_WAIT_S bounds the wait for records
# while nothing is open, and with it how soon the loop sees a stop or a retry due.
LIVE_WAIT_S = 0.05
LIMITED_WAIT_S = 0.01  # under --max-bytes-per-second: the wait for live records when nothing was taken


class Intake:
    def __init__(self, spec: MirrorSpec, partitions: Partitions, commits: Commits, publisher: Publisher, metrics,
                 slot_failed: Callable[[SlotWriter, WriterFailed], None], stop: Callable[[Key, CheckFailed], None],
                 fatal: Callable[[KafkaError], None]):
        self.spec = spec
        self.partitions = partitions
        self.commits = commits
        self.publisher = publisher
        self.metrics = metrics
        self._slot_failed = slot_failed
        self._stop = stop  # an open partition stopped for good
        self._fatal = fatal
        self.lanes: Lanes | None = None  # from the start of the run on
        self.goal: dict[Key, int] | None = None  # --until-caught-up: each partition's source end at start
        # --max-bytes-per-second: the budget, and the bytes each lane's client fetched (its statistics)
        self.budget = throttle.ByteBudget(spec.max_bytes_per_second) if spec.max_bytes_per_second else None
        self.fetched = {lane: throttle.FetchedBytes() for lane in ("live", "backfill")}
        self._parking: list[TopicPartition] = []

    def start(self, lanes: Lanes, goal: dict[Key, int] | None) -> None:
        self.lanes, self.goal = lanes, goal
        if self.budget is not None:
            self.metrics.throttling(self.throttle_figures)  # metrics: read at scrape time

    def lane_settings(self, lane: str) -> dict[str, object]:
        """Client settings of a lane under --max-bytes-per-second (none without a limit)."""
        return throttle.lane_settings(self.spec.max_bytes_per_second, self.fetched[lane])

    def throttle_figures(self) -> throttle.Figures:
        """What the byte-rate limit did so far (for the metrics, read from their thread)."""
        budget = self.budget
        assert budget is not None  # asked only under a limit
        return throttle.Figures(budget.limit, budget.taken["live"], budget.taken["backfill"], budget.waited,
                                sum(f.total for f in self.fetched.values()))

    def pump(self) -> None:
        """The live lane first, then at most one batch of the backfill lane (see the module docstring)."""
        lanes = self.lanes
        assert lanes is not None  # start() ran
        if self.budget is not None:
            self._pump_limited(lanes, self.budget)
        elif not lanes.backfilling:
            self._pump_live(lanes.live)
        else:
            live = lanes.live.consume(LIVE_BATCH, timeout=0.0)
            self.handle(live)
            self.handle(lanes.backfill.consume(BACKFILL_BATCH, timeout=0.0 if live else 0.05), backfill=True)
        if self._parking:
            self._park_due()

    def _pump_live(self, live) -> None:
        """The live lane alone: wait for records no longer than the open transactions allow."""
        wait = self.commits.live_wait(time.monotonic())
        if wait is not None:
            self.handle(live.consume(LIVE_BATCH, timeout=min(wait, LIVE_WAIT_S)))
            return
        first = live.poll(LIVE_WAIT_S)
        if first is not None:
            self.handle([first, *live.consume(LIVE_BATCH - 1, timeout=0.0)])

    def _pump_limited(self, lanes: Lanes, budget: throttle.ByteBudget) -> None:
        """`pump` within --max-bytes-per-second: live first, the backfill only on budget (migrate.mirror.throttle)."""
        budget.refill()
        live = lanes.live.consume(LIVE_BATCH, timeout=0.0) if budget.live_open else []
        budget.charge(live, "live")
        self.handle(live)
        wanted = budget.backfill_records(BACKFILL_BATCH) if lanes.backfilling else 0
        if wanted:
            batch = lanes.backfill.consume(wanted, timeout=0.0 if live else 0.05)
            budget.charge(batch, "backfill")
            self.handle(batch, backfill=True)
            return
        if live:
            return
        # Nothing taken: wait for live records, never longer than the budget takes to refill.
        wait = min(budget.wait_s() if lanes.backfilling else LIMITED_WAIT_S, LIMITED_WAIT_S) or LIMITED_WAIT_S
        if lanes.backfilling:
            budget.waited += wait
        if budget.live_open:
            live = lanes.live.consume(LIVE_BATCH, timeout=wait)
            budget.charge(live, "live")
            self.handle(live)
        else:
            time.sleep(wait)

    def handle(self, messages, backfill: bool = False) -> None:
        """Rules 1-3 for each message, in order (the hot path: keep it lean)."""
        states = self.partitions.states
        commits = self.commits
        gated = bool(self.spec.open_transactions)
        # --open-transactions: whether a slot without an open transaction must wait, worked out
        # again only when something may have changed it (a slot opened, failed, an event).
        shut = gated and commits.gate_shut()
        for message in messages:
            error = message.error()
            state = states.get((message.topic(), message.partition()))
            writer = state.writer if state is not None else None
            if writer is not None and (writer.slot.committing or (shut and not writer.slot.open)):
                commits.hold(writer.slot, message, backfill)
                continue
            if error is not None:
                self._on_event(message, error, backfill)
                shut = gated and commits.gate_shut()
                continue
            if writer is None:
                continue
            assert state is not None
            if state.skip_below is not None and self.reread(state, message):
                shut = gated and commits.gate_shut()
                continue
            slot = writer.slot
            opening = not slot.open
            if backfill:
                slot.backfill = True
            try:
                writer.write(message)
            except WriterFailed as exc:
                self._slot_failed(slot, exc)
                opening = True
            if opening and gated:
                shut = commits.gate_shut()

    def reread(self, state: PartitionState, message) -> bool:
        """Rule 2: True for a record below the resume point: already mirrored, so it must be in the map."""
        offset = message.offset()
        assert state.skip_below is not None
        if offset >= state.skip_below:
            self.partitions.reread_done(state)
            return False
        writer = state.writer
        if writer is not None and writer.pmap.target_of(offset) is None:
            key = state.key
            self._stop(key, DataLossDetected(
                self.spec.source.name, key[0], key[1],
                f"{key[0]}[{key[1]}]: committed source record {offset} was hidden from an earlier read "
                "(the source's read_committed answer changed) and is not on the target; "
                "re-mirror this partition into a new target topic",
            ))
        return True

    def _on_event(self, message, error, backfill: bool = False) -> None:
        key = (message.topic(), message.partition())
        state = self.partitions.get(key)
        code = error.code()
        open_ = state is not None and state.writer is not None
        if code == KafkaError._PARTITION_EOF:
            if open_:
                assert state is not None and self.lanes is not None
                self.partitions.reached_end(state, message.offset())
                self.metrics.reached_end(key, state.writer)  # metrics: from here on the partition is following
                if self.goal is not None and message.offset() >= self.goal.get(key, message.offset() + 1):
                    self._park(state)
                elif backfill and key in self.lanes.backfilling:
                    self.lanes.move_to_live(key, message.offset())
                    log.debug("%s[%d]: caught up at %d; read in the live lane", key[0], key[1], message.offset())
            return
        if code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE) and open_:
            # Stopped fetching in an error state: unassign now, reopen at the new start once the
            # slot has committed what this partition wrote (migrate.mirror.opening.reopen_moved).
            assert state is not None and self.lanes is not None
            if self.partitions.move(state):
                self.lanes.unassign([TopicPartition(*key)])
            return
        if kafka.is_fatal(error):
            self._fatal(error)
        log.warning("source: %s", error.str())

    def _park(self, state: PartitionState) -> None:
        """--until-caught-up: a partition read to its goal is paused: fetched no more in this run.

        Fetching an idle partition is not free: noida-db answers an empty fetch at once (it ignores
        the fetch's max wait), and 2,000 partitions at their end kept the source broker and two
        librdkafka threads busy while the rest of the estate still had to be opened (the 2,000-
        partition test took 75 s alone and over 5 minutes beside another test file).  Paused, not
        unassigned: one run that unassigned them mid-copy aborted inside librdkafka (measured once,
        with extra pausing on); pausing is what the held-records bound already does.  Everything up
        to the end was returned before the end itself, so nothing read is dropped."""
        if self.partitions.park(state):
            self._parking.append(TopicPartition(*state.key))

    def _park_due(self) -> None:
        """Pause the partitions parked since the last turn, in one call per lane."""
        tps, self._parking = self._parking, []
        tps = [tp for tp in tps if self.partitions.is_parked((tp.topic, tp.partition))]
        if tps:
            assert self.lanes is not None
            self.lanes.pause(tps)

    def apply_positions(self) -> None:
        """End-of-partition seen with nothing of it in an open transaction: the gap up to it is accounted for."""
        if not self.partitions.positions_pending:
            return
        published = False
        for state in self.partitions.positioned():
            writer = state.writer
            if writer is None or writer.open or writer.slot.committing:
                continue
            position = self.partitions.take_position(state)
            if position is not None and position > (writer.pmap.source_high or 0):
                writer.pmap.advance(source_high=position)
                self.publisher.publish(writer, writer.map_changes())
                published = True
        if published:
            self.publisher.save()
