"""The mirror loop: consume the source, write the target exactly once, keep the maps.

Work is cut into a fixed number of write slots (migrate.mirror.slots, which states the
fencing invariant): every source partition belongs to one slot, each slot has one
transactional producer, and Kafka's group protocol hands the slots out to the workers of
the mirror (group `migrate.mirror.<name>` on the source, over the coordination topic
`__migrate.<name>.slots`).  So a worker holds at most `--slots` producers however many
partitions it mirrors, and workers with the same name share the slots.

For each slot the group gives this worker (`_on_assign`; the loop takes it over in `_take_over`) it:
1. builds the slot's writer (migrate.mirror.writer), whose `init_transactions` fences every
   earlier holder of the slot;
2. for each source partition of the slot, loads the map (the longer of the local index and
   the durable map topic) and reconciles it with the target's tail (migrate.mirror.reconcile);
3. assigns the partition to the source consumer right after the last verified pair.

Records are written in short per-slot transactions.  A due slot commits in a small thread
pool while the loop goes on consuming and producing for the other slots; records that
arrive for a slot whose commit is in flight are held and written once it is done.  After
each commit the maps grow by the committed pairs and are saved.  A slot whose writer fails
gives up its partitions and is fenced, reloaded and reconciled again after a backoff; a
partition that diverged or lost data is stopped for good and reported, while the others go on.

Real sources (measured on noida-db; Kafka behaves the same):
- A partition's log usually starts above 0 (retention): it is read from its real start, never
  below its log start.  Records deleted before they are mirrored (the log start overtook the
  mirror) cannot be mirrored by anyone: the map skips them and they are reported as vanished
  (state, status, exit line), never waited for.  A fetch that went out of range leaves
  librdkafka's partition in a state that seek() refuses (KafkaError _STATE, measured): the
  partition is unassigned and assigned again at its new start (`_apply_moved`).
- Partitions added to a source topic are picked up at the next metadata refresh: the target
  topic is widened, or the new partitions are reported as blocked where the target refuses.
- An exception inside a rebalance callback is kept and re-raised by the loop (librdkafka
  would otherwise swallow it).
- A mirror in the opposite direction over the same topics is refused (migrate.mirror.loops).

Freshness: live partitions are never queued behind a backlog.  The source is read through two
consumers, two lanes, each with its own fetch queue:
- the live lane holds every partition that is near its end (fewer than lanes.LIVE_LAG records behind
  when it is opened) and is served first, every loop;
- the backfill lane holds the partitions that start far behind; it is read after the live lane,
  at most BACKFILL_BATCH records per loop, so a live record waits at most one such batch.  (One
  shared queue was measured to hold live records behind a whole backlog: noida-db answers a
  fetch with everything up to the partition's end, and no live record reached the target
  until a 1M-record backfill was done.)
A backfill partition moves to the live lane when the backfill lane reports its end (EOF): it is
unassigned there and assigned in the live lane at the offset that end-of-partition reported, so
nothing is read twice or skipped (messages a committing slot held keep their order).
The commit cadence adapts: a slot whose open transaction holds only live-lane records commits
after LIVE_COMMIT_S (a live record waits for little more than the platform's own latency), or
LIVE_COMMIT_BACKFILLING_S while any partition backfills (short live transactions beside a
backfill slowed it down on Tansu); one that holds backfill records commits at --commit-interval,
in large transactions.  Which lane a
partition is read in changes only when and how fast records are read, never what is written or
mapped: exactly-once and the maps are the same as with one lane.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from migrate import collector, kafka
from migrate.errors import (CheckFailed, DataLossDetected, KafkaOperationError, MigrateError, PartitionDiverged,
                           UsageError, WriterFailed)
from migrate.metrics.hooks import NO_METRICS
from migrate.mirror import fleet, registry
from migrate.mirror import slots as slot_plans
from migrate.mirror import topics as topic_plans
from migrate.mirror.lanes import Lanes
from migrate.mirror.loops import check_no_loop
from migrate.mirror.retries import Retries
from migrate.mirror.reconcile import Prefetched, raw_reader, reconcile, safe_read_start, skip_vanished
from migrate.mirror.spec import MirrorSpec, validate_spec
from migrate.mirror.writer import PartitionWriter, SlotWriter
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.store import MapStore
from migrate.offset_maps.topic import MapTopicReader, ensure_map_topic
from migrate.state import State

log = logging.getLogger("migrate.mirror")

Key = tuple[str, int]
FAILED = ("diverged", "data-loss", "blocked")
COMMIT_THREADS = 4
BACKFILL_BATCH = 10_000  # backfill records handled per loop, after the live lane
# The slots group's rebalance timeout (librdkafka sends max.poll.interval.ms as it).  Tansu waits
# up to it for a member that died during a rebalance, whatever its session timeout: with the
# 300 s default, a kill, a join and a leave within seconds left the survivors without a slot for
# over 200 s (then the wait was stopped); with 15 s or 30 s they had them 11 s after the kill
# (measured, plain confluent-kafka members, 12 partitions).  The loop serves the group far more
# often than this (between two slots while taking slots over); a member that does not is
# dropped and rejoins, and fencing keeps it harmless.
COORDINATION_REBALANCE_MS = 60_000
# Commit cadence of a slot whose open transaction holds only live records: 30 ms while no partition
# is backfilling, 100 ms while one is (measured with benchmarks/freshness.py, noida-db -> Tansu:
# live p50 was 3.6x the platform's at 100 ms, 2.05-2.24x at 50 ms (four runs), 1.78-1.92x at 30 ms
# (four runs).  Short commits also during a backfill stretched the concurrent 1M-record backfill to
# 1.4-2.1x its time alone, against 1.2-1.5x at 100 ms: on Tansu every transaction open beside
# another costs the broker more CPU; 200 ms did not shorten it further, 1.5-2.3x in two runs.)
LIVE_COMMIT_S, LIVE_COMMIT_BACKFILLING_S = 0.03, 0.1
# How long one loop waits for live records when nothing is backfilling.  consume() returns when
# its batch is full or this time is up, so at live rates a record waited up to the whole wait
# (it was 100 ms; half of live p50's distance from the platform's).
LIVE_WAIT_S = 0.01


@dataclass
class PartitionFailure:
    topic: str
    partition: int
    kind: str  # "diverged" | "data-loss" | "blocked" (the target topic has no such partition)
    message: str


@dataclass(frozen=True)
class Vanished:
    """Source offsets [first, end) deleted (retention, DeleteRecords, loss) before they were mirrored."""

    topic: str
    partition: int
    first: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.first

    def describe(self) -> str:
        return f"{self.topic}[{self.partition}] offsets {self.first}..{self.end - 1}"


@dataclass
class MirrorResult:
    name: str
    records: int = 0
    bytes: int = 0
    seconds: float = 0.0
    copy_seconds: float = 0.0  # from the first partition resumed to the end (start-up excluded)
    partitions: int = 0
    adopted: int = 0
    failures: list[PartitionFailure] = field(default_factory=list)
    vanished: list[Vanished] = field(default_factory=list)  # found during this run
    caught_up: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def vanished_count(self) -> int:
        return sum(v.count for v in self.vanished)


@dataclass
class Progress:
    records: int
    bytes: int
    seconds: float
    lag: dict[str, int]  # per source topic, for partitions this worker owns
    owned: int
    failed: int


class Mirror:
    # Set in run(); declared here because store_pending_flush, earlier in the class, swaps it.
    _saves: dict[Key, PartitionWriter]  # partition -> its writer, published since the last local save

    def __init__(self, spec: MirrorSpec, state: State, stop: threading.Event | None = None,
                 on_progress=None, progress_interval: float = 1.0, group_sync=None, metrics=None):
        validate_spec(spec)
        self.spec = spec
        self.state = state
        self.stop = stop or threading.Event()
        self.on_progress = on_progress
        self.progress_interval = progress_interval
        self.group_sync = group_sync  # callable run every sync interval (offsets sync), or None
        # metrics: hooks at a few points, never per record (migrate.metrics.hooks); no-op when off
        self.metrics = metrics or NO_METRICS
        self.worker = spec.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.store = MapStore(state, spec.name)
        self.slot_count = spec.slots
        self.owned: set[int] = set()  # slots the group gave this worker
        self.slots: dict[int, SlotWriter] = {}  # owned slots whose writer is fenced and working
        self.unopened: list[int] = []  # fenced slots whose partitions are not opened yet
        self.writers: dict[Key, PartitionWriter] = {}  # partitions being mirrored
        self.positions: dict[Key, int] = {}  # source position seen (EOF) not yet applied to the map
        self.retries = Retries()  # partitions (Key) and slots (int) to open again (migrate.mirror.retries)
        self.skip_below: dict[Key, int] = {}  # partitions re-reading already-mirrored records
        self.failed: dict[Key, PartitionFailure] = {}
        self.log_starts: dict[Key, int] = {}  # source log start last seen (reads never start below it)
        self.moved: set[Key] = set()  # partitions whose fetch went out of range: reopened at their new start
        self.plans: dict[str, topic_plans.TopicPlan] = {}  # per source topic, as last prepared
        self.callback_error: BaseException | None = None  # raised in a rebalance callback
        self.grown = False  # a topic gained partitions (or a target was widened) since the last refresh
        self.source_names: list[str] = []
        self.commits: dict[int, Future] = {}  # slot -> commit in flight
        self.held: dict[int, list] = {}  # slot -> messages that arrived while it committed
        self.held_paused: dict[int, list[TopicPartition]] = {}
        self.mapping: dict[str, str] = {}
        self.counts: dict[str, int] = {}  # mirrored source topic -> partition count
        self.durable: MapTopicReader | None = None
        self.goal: dict[Key, int] | None = None
        self.result = MirrorResult(spec.name)
        self.transactions = spec.transactions
        self.copy_started = 0.0
        self.fatal = None  # a fatal source-client error reported through error_cb
        self.started_at = ""  # ISO time of run(); progress rows older than it are stale
        self._lanes: Lanes | None = None  # the source consumers (migrate.mirror.lanes), from run() on
        self.parked: set[Key] = set()  # --until-caught-up: read to their goal, paused (_park)
        self._parking: list[TopicPartition] = []
        self.pool: ThreadPoolExecutor | None = None
        self.definition_due = False  # the mirror's definition changed: publish it to the fleet status
        self._status_due: dict[Key, PartitionWriter] = {}
        self._beating = threading.Event()
        self._closing = False
        self._fleet: fleet.FleetStatus | None = None  # other workers' progress, for --until-caught-up
        self._fleet_read_at = 0.0
        self._fleet_reader: fleet.StatusReader | None = None
        self._status_at = 0.0

    # --- setup ---------------------------------------------------------------------------------

    def _prepare_topics(self, required: bool) -> list[str]:
        spec = self.spec
        source_meta = kafka.list_topics(spec.source)
        self.source_names = list(source_meta)
        self._check_vanished(source_meta)
        selected = topic_plans.select_topics(spec, source_meta)
        if not selected:
            if required:
                raise UsageError(
                    f'no topic on cluster "{spec.source.name}" matches --topics {" ".join(spec.topics)}'
                    + (f' (excluding {" ".join(spec.exclude)})' if spec.exclude else "")
                    + "; check the pattern (it must match the whole topic name)"
                )
            return []
        # New topics, topics whose source grew, and topics still waiting to be widened.
        changed = [t for t in selected if t not in self.plans or source_meta[t].partitions != self.plans[t].partitions
                   or self.plans[t].writable < self.plans[t].partitions]
        if changed:
            target_meta = kafka.list_topics(spec.target)
            plans = topic_plans.plan_topics(spec, changed, source_meta, target_meta,
                                            mirrored=frozenset(self._mirrored_topics()))
            plans = topic_plans.ensure_topics(spec, plans)
            registry.record(self.state, spec, plans)
            for plan in plans:
                self._plan_ready(plan)
            self.definition_due = True
        return selected

    def _mirrored_topics(self) -> set[str]:
        """Source topics with a map: the mirror copies them already (so a narrower target means growth)."""
        return set(self.plans) | {t for t, _p in self.store.partitions()}

    def _plan_ready(self, plan: topic_plans.TopicPlan) -> None:
        old = self.plans.get(plan.source_topic)
        self.plans[plan.source_topic] = plan
        self.mapping[plan.source_topic] = plan.target_topic
        self.grown = self.grown or (old is not None and (old.partitions < plan.partitions
                                                          or old.writable < plan.writable))
        self.counts[plan.source_topic] = plan.partitions
        for partition in range(plan.writable, plan.partitions):
            self._block((plan.source_topic, partition), plan.refused)
        if old is not None:
            for partition in range(old.writable, plan.writable):
                failure = self.failed.get((plan.source_topic, partition))
                if failure is not None and failure.kind == "blocked":
                    del self.failed[(plan.source_topic, partition)]

    def _block(self, key: Key, reason: str) -> None:
        """A source partition the target topic has no partition for: reported, lag counted, not mirrored."""
        if key in self.failed:
            return
        self._fail(key, PartitionDiverged(key[0], key[1], reason), kind="blocked")

    def _check_vanished(self, source_meta: dict) -> None:
        """A source topic this mirror copied records from must still exist: if not, data was lost."""
        mirrored: dict[str, int] = {}
        for row in self.store.progress():
            if (row["source_high"] or 0) > (row["source_low"] or 0):
                mirrored[row["topic"]] = mirrored.get(row["topic"], 0) + row["source_high"] - (row["source_low"] or 0)
        gone = {t: n for t, n in mirrored.items() if t not in source_meta}
        wanted = set(topic_plans.select_topics(self.spec, {t: None for t in gone}))
        for topic in sorted(wanted):
            raise DataLossDetected(
                self.spec.source.name, topic, -1,
                f'source topic "{topic}" vanished from cluster "{self.spec.source.name}" after {gone[topic]} '
                "offsets were mirrored (the source restarted empty or the topic was deleted): data loss on "
                "the source; the target and the map are kept, nothing more is mirrored",
            )

    def _load_map(self, key: Key) -> PartitionMap:
        """The map by the registry's one rule, kept in the local index."""
        local = self.store.load(*key)
        durable = self.durable.get(key) if self.durable is not None else None
        if registry.longer(local, durable.pmap if durable else None) is not local:
            assert durable is not None  # longer() chose the durable map
            self.store.replace(key[0], key[1], durable.pmap, self.mapping[key[0]])
            return self.store.load(*key)
        return local

    # --- slots ---------------------------------------------------------------------------------

    def _slot_keys(self, slot: int) -> list[Key]:
        return slot_plans.slot_partitions(self.counts, slot, self.slot_count)

    def _fenced_slot(self, slot: int) -> SlotWriter:
        """A slot writer that has fenced every earlier holder of the slot (runs in a thread: no state)."""
        writer = SlotWriter(self.spec.name, self.spec.target, slot, compression=self.spec.compression,
                            map_topic=self.map_topic, transactions=self.transactions)
        try:
            writer.fence()
        except BaseException:
            writer.close()
            raise
        return writer

    def _take_over(self) -> None:
        """Slots the group handed over, taken in the loop: every new slot is fenced (in parallel),
        then the fenced slots' partitions are opened a slot at a time, serving the group between two.

        Not in the rebalance callback: a member is only ready for the group's next rebalance once
        its callback returned, and opening a slot reconciles every partition of it (seconds per
        partition on a loaded target).  Done there, one slow member holds every rebalance of the
        fleet back until it returns: the likely cause of a CI run (2 cores, full suite) where two
        workers held no slot for 300 s after a third left.  A slot revoked meanwhile is dropped
        from the queue (_close_slot).  Nothing else runs until the queue is done, so metrics and
        the copy see the worker's partitions open together, as before."""
        unfenced = self._unfenced()
        if unfenced:
            self._fence_slots(unfenced)
        while self.unopened and not self.stop.is_set() and self.callback_error is None:
            slot = self.unopened.pop(0)
            if slot in self.slots:
                self._open_all(self._slot_keys(slot))
            if self.unopened:
                self._poll_coordinator(self.coordinator)

    def _unfenced(self) -> list[int]:
        """Slots the group gave this worker with no writer yet and no retry scheduled (a slot whose
        fencing failed waits for its retry, _retry_due)."""
        if len(self.slots) == len(self.owned):  # every owned slot has its writer (slots never outlive ownership)
            return []
        return sorted(s for s in self.owned if s not in self.slots and not self.retries.scheduled(s))

    def _fence_slots(self, slots: list[int]) -> None:
        """Fence the slots' writers in parallel; their partitions are opened later (_take_over)."""
        slots = [s for s in slots if s in self.owned and s not in self.slots]
        if not slots:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(slots))) as pool:
            futures = {slot: pool.submit(self._fenced_slot, slot) for slot in slots}
        fenced = []
        for slot, future in futures.items():
            try:
                self.slots[slot] = future.result()
            except (WriterFailed, KafkaOperationError) as exc:
                self._retry_later(slot, str(exc))
                continue
            self.retries.opened(slot)
            fenced.append(slot)
        if not fenced:
            return
        self._heartbeat(running=True)  # the fleet sees the slots held before the partitions open
        assert self.durable is not None  # set in run() before the loop
        try:
            # Fenced now: whatever earlier holders published of these maps is in the topic.
            self.durable.refresh()
        except KafkaOperationError as exc:
            log.warning("reading the map topic failed (%s); reconciliation covers the difference", exc)
        self.unopened += fenced

    @property
    def lanes(self) -> Lanes:
        assert self._lanes is not None  # built in run() before any partition opens
        return self._lanes

    def _close_slot(self, slot: int, commit: bool) -> None:
        """Give a slot up: finish or drop its transaction, stop reading its partitions."""
        self._await_commit(slot)
        writer = self.slots.pop(slot, None)
        self.retries.forget(slot)
        self.unopened = [s for s in self.unopened if s != slot]
        self.held.pop(slot, None)
        self.held_paused.pop(slot, None)
        if writer is None:
            return
        if commit and writer.open:
            try:
                self._after_commit(writer, writer.commit())
            except WriterFailed as exc:
                log.warning("slot %d: could not commit while giving it up: %s", slot, exc)
                writer.abort()
        else:
            writer.abort()
        self._drop_partitions(list(writer.partitions))
        writer.close()

    def _drop_partitions(self, keys: list[Key]) -> None:
        gone = [TopicPartition(*key) for key in keys if self.writers.pop(key, None) is not None]
        for key in keys:
            self.positions.pop(key, None)
            self.skip_below.pop(key, None)
            self.parked.discard(key)
            self.retries.forget(key)
        if gone and self._lanes is not None:
            self.lanes.unassign(gone)

    # --- partitions ----------------------------------------------------------------------------

    def _open_all(self, keys: list[Key]) -> None:
        """Open partitions of fenced slots: read ends in bulk, then reconcile and assign each."""
        now = time.monotonic()
        keys = [k for k in keys if k not in self.failed and k not in self.writers and k[0] in self.mapping
                and slot_plans.slot_of(k[0], k[1], self.slot_count) in self.slots
                and not self.retries.waiting(k, now)]  # a partition waiting for its retry waits on
        for key in [k for k in keys if k[1] >= self.plans[k[0]].writable]:
            self._block(key, self.plans[key[0]].refused)
            keys.remove(key)
        if not keys:
            return
        ends = self._bulk_ends(keys)
        maps = {key: self._load_map(key) for key in keys}
        prefetched = self._prefetch(maps, ends)
        readers = [kafka.consumer(p, **{"enable.partition.eof": True, "fetch.wait.max.ms": 20})
                   for p in (self.spec.source, self.spec.target)]
        readers += [raw_reader(p) for p in (self.spec.source, self.spec.target)]
        started: list[TopicPartition] = []
        try:
            for key in keys:
                begin = self._start(key, maps[key], readers, ends, prefetched.get(key))
                if begin is not None:
                    started.append(begin)
        finally:
            for reader in readers:
                reader.close()
            if started:
                self.lanes.assign(started, ends)
                self.copy_started = self.copy_started or time.monotonic()

    def _bulk_ends(self, keys: list[Key]) -> dict:
        ends: dict = {}
        if not keys:
            return ends
        targets = [(self.mapping[t], p) for t, p in keys]
        try:  # both clusters at once: each read mostly waits for answers
            source_ends, target_ends = kafka.at_once([lambda: kafka.partition_ends(self.spec.source, keys),
                                                      lambda: kafka.partition_ends(self.spec.target, targets)], 2)
            ends = {**{("source", key): end for key, end in source_ends.items()},
                    **{("target", key): end for key, end in target_ends.items()}}
        except KafkaOperationError as exc:
            log.debug("bulk end lookup failed (%s); reading ends per partition", exc)
        return ends

    def _prefetch(self, maps: dict[Key, PartitionMap], ends: dict) -> dict[Key, Prefetched]:
        """Read what reconciliation checks for every partition at once (one pass per cluster, not
        two reads per partition): the records of each last mapped pair and each target tail."""
        last_source, last_target, tails = {}, {}, {}
        for (topic, partition), pmap in maps.items():
            target_key = (self.mapping[topic], partition)
            src_end, tgt_end = ends.get(("source", (topic, partition))), ends.get(("target", target_key))
            if src_end is None or tgt_end is None or pmap.source_low is None:
                continue
            if not pmap.empty:
                run = pmap.runs[-1]
                # Only pairs both clusters still hold: a range past a partition's end is never read
                # to its end (read_ranges waited 60 s per slot for a target restarted empty), and
                # reconciliation reports such a partition from its ends alone, reading nothing.
                if (tgt_end.low <= run.target_end - 1 < tgt_end.high
                        and src_end.low <= run.source_end - 1 < src_end.high):
                    last_source[(topic, partition)] = (run.source_end - 1, run.source_end)
                    last_target[target_key] = (run.target_end - 1, run.target_end)
            tails[target_key] = (max(pmap.target_high or 0, tgt_end.low), tgt_end.high)
        try:  # the three reads at once: each mostly waits for answers
            found_source, found_target, found_tails = kafka.at_once([
                lambda: kafka.read_ranges(self.spec.source, last_source, "read_uncommitted"),
                lambda: kafka.read_ranges(self.spec.target, last_target, "read_uncommitted"),
                lambda: kafka.read_ranges(self.spec.target, tails, "read_committed"),
            ], 3)
        except KafkaOperationError as exc:
            log.debug("bulk reconciliation read failed (%s); reading per partition", exc)
            return {}
        out = {}
        for key in maps:
            target_key = (self.mapping[key[0]], key[1])
            last = None
            if key in last_source:
                last = tuple(self._exactly(found, span[0]) for found, span in (
                    (found_source[key], last_source[key]), (found_target[target_key], last_target[target_key])))
            tail = found_tails.get(target_key) if target_key in tails else None
            out[key] = Prefetched(last, tail)
        return out

    @staticmethod
    def _exactly(messages: list, offset: int):
        return messages[0] if messages and messages[0].offset() == offset else None

    def _start(self, key: Key, pmap: PartitionMap, readers, ends: dict,
               prefetched: Prefetched | None = None) -> TopicPartition | None:
        """Reconcile a partition of a fenced slot; returns where its source is to be read from."""
        topic, partition = key
        slot = self.slots[slot_plans.slot_of(topic, partition, self.slot_count)]
        target_topic = self.mapping[topic]
        try:
            done = reconcile(pmap, self.spec.source, self.spec.target, topic, target_topic,
                             partition, readers[0], readers[1], src_end=ends.get(("source", key)),
                             tgt_end=ends.get(("target", (target_topic, partition))),
                             raw_readers=readers[2:], prefetched=prefetched)
        except (PartitionDiverged, DataLossDetected) as exc:
            self._fail(key, exc)
            return None
        except (WriterFailed, KafkaOperationError) as exc:
            self._retry_later(key, str(exc))
            return None
        self.result.adopted += done.adopted
        self.log_starts[key] = done.source_low
        if done.vanished is not None:
            self._vanished(key, *done.vanished)
        writer = slot.add(topic, target_topic, partition, pmap)
        self._publish(writer, writer.map_changes())
        self.store_pending_flush()
        self.writers[key] = writer
        self.retries.opened(key)
        log.info("%s[%d]: mirroring from source offset %d", topic, partition, done.resume_source)
        return self._read_from(key, pmap)

    def _read_from(self, key: Key, pmap: PartitionMap) -> TopicPartition:
        """Where to read a partition's source: right after its map, never below its log start."""
        resume = pmap.source_high or 0
        read_from = safe_read_start(pmap, resume, self.log_starts.get(key, 0))
        self.skip_below.pop(key, None)
        if read_from < resume:
            self.skip_below[key] = resume
        return TopicPartition(key[0], key[1], read_from)

    def _vanished(self, key: Key, first: int, end: int) -> None:
        gone = Vanished(key[0], key[1], first, end)
        self.result.vanished.append(gone)
        self.store.record_vanished(key[0], key[1], first, end)
        log.warning("%s: %d source offsets were deleted before they were mirrored (retention, DeleteRecords "
                    "or data loss on the source); mirroring goes on from offset %d", gone.describe(), gone.count,
                    end)

    def _apply_moved(self) -> None:
        """Partitions whose next offset fell below the source's log start: skip what vanished, read on.

        Each waits until its slot has committed what it wrote, so its map ends exactly where the
        fetch stopped; the offsets from there to the new log start are reported as vanished.
        """
        ready = [k for k in self.moved if k not in self.writers
                 or not (self.writers[k].open or self.writers[k].slot.committing)]
        if not ready:
            return
        self.moved.difference_update(ready)
        keys = [k for k in ready if k in self.writers]
        self._apply_idle_positions()
        ends = kafka.partition_ends(self.spec.source, keys) if keys else {}
        restart = []
        for key in keys:
            writer = self.writers[key]
            end = ends[key]
            if end.high < (writer.pmap.source_high or 0):
                self._stop_partition(key, DataLossDetected(
                    self.spec.source.name, key[0], key[1],
                    f"{key[0]}[{key[1]}]: source offsets went backwards: the source partition ends at {end.high} "
                    f"but {writer.pmap.source_high} were already mirrored (source restarted empty or lost data)"))
                continue
            self.log_starts[key] = end.low
            skipped = skip_vanished(writer.pmap, end.low)
            if skipped is not None:
                self._vanished(key, *skipped)
                self._publish(writer, writer.map_changes())
            restart.append(self._read_from(key, writer.pmap))
        self.store_pending_flush()
        if restart:
            self.lanes.assign(restart, {("source", k): e for k, e in ends.items()})

    def _fail(self, key: Key, exc: CheckFailed, kind: str | None = None) -> None:
        kind = kind or ("diverged" if isinstance(exc, PartitionDiverged) else "data-loss")
        self.failed[key] = PartitionFailure(key[0], key[1], kind, str(exc))
        self.retries.forget(key)
        log.error("%s", exc)
        pmap = self.store.load(*key)
        target_topic = self.mapping.get(key[0], key[0])
        self.store.save(key[0], key[1], pmap, target_topic, status=kind, worker=self.worker, error=str(exc))
        if getattr(self, "map_producer", None) is not None:  # before run() set it up: published there
            self._publish_failure(key, pmap)

    def _map_io(self, what: str, timeout: float) -> None:
        """poll() or flush() the map producer, replacing it when it failed for good."""
        try:
            getattr(self.map_producer, what)(timeout)
        except KafkaException as exc:
            self._map_producer_failed(exc)

    def _map_producer_failed(self, exc: KafkaException) -> None:
        """A fatal error of the map and status producer (measured: an idempotent producer whose target
        restarted empty, Tansu deviation 10).  What it still held were map and status records, which
        only ever lag the truth (reconciliation extends the maps), so a new producer takes over;
        the partitions themselves find the target's loss when they are reconciled."""
        err = kafka.error_of(exc)
        if err is None or not kafka.is_fatal(err):
            raise exc
        log.warning('the map producer on cluster "%s" failed for good (%s); starting a new one',
                    self.spec.target.name, kafka.describe_error(exc))
        self.map_producer = kafka.producer(self.spec.target, **{"linger.ms": 20})

    def _publish_failure(self, key: Key, pmap: PartitionMap) -> None:
        failure = self.failed[key]
        self._produce_map(*fleet.partition_record(key[0], key[1], self.mapping.get(key[0], key[0]), pmap,
                                                  failure.kind, self.worker, failure.message),
                          topic=self.status_topic)

    def _stop_partition(self, key: Key, exc: CheckFailed) -> None:
        """Stop one partition for good; what it already wrote commits with its slot."""
        writer = self.writers.get(key)
        if writer is not None:
            writer.retired = True
            if not writer.open:
                writer.slot.partitions.pop(key, None)
        self._drop_partitions([key])
        self._fail(key, exc)

    def _retry_later(self, what, reason: str) -> None:
        """Open a partition (Key) or a whole slot (int) again after a growing backoff."""
        delay = self.retries.later(what)
        for key in (self._slot_keys(what) if isinstance(what, int) else [what]):
            self.metrics.retry(key, reason)  # metrics: retries by reason
        if isinstance(what, int):
            keys = self._slot_keys(what)
            named = ", ".join(f"{t}[{p}]" for t, p in keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
            log.warning("slot %d (%s): %s; retrying in %.0fs", what, named or "no partition", reason, delay)
        else:
            log.warning("%s[%d]: %s; retrying in %.0fs", what[0], what[1], reason, delay)

    # --- commits -------------------------------------------------------------------------------

    def _start_commits(self, now: float) -> None:
        spec = self.spec
        live_interval = min(spec.commit_interval_s, LIVE_COMMIT_BACKFILLING_S if self.lanes.backfilling else LIVE_COMMIT_S)
        assert self.pool is not None  # set in run() before the loop
        turn_over = self._others_wait_their_turn()
        for number, slot in self.slots.items():
            # Short transactions for live records, long ones while backfilling (module docstring);
            # under --open-transactions, as soon as another slot waits for its turn.
            if slot.due(now, spec.commit_interval_s if slot.backfill else live_interval, spec.commit_max_records) or (
                    turn_over and slot.open and not slot.committing):
                slot.committing = True
                slot.backfill = False
                self.commits[number] = self.pool.submit(slot.commit)

    def _finish_commits(self, wait: bool = False) -> None:
        for number, future in list(self.commits.items()):
            if wait or future.done():
                self._finish_commit(number)

    def _await_commit(self, number: int) -> None:
        if number in self.commits:
            self._finish_commit(number)

    def _finish_commit(self, number: int) -> None:
        future = self.commits.pop(number)
        slot = self.slots[number]
        try:
            pending = future.result()
        except WriterFailed as exc:
            slot.committing = False
            self._slot_failed(slot, exc)
            return
        slot.committing = False
        self._after_commit(slot, pending)
        self._release_held(number)

    def _slot_failed(self, slot: SlotWriter, exc: WriterFailed) -> None:
        keys = [k for k, w in slot.partitions.items() if not w.retired]
        refused = [k for k in (exc.partitions or tuple(k for k, w in slot.partitions.items() if w.open))
                   if k in keys]
        slot.abort()
        self.slots.pop(slot.slot, None)
        self.held.pop(slot.slot, None)
        self.held_paused.pop(slot.slot, None)
        self._drop_partitions(list(slot.partitions))
        slot.close()
        if exc.refused and self.spec.until_caught_up:
            for key in refused:
                self._fail(key, PartitionDiverged(
                    key[0], key[1],
                    f"{key[0]}[{key[1]}]: the target refuses a record of this partition as too large "
                    f"({exc}); raise max.message.bytes on target topic {self.mapping[key[0]]} (and the "
                    "broker's message.max.bytes), then run the mirror again: nothing was skipped",
                ))
        elif exc.refused and refused:
            # Following: the refused partitions wait out their own growing backoff, and the slot
            # reopens without them, so the slot's other partitions go on meanwhile.  (Retrying
            # the whole slot held every partition of it behind one refused record.)  Each retry
            # of a refused partition still aborts the slot's open transaction once: what the
            # others had in it is read and written again, never lost.
            for key in refused:
                self._retry_later(key, f"target write failed: {exc}")
            self.retries.at_once(slot.slot)  # fenced again at once, without them
            log.info("slot %d: reopened without %s (a record the target refuses); its other partitions go on",
                     slot.slot, ", ".join(f"{t}[{p}]" for t, p in refused[:4]))
            return
        self._retry_later(slot.slot, f"target write failed: {exc}")

    def _after_commit(self, slot: SlotWriter, pending: dict[Key, list[tuple[bytes, bytes]]]) -> None:
        self.retries.succeeded(slot.slot)  # a commit went through: the next failure starts the backoff afresh
        self.result.records += slot.last_count
        self.result.bytes += slot.last_bytes
        for key, records in pending.items():
            self.retries.succeeded(key)  # this partition wrote again: its next failure starts afresh
            writer = slot.partitions[key]
            position = self.positions.pop(key, None)
            if position is not None and position > (writer.pmap.source_high or 0):
                writer.pmap.advance(source_high=position)
                records = writer.map_changes()
            self._publish(writer, records)
            self.metrics.committed(key, writer)  # metrics: counters, commit duration, latency
            if writer.retired:
                slot.partitions.pop(key, None)
        self.store_pending_flush()

    def _release_held(self, number: int) -> None:
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
            self.lanes.resume([tp for tp in paused if (tp.topic, tp.partition) not in self.parked])

    # --- maps ----------------------------------------------------------------------------------
    # Who writes the map topic, and in which order (one rule for both modes):
    # - default mode: the engine's map producer, after the slot's target transaction committed.
    #   The changes are handed to the producer first (_publish), then the local index is saved
    #   (store_pending_flush).  Delivery is asynchronous, so after a crash either may be the longer:
    #   the registry takes the longer per partition, and reconciliation verifies the target tail
    #   beyond it, so neither order loses or duplicates a record.  The topic is flushed before a
    #   slot is handed over (_on_revoke), so the next holder reads everything this one mapped.
    # - --transactions: the slot's writer appends them inside the records' own transaction
    #   (SlotWriter.commit), and hands the engine nothing to publish for them.

    def _publish(self, writer: PartitionWriter, pending: list[tuple[bytes, bytes]]) -> None:
        """Append map changes to the durable map topic; the local save follows in one transaction."""
        for record_key, value in pending:
            self._produce_map(record_key, value)
        key = (writer.source_topic, writer.partition)
        self._saves[key] = writer
        self._status_due[key] = writer
        self._source_commits[key] = writer.pmap.source_high

    def store_pending_flush(self) -> None:
        """Save every map published since the last save, in one short SQLite transaction."""
        if not self._saves:
            return
        saves, self._saves = self._saves, {}
        items = []
        for key, w in saves.items():
            failure = self.failed.get(key)
            items.append((w.source_topic, w.partition, w.pmap, w.target_topic,
                          failure.kind if failure else "mirroring", failure.message if failure else None))
        self.store.save_many(items, worker=self.worker)

    def _produce_map(self, record_key: bytes, value: bytes, topic: str | None = None) -> None:
        while True:
            try:
                self.map_producer.produce(topic or self.map_topic, value, record_key, partition=0)
                return
            except BufferError:
                self._map_io("poll", 0.05)
            except KafkaException as exc:
                self._map_producer_failed(exc)

    # --- rebalance callbacks (slots of the coordination topic) ---------------------------------

    def _on_assign(self, coordinator, partitions) -> None:
        try:
            slots = sorted(tp.partition for tp in partitions)
            log.info("assigned %d write slots: %s", len(slots), ", ".join(map(str, slots)))
            # The coordination topic holds no records: its partitions are only tokens of ownership.
            coordinator.assign(partitions)
            coordinator.pause(partitions)
            self.owned |= set(slots)  # fenced and opened by the loop (_take_over)
        except BaseException as exc:  # noqa: BLE001 - librdkafka would swallow it; the loop re-raises it
            self.callback_error = self.callback_error or exc

    def _on_revoke(self, coordinator, partitions) -> None:
        try:
            for tp in partitions:
                self.owned.discard(tp.partition)
                self._close_slot(tp.partition, commit=True)
            self._flush_side_effects(force=True)
            if not self._closing:
                # The next holder reads the maps from the map topic once it has fenced these slots
                # (on the way out, run() flushes once for everything).
                self._map_io("flush", 10)
            coordinator.unassign()
        except BaseException as exc:  # noqa: BLE001
            self.callback_error = self.callback_error or exc

    def _on_lost(self, coordinator, partitions) -> None:
        try:
            for tp in partitions:
                self.owned.discard(tp.partition)
                self._close_slot(tp.partition, commit=False)
            coordinator.unassign()
        except BaseException as exc:  # noqa: BLE001
            self.callback_error = self.callback_error or exc

    def _raise_callback_error(self) -> None:
        exc, self.callback_error = self.callback_error, None
        assert exc is not None  # called only when a callback failed
        if isinstance(exc, (MigrateError, KeyboardInterrupt)):
            raise exc
        raise KafkaOperationError(
            f'handling a write-slot assignment of group "{self.spec.group_id}" on cluster "{self.spec.source.name}" '
            f"failed: {kafka.describe_error(exc)}; nothing is lost: restart the mirror") from exc

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> MirrorResult:
        spec = self.spec
        started = time.monotonic()
        self.started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        kafka.check_reachable(spec.source)
        kafka.check_reachable(spec.target)
        selected = self._prepare_topics(required=spec.until_caught_up)
        check_no_loop(spec, self.source_names, [self.mapping[t] for t in selected])
        self.grown = False
        if spec.transactions:
            self.transactions = self._target_transactions_trusted()
        log.debug("topics ready: %s", ", ".join(selected))
        self.slot_count = slot_plans.ensure_slots_topic(spec.source, spec.name, spec.slots)
        self.map_topic = ensure_map_topic(spec.target, spec.name)
        self.status_topic = fleet.ensure_status_topic(spec.target, spec.name)
        self.durable = MapTopicReader(spec.target, spec.name)
        self.durable.refresh()
        log.debug("durable map read: %d partitions", len(self.durable.partitions()))
        self.map_producer = kafka.producer(spec.target, **{"linger.ms": 20})
        for key in list(self.failed):  # stopped while the topics were prepared (blocked partitions)
            self._publish_failure(key, self.store.load(*key))
        self._source_commits: dict[Key, int | None] = {}  # None: nothing mapped yet
        self._saves = {}
        if spec.until_caught_up:
            wanted = [(t, p) for t in selected for p in range(self.counts[t])]
            ends = kafka.partition_ends(spec.source, wanted)
            self.goal = {key: end.high for key, end in ends.items()}
            log.debug("goal: %d records in %d partitions", sum(self.goal.values()), len(self.goal))
        self._lanes = Lanes(*(kafka.consumer(spec.source, **{
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,
            "error_cb": self._on_consumer_error,
        }) for _ in ("live", "backfill")))
        settings = {"group.instance.id": spec.worker_id} if spec.worker_id else {}
        coordinator = kafka.consumer(spec.source, **settings, **{
            "group.id": spec.group_id,
            "auto.offset.reset": "latest",
            "session.timeout.ms": spec.session_timeout_ms,
            "heartbeat.interval.ms": max(100, spec.session_timeout_ms // 10),
            "max.poll.interval.ms": max(COORDINATION_REBALANCE_MS, spec.session_timeout_ms),
            # Eager, not cooperative-sticky: with Tansu as the coordinator a leave took 148 s to
            # hand the slots over under cooperative-sticky and 18 s under roundrobin (one fleet
            # test run each, same machine).
            "partition.assignment.strategy": "roundrobin",
            "error_cb": self._on_consumer_error,
        })
        self.coordinator = coordinator
        self.pool = ThreadPoolExecutor(max_workers=COMMIT_THREADS, thread_name_prefix="commit")
        beat = threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True)
        last_refresh = last_progress = last_commit = last_sync = last_check = time.monotonic()
        # Everything allocated so far lives as long as the run: keep the collector off it, and
        # make collections rare (the copy allocates no reference cycles of its own).
        with collector.rare_collections(freeze=True):
            try:
                self._heartbeat(running=True)
                beat.start()
                self.metrics.attach(self, self.lanes)  # metrics: scrapes may now ask for snapshots
                if selected:
                    coordinator.subscribe([slot_plans.slots_topic_name(spec.name)], on_assign=self._on_assign,
                                          on_revoke=self._on_revoke, on_lost=self._on_lost)
                while not self.stop.is_set():
                    if self.fatal is not None:
                        self._raise_fatal(self.fatal)
                    self._poll_coordinator(coordinator)
                    if self.callback_error is not None:
                        self._raise_callback_error()
                    self._take_over()
                    self._pump()
                    if self._parking:
                        self._park_due()
                    self.metrics.tick()  # metrics: a snapshot for a waiting scrape, taken in this thread
                    now = time.monotonic()
                    for slot in self.slots.values():
                        if not slot.committing:
                            slot.poll()
                    self._finish_commits()
                    if self.held and self.spec.open_transactions:
                        self._release_waiting()
                    self._start_commits(now)
                    self._apply_idle_positions()
                    if self.moved:
                        self._apply_moved()
                    self._retry_due(now)
                    if now - last_commit >= 1.0:
                        self._flush_side_effects()
                        last_commit = now
                    if not spec.until_caught_up and now - last_refresh >= spec.metadata_refresh_s:
                        selected = self._refresh(selected)
                        last_refresh = now
                    if self.group_sync is not None and now - last_sync >= spec.sync_interval_s:
                        self._sync_groups()
                        last_sync = now
                    if self.on_progress and now - last_progress >= self.progress_interval:
                        self.on_progress(self._progress(started))
                        last_progress = now
                    if self.goal is not None and now - last_check >= 0.2:
                        last_check = now
                        if self._caught_up():
                            self.result.caught_up = True
                            break
            finally:
                self._closing = True
                try:
                    self._finish_commits(wait=True)
                    for number in list(self.slots):
                        self._close_slot(number, commit=True)
                    self._flush_side_effects(force=True)
                finally:
                    self._beating.set()
                    if beat.is_alive():
                        beat.join()
                    self._heartbeat(running=False)
                    self._map_io("flush", 30)
                    self.pool.shutdown(wait=True)
                    self.metrics.detach()  # metrics: no snapshot of a closed consumer
                    coordinator.close()
                    self.lanes.close()
        self.result.seconds = time.monotonic() - started
        self.result.copy_seconds = time.monotonic() - (self.copy_started or started)
        self.result.failures = list(self.failed.values())
        self.result.partitions = len(self.goal or {}) or len(self.result.failures)
        return self.result

    def _poll_coordinator(self, coordinator) -> None:
        """Serve the group: heartbeats and slot hand-overs happen in here (callbacks above)."""
        message = coordinator.poll(0)
        if message is not None and message.error() is not None:
            error = message.error()
            if kafka.is_fatal(error):
                self._raise_fatal(error)
            log.debug("coordination: %s", error.str())

    def _retry_due(self, now: float) -> None:
        due = self.retries.due(now)
        if not due:
            return
        slots = [s for s in due if isinstance(s, int)]
        keys = [k for k in due if not isinstance(k, int) and k[0] in self.mapping]
        if slots:
            self._fence_slots(slots)
        if keys:
            self._open_all(keys)

    def unfinished(self) -> str:
        """What stopping now would leave behind (for the last line of an abandoned stop)."""
        open_ = sum(1 for s in list(self.slots.values()) if s.open or s.committing)
        return (f'mirror "{self.spec.name}": {open_} open target transactions (not committed; the next start '
                "reconciles them, nothing is lost)" if open_ else
                f'mirror "{self.spec.name}": nothing uncommitted (the next start resumes where it stopped)')

    def _target_transactions_trusted(self) -> bool:
        """--transactions only where `migrate probe` found the target's transactions sound."""
        from migrate.probe.requirements import TRANSACTION_CHECKS, check_requirements
        from migrate.probe.store import load_latest

        target = self.spec.target
        report = load_latest(self.state, target.name, target.bootstrap)
        if report is None:
            log.warning('--transactions: cluster "%s" was never probed; trusting its transactions '
                        "(run: migrate probe --cluster %s)", target.name, self.spec.target_spec or target.bootstrap)
            return True
        unmet = [u for u in check_requirements(report, TRANSACTION_CHECKS) if report.named(u.name)]
        if unmet:
            log.warning('--transactions: cluster "%s" fails the transaction checks (%s), so records and map '
                        "entries cannot commit atomically there; mirroring in the default mode, which stays "
                        "exactly-once through reconciliation", target.name, ", ".join(u.name for u in unmet))
            return False
        return True

    def _refresh(self, selected: list[str]) -> list[str]:
        """New matching source topics: create their targets and open the partitions of owned slots."""
        try:
            now_selected = self._prepare_topics(required=False)
        except KafkaOperationError as exc:
            log.warning("metadata refresh failed: %s", exc)
            return selected
        check_no_loop(self.spec, self.source_names, [self.mapping[t] for t in now_selected])
        if now_selected and (now_selected != selected or self.grown):
            self.grown = False
            log.info("topics changed; now mirroring %s", ", ".join(now_selected))
            if not selected:
                self.coordinator.subscribe([slot_plans.slots_topic_name(self.spec.name)],
                                           on_assign=self._on_assign, on_revoke=self._on_revoke,
                                           on_lost=self._on_lost)
            keys = [k for slot in self.slots for k in self._slot_keys(slot)]
            self._open_all(keys)
        return now_selected or selected

    def _pump(self) -> None:
        """The live lane first, then at most one batch of the backfill lane (see the module docstring)."""
        if not self.lanes.backfilling:
            self._handle(self.lanes.live.consume(5000, timeout=LIVE_WAIT_S))
            return
        live = self.lanes.live.consume(5000, timeout=0.0)
        self._handle(live)
        self._handle(self.lanes.backfill.consume(BACKFILL_BATCH, timeout=0.0 if live else 0.05), backfill=True)

    # --- lanes ---------------------------------------------------------------------------------

    def _park(self, key: Key) -> None:
        """--until-caught-up: a partition read to its goal is paused: fetched no more in this run.

        Fetching an idle partition is not free: noida-db answers an empty fetch at once (it ignores
        the fetch's max wait), and 2,000 partitions at their end kept the source broker and two
        librdkafka threads busy while the rest of the estate still had to be opened (the 2,000-
        partition test took 75 s alone and over 5 minutes beside another test file).  Paused, not
        unassigned: one run that unassigned them mid-copy aborted inside librdkafka (measured once,
        with extra pausing on); pausing is what the held-records bound already does.  Everything up
        to the end was returned before the end itself, so nothing read is dropped."""
        if key not in self.parked:
            self.parked.add(key)
            self._parking.append(TopicPartition(*key))

    def _park_due(self) -> None:
        """Pause the partitions parked since the last loop, in one call per lane."""
        tps, self._parking = self._parking, []
        tps = [tp for tp in tps if (tp.topic, tp.partition) in self.parked]
        if tps:
            self.lanes.pause(tps)

    def _caught_up_in_backfill(self, key: Key, offset: int) -> None:
        """The backfill lane reached the partition's end: read it in the live lane from there."""
        self.lanes.move_to_live(key, offset)
        log.debug("%s[%d]: caught up at %d; read in the live lane", key[0], key[1], offset)

    def _handle(self, messages, backfill: bool = False) -> None:
        writers = self.writers
        skipping = self.skip_below
        gated = bool(self.spec.open_transactions)
        # --open-transactions: whether a slot without an open transaction must wait, worked out
        # again only when something may have changed it (a slot opened, failed, an event).
        shut = gated and self._gate_shut()
        for message in messages:
            error = message.error()
            key = (message.topic(), message.partition())
            writer = writers.get(key)
            if writer is not None and (writer.slot.committing or (shut and not writer.slot.open)):
                self._hold(writer.slot, message, backfill)
                continue
            if error is not None:
                self._on_message_error(message, error, backfill)
                shut = gated and self._gate_shut()
                continue
            if skipping and key in skipping and self._reread(key, message):
                shut = gated and self._gate_shut()
                continue
            if writer is not None:
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
                    shut = self._gate_shut()

    def _others_wait_their_turn(self) -> bool:
        """--open-transactions: the limit is reached and some slot holds records, waiting to open one.

        Then an open slot commits at once instead of at its interval: the slots take turns, each
        writing in one transaction all it held while it waited.  (Waiting out the interval left the
        others idle: 6 backfilling partitions, 1M records, noida-db -> Tansu, --open-transactions 1:
        102-112k records/s, 126-129k with the early turn.)"""
        if not self.spec.open_transactions or not self.held or not self._gate_shut():
            return False
        slots = self.slots
        return any(not slot.open and not slot.committing
                   for slot in (slots.get(number) for number in self.held) if slot is not None)

    def _gate_shut(self) -> bool:
        """--open-transactions: no slot may open a transaction now (the limit is reached)."""
        limit = self.spec.open_transactions
        return bool(limit) and sum(1 for s in self.slots.values() if s.open or s.committing) >= limit

    def _release_waiting(self) -> None:
        """Write what slots held while waiting for a turn to open a transaction, oldest waiter first."""
        for number in list(self.held):
            slot = self.slots.get(number)
            if slot is None or slot.committing or (not slot.open and self._gate_shut()):
                continue
            self._release_held(number)

    def _hold(self, slot: SlotWriter, message, backfill: bool = False) -> None:
        """Keep a message of a committing slot, in order; past a bound, stop fetching the slot."""
        held = self.held.setdefault(slot.slot, [])
        held.append((message, backfill))
        if len(held) == self.spec.held_records and slot.slot not in self.held_paused:
            # A paused partition is fetched again from the position after the last message
            # returned to us, and every such message is held here: nothing is skipped.
            paused = [TopicPartition(*key) for key in slot.partitions if key in self.writers and key not in self.parked]
            self.lanes.pause(paused)
            self.held_paused[slot.slot] = paused

    def _on_consumer_error(self, error) -> None:
        """librdkafka reports some fatal errors (a fenced static member) only here."""
        if kafka.is_fatal(error):
            self.fatal = error
        else:
            log.debug("source client: %s", error.str())

    def _raise_fatal(self, error) -> None:
        raise KafkaOperationError(
            f'source consumer on cluster "{self.spec.source.name}" stopped: {error.str()} (this worker was '
            "fenced by another with the same --worker-id, or hit a fatal error); nothing is lost: restart it"
        )

    def _reread(self, key: Key, message) -> bool:
        """True for a record below the resume point: already mirrored, so it must be in the map."""
        offset = message.offset()
        if offset >= self.skip_below[key]:
            del self.skip_below[key]
            return False
        writer = self.writers.get(key)
        if writer is not None and writer.pmap.target_of(offset) is None:
            self._stop_partition(key, DataLossDetected(
                self.spec.source.name, key[0], key[1],
                f"{key[0]}[{key[1]}]: committed source record {offset} was hidden from an earlier read "
                "(the source's read_committed answer changed) and is not on the target; "
                "re-mirror this partition into a new target topic",
            ))
        return True

    def _on_message_error(self, message, error, backfill: bool = False) -> None:
        key = (message.topic(), message.partition())
        code = error.code()
        if code == KafkaError._PARTITION_EOF:
            if key in self.writers:
                self.positions[key] = max(self.positions.get(key, 0), message.offset())
                self.metrics.reached_end(key)  # metrics: from here on the partition is following
                if self.goal is not None and message.offset() >= self.goal.get(key, message.offset() + 1):
                    self._park(key)
                elif backfill and key in self.lanes.backfilling:
                    self._caught_up_in_backfill(key, message.offset())
            return
        if code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE) and key in self.writers:
            # Stopped fetching in an error state: unassign now, reopen at the new start once the
            # slot has committed what this partition wrote (`_apply_moved`).
            if key not in self.moved:
                self.moved.add(key)
                self.skip_below.pop(key, None)
                self.lanes.unassign([TopicPartition(*key)])
            return
        if kafka.is_fatal(error):
            self._raise_fatal(error)
        log.warning("source: %s", error.str())

    def _apply_idle_positions(self) -> None:
        """End-of-partition seen with nothing of it in an open transaction: the gap up to it is accounted for."""
        published = False
        for key, position in list(self.positions.items()):
            writer = self.writers.get(key)
            if writer is None:
                self.positions.pop(key)
            elif not writer.open and not writer.slot.committing:
                self.positions.pop(key)
                if position > (writer.pmap.source_high or 0):
                    writer.pmap.advance(source_high=position)
                    self._publish(writer, writer.map_changes())
                    published = True
        if published:
            self.store_pending_flush()

    def _publish_status(self, force: bool = False) -> None:
        """The fleet status on the target: definition, partitions that moved, this worker's heartbeat."""
        if self.definition_due:
            self.definition_due = False
            self._produce_map(*fleet.mirror_record(self.spec, self.counts, self.mapping, self.slot_count),
                              topic=self.status_topic)
        now = time.monotonic()
        if self._status_due and (force or now - self._status_at >= fleet.STATUS_EVERY_S):
            self._status_at = now
            due, self._status_due = self._status_due, {}
            for key, writer in due.items():
                failure = self.failed.get(key)
                self._produce_map(*fleet.partition_record(
                    key[0], key[1], writer.target_topic, writer.pmap, failure.kind if failure else "mirroring",
                    self.worker, failure.message if failure else None), topic=self.status_topic)

    def _heartbeat(self, running: bool) -> None:
        slots = sorted(list(self.slots))  # list(): one step under the GIL, safe from the heartbeat thread
        self._produce_map(*fleet.worker_record(self.worker, slots, len(self.writers), running),
                          topic=self.status_topic)

    def _heartbeats(self) -> None:
        """A thread: the process is alive while it beats, even while the loop is busy opening slots."""
        while not self._beating.wait(fleet.HEARTBEAT_S):
            try:
                self._heartbeat(running=True)
            except Exception as exc:  # a missed beat only makes the worker look stale for a while
                log.debug("heartbeat skipped: %s", exc)

    def _flush_side_effects(self, force: bool = False) -> None:
        self._publish_status(force)
        self._map_io("poll", 0)
        if self._source_commits:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self._source_commits.items() if o is not None]
            self._source_commits = {}
            if offsets:
                # Informational only (lag tools read the group's offsets): the coordination member
                # commits them, since only a member of the group may.
                try:
                    self.coordinator.commit(offsets=offsets, asynchronous=True)
                except (KafkaException, RuntimeError) as exc:
                    log.debug("source group commit skipped: %s", exc)

    def _caught_up(self) -> bool:
        assert self.goal is not None
        if self.unopened or self._unfenced():
            return False
        if any(s.open or s.committing for s in self.slots.values()) or self.positions or self.held:
            return False
        progress = {(r["topic"], r["partition"]): r for r in self.store.progress()}
        others = []
        for key, goal in self.goal.items():
            if key in self.failed:
                continue
            row = progress.get(key)
            if row is not None and row["status"] in FAILED:
                continue
            # Progress saved before this run started proves nothing about the target now:
            # a partition counts once it was reconciled (or mirrored) during this run.
            if row is None or row["updated_at"] < self.started_at or (row["source_high"] or 0) < goal:
                if key in self.writers:
                    return False
                others.append((key, goal))
        return self._others_caught_up(others)

    def _others_caught_up(self, others: list[tuple[Key, int]]) -> bool:
        """Partitions this worker does not hold: caught up as the fleet status says (another worker's)."""
        if not others:
            return True
        now = time.monotonic()
        if self._fleet is None or now - self._fleet_read_at >= 2.0:
            self._fleet_read_at = now
            self._map_io("flush", 10)
            self._fleet_reader = self._fleet_reader or fleet.StatusReader(self.spec.target, self.spec.name)
            self._fleet = registry.read_fleet(self.spec.target, self.spec.name, self._fleet_reader)
        if self._fleet is None:
            return False
        for key, goal in others:
            row = self._fleet.partitions.get(key)
            if row is None:
                return False
            if row.get("status") in FAILED:
                continue
            # Another worker's progress counts when it is this run's, or its worker is alive
            # (a live holder reconciled the partition when it took it).
            worker = row.get("worker")
            fresh = (row.get("updated_at") or "") >= self.started_at or (
                worker != self.worker and self._fleet.alive(worker))
            if not fresh or (row.get("source_high") or 0) < goal:
                return False
        return True

    def _sync_groups(self) -> None:
        try:
            self.group_sync()
        except Exception as exc:  # a sync problem must not stop the mirror
            log.warning("group offset sync failed: %s", exc)

    def _progress(self, started: float) -> Progress:
        lag: dict[str, int] = {}
        for key, writer in self.writers.items():
            try:
                _low, high = self.lanes.get_watermark_offsets(TopicPartition(*key), cached=True)
            except Exception:
                continue
            if high is not None and high >= 0:
                lag[key[0]] = lag.get(key[0], 0) + max(0, high - (writer.pmap.source_high or 0) - writer.count)
        records = self.result.records + sum(s.count for s in self.slots.values())
        nbytes = self.result.bytes + sum(w.bytes for w in self.writers.values())
        return Progress(records, nbytes, time.monotonic() - started, lag, len(self.writers), len(self.failed))


def run_mirror(spec: MirrorSpec, state: State, **kwargs) -> MirrorResult:
    return Mirror(spec, state, **kwargs).run()
