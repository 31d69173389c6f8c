"""The mirror loop: open a run, turn the loop, close it.

A run copies the selected source topics to the target exactly once and keeps their maps.  Its
parts, each owning one thing (their docstrings state their invariants):
- migrate.mirror.topicset: which topics are mirrored, and where to;
- migrate.mirror.configsync: their configs kept in sync while following, drift reported;
- migrate.mirror.ownership: the write slots this worker holds (fencing, the rebalance callbacks),
  migrate.mirror.membership its place in the slots group, migrate.mirror.vacancies slots nobody works;
- migrate.mirror.partitions: the state of each source partition (the one owner of it);
- migrate.mirror.opening: opening a partition (map, reconciliation, read start);
- migrate.mirror.intake: the per-record path, the two lanes, end-of-partition events;
- migrate.mirror.commits: when transactions commit, held records, what a commit changes;
- migrate.mirror.publisher: the map topic, the fleet status, heartbeats, the local index;
- migrate.mirror.catchup: when --until-caught-up is done;
- migrate.mirror.setbacks: giving up, stopping and retrying slots and partitions;
- migrate.mirror.snapshot: what the metrics see; migrate.mirror.pruning: map runs both clusters deleted.

This module wires them and turns the loop.  A run opens (both clusters checked, topics
prepared, the mirror's own topics and clients made), then turns until it is stopped or caught
up: each turn serves the slots group first (hand-overs happen in its callbacks), takes over new
slots, pumps the lanes, finishes and starts commits, and opens what is due for a retry.  A fatal
client error or an exception kept from a rebalance callback stops the run with one line.  On
the way out every slot commits what it holds and is given up, the worker says it stopped and
leaves the slots group (also when its stop is abandoned: `leave_within`).  Loops: mirror.loops.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

from confluent_kafka import KafkaError

from migrate import collector, kafka
from migrate.errors import KafkaOperationError
from migrate.metrics.hooks import NO_METRICS
from migrate.mirror import fleet, snapshot
from migrate.mirror import slots as slot_plans
from migrate.mirror.catchup import CatchUp
from migrate.mirror.commits import Commits
from migrate.mirror.configsync import ConfigSync
from migrate.mirror.intake import Intake
from migrate.mirror.lanes import Lanes
from migrate.mirror.membership import Membership, WorkerClaim, derived_instance_id
from migrate.mirror.loops import check_no_loop
from migrate.mirror.opening import Opener
from migrate.mirror.ownership import SlotOwnership
from migrate.mirror.partitions import Partitions
from migrate.mirror.pruning import Pruner
from migrate.mirror.publisher import Publisher
from migrate.mirror.results import MirrorResult, Progress
from migrate.mirror.retries import Retries
from migrate.mirror.setbacks import Setbacks
from migrate.mirror.spec import MirrorSpec, validate_spec
from migrate.mirror.topicset import TopicSet
from migrate.mirror.trusted import target_transactions_trusted
from migrate.mirror.vacancies import Vacancies
from migrate.offset_maps.store import MapStore
from migrate.offset_maps.topic import MapTopicReader, ensure_map_topic
from migrate.state import State

log = logging.getLogger("migrate.mirror")

MAX_REJOINS = 5  # fenced slots-group members replaced in one run before the run stops (Mirror._rejoined)

Key = tuple[str, int]


class Mirror:
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
        self.result = MirrorResult(spec.name)
        self.retries = Retries()  # partitions (Key) and slots (int) to open again
        self.partitions = Partitions()
        # The parts (module docstring) take the others they call; a later one is handed over once built.
        self.setbacks = setbacks = Setbacks(spec, self.store, self.worker, self.partitions, self.retries,
                                            metrics=self.metrics, slot_keys=lambda slot: self.ownership.slot_keys(slot))
        self.topics = setbacks.topics = TopicSet(spec, state, self.store, block=setbacks.block,
                                                 unblock=self.partitions.unblock)
        self.ownership = setbacks.ownership = SlotOwnership(spec, self.topics, self.retries,
                                                            give_up=setbacks.give_up_slot, revoked=self._revoked,
                                                            retry_later=setbacks.retry_later)
        self.publisher = setbacks.publisher = Publisher(
            spec, self.store, self.worker, self.partitions, self.topics,
            holding=lambda: (self.ownership.held(), self.partitions.open_count()))
        self.commits = setbacks.commits = Commits(
            spec, self.ownership, self.partitions, self.retries, self.publisher, self.result, self.metrics,
            handle=lambda messages, backfill: self.intake.handle(messages, backfill), failed=setbacks.slot_failed)
        self.intake = Intake(spec, self.partitions, self.commits, self.publisher, self.metrics,
                             slot_failed=setbacks.slot_failed, stop=setbacks.stop, fatal=self._raise_fatal)
        self.opener = Opener(spec, self.store, self.topics, self.partitions, self.ownership, self.retries,
                             self.publisher, self.result, fail=setbacks.fail, retry_later=setbacks.retry_later,
                             stop=setbacks.stop)
        self.configs = ConfigSync(spec, self.worker, self.metrics, self.stop)
        self.pruner = Pruner(spec, self.partitions, self.publisher)
        self.transactions = spec.transactions
        self.fatal: KafkaError | None = None  # a fatal source-client error reported through error_cb
        self.started_at = ""  # ISO time of run(); progress rows older than it are stale
        self.catch_up: CatchUp | None = None
        self.lanes: Lanes | None = None
        static = spec.membership == "static"  # the slots-group member: migrate.mirror.membership
        instance = (spec.worker_id or derived_instance_id(spec.name, state.path)) if static else ""
        self.membership = Membership(spec.source, spec.group_id, instance, spec.session_timeout_ms)
        self.claim = WorkerClaim(state.path, spec.name) if static and not spec.worker_id else None
        self.ownership.on_member = self.membership.note_member_id
        self.map_topic = ""
        self.durable: MapTopicReader | None = None
        self._closing = self._subscribed = False
        self._rejoins = 0
        self.vacancies: Vacancies | None = None  # from the start of the run on

    def run(self) -> MirrorResult:
        started = time.monotonic()
        selected = self._open_run()
        assert self.lanes is not None
        last_refresh = last_progress = last_flush = last_sync = last_check = time.monotonic()
        # What is allocated so far lives as long as the run: collector off it, collections rare.
        with collector.rare_collections(freeze=True):
            try:
                self.publisher.start_heartbeats()
                assert self.vacancies is not None
                self.vacancies.start()
                self.metrics.attach(self.spec.name, self.worker, self.snapshot)  # scrapes may now ask
                if selected:
                    self._subscribe()
                while not self.stop.is_set():
                    self._turn()
                    now = time.monotonic()
                    if now - last_flush >= 1.0:
                        self.publisher.flush_side_effects()
                        last_flush = now
                    if not self.spec.until_caught_up and now - last_refresh >= self.spec.metadata_refresh_s:
                        selected = self._refresh(selected)
                        last_refresh = now
                    self.pruner.prune(now)  # when due (migrate.mirror.pruning)
                    if self.group_sync is not None and now - last_sync >= self.spec.sync_interval_s:
                        self._sync_groups()
                        last_sync = now
                    if self.on_progress and now - last_progress >= self.progress_interval:
                        self.on_progress(self.progress(started))
                        last_progress = now
                    if self.catch_up is not None and now - last_check >= 0.2:
                        last_check = now
                        if self.catch_up.reached(self.ownership.settled() and not self.commits.busy):
                            self.result.caught_up = True
                            break
            finally:
                self._close_run()
        self.result.seconds = time.monotonic() - started
        self.result.copy_seconds = time.monotonic() - (self.opener.copy_started or started)
        self.result.failures = self.partitions.failures()
        self.result.partitions = len(self.catch_up.goal if self.catch_up else {}) or len(self.result.failures)
        return self.result

    def _open_run(self) -> list[str]:
        """Check both clusters, prepare the topics and the mirror's own topics, build the clients."""
        spec = self.spec
        if self.claim is not None:
            self.claim.take()  # one worker per state file and mirror: its group.instance.id is derived from them
        self.started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        kafka.check_reachable(spec.source)
        kafka.check_reachable(spec.target)
        selected = self.topics.prepare(required=spec.until_caught_up)
        check_no_loop(spec, self.topics.source_names, [self.topics.mapping[t] for t in selected])
        self.topics.take_grown()
        if spec.transactions:
            self.transactions = target_transactions_trusted(spec, self.state)
        log.debug("topics ready: %s", ", ".join(selected))
        slot_count = slot_plans.ensure_slots_topic(spec.source, spec.name, spec.slots)
        self.ownership.slot_count = slot_count
        self.map_topic = ensure_map_topic(spec.target, spec.name)
        self.publisher.start(self.map_topic, fleet.ensure_status_topic(spec.target, spec.name), slot_count)
        self.vacancies = Vacancies(spec.target, spec.source, spec.name, spec.group_id, self.worker,
                                   spec.session_timeout_ms, idle=lambda: self._subscribed and not self.ownership.owned)
        self.publisher.member = self._member
        durable = MapTopicReader(spec.target, spec.name)
        durable.refresh()
        self.durable = durable
        log.debug("durable map read: %d partitions", len(durable.partitions()))
        for key in self.partitions.failed_keys():  # stopped while the topics were prepared (blocked partitions)
            self.publisher.publish_failure(key, self.store.load(*key))
        goal = None
        if spec.until_caught_up:
            wanted = [(t, p) for t in selected for p in range(self.topics.counts[t])]
            goal = {key: end.high for key, end in kafka.partition_ends(spec.source, wanted).items()}
            log.debug("goal: %d records in %d partitions", sum(goal.values()), len(goal))
            self.catch_up = CatchUp(spec, self.store, self.partitions, self.worker, goal, self.started_at,
                                    flush=lambda: self.publisher.io("flush", 10))
        self.lanes = Lanes(*(kafka.consumer(spec.source, **{
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,
            "error_cb": self._on_consumer_error,
        }, **self.intake.lane_settings(lane)) for lane in ("live", "backfill")))
        self.membership.open(self._on_consumer_error)
        self.publisher.membership = self.membership
        self.setbacks.lanes = self.lanes
        self.opener.start(durable, self.lanes)
        self.intake.start(self.lanes, goal)
        self.commits.start_pool(self.lanes)
        return selected

    def _turn(self) -> None:
        """One loop turn: the group, new slots, the records, the commits, the retries."""
        if self.fatal is not None and not self._rejoined(self.fatal):
            self._raise_fatal(self.fatal)
        self._poll_coordinator()
        if self.ownership.callback_error is not None:
            self.ownership.raise_callback_error()
        self._take_over()
        self.intake.pump()
        self.metrics.tick()  # metrics: a snapshot for a waiting scrape, taken in this thread
        now = time.monotonic()
        self.commits.poll_slots()
        self.commits.finish()
        if self.commits.held and self.spec.open_transactions:
            self.commits.release_waiting()
        self.commits.start(now)
        self.intake.apply_positions()
        if self.partitions.any_moved:
            self.opener.reopen_moved()
        self._retry_due(now)

    def _close_run(self) -> None:
        """Commit what is open, give every slot up, say the worker stopped, close the clients."""
        self._closing = True
        if self.vacancies is not None:
            self.vacancies.stop()
        try:
            self.commits.finish(wait=True)
            for number in list(self.ownership.slots):
                self.setbacks.give_up_slot(number, True)
            self.publisher.flush_side_effects(force=True)
        finally:
            self.publisher.stop_heartbeats()
            self.publisher.io("flush", 30)
            self.commits.close_pool()
            self.metrics.detach()  # metrics: no snapshot of a closed consumer
            self._leave()
            assert self.lanes is not None
            self.lanes.close()
            if self.claim is not None:
                self.claim.release()

    def _subscribe(self) -> None:
        self.ownership.subscribe(self.membership)
        self._subscribed = True

    def _member(self) -> dict:
        """This worker's slots-group identity, in its heartbeat (the fleet removes it if it dies)."""
        waiting = self.vacancies.waiting_for() if self.vacancies is not None and self._subscribed else None
        return {"member_id": self.membership.member_id, "instance_id": self.membership.instance_id,
                "waiting_s": None if waiting is None or self.ownership.owned else round(waiting, 1)}

    def _leave(self) -> None:
        """Leave the slots group (migrate.mirror.membership rules 4 and 5)."""
        alone = self.spec.until_caught_up and not self.ownership.shared and not (
            self.vacancies is not None and self.vacancies.others_seen)
        waited = self.membership.settle(lambda: self.ownership.rebalancing, alone)
        if waited >= 0.1:
            log.debug("served the slots group %.1fs until its rebalance was over, before leaving", waited)
        self.membership.leave()

    def leave_within(self, budget: float) -> None:
        """An abandoned stop (from the stop watchdog): leave the slots group in at most `budget` s."""
        self.membership.leave_within(budget, self.ownership.drop_all)

    def _take_over(self) -> None:
        """Slots the group handed over: every new one is fenced (in parallel), then their partitions
        are opened a slot at a time (migrate.mirror.ownership)."""
        unfenced = self.ownership.unfenced()
        if unfenced:
            self._fence(unfenced)
        if self.ownership.unopened:
            self.ownership.take_over(lambda slot: self.opener.open(self.ownership.slot_keys(slot)),
                                     serve=self._poll_coordinator, stopped=self.stop.is_set)

    def _fence(self, slots: list[int]) -> None:
        if not self.ownership.fence(slots, self.map_topic, self.transactions):
            return
        self.publisher.heartbeat(running=True)  # the fleet sees the slots held before the partitions open
        assert self.durable is not None  # set when the run opened
        try:
            # Fenced now: whatever earlier holders published of these maps is in the topic.
            self.durable.refresh()
        except KafkaOperationError as exc:
            log.warning("reading the map topic failed (%s); reconciliation covers the difference", exc)

    def _revoked(self) -> None:
        self.publisher.flush_side_effects(force=True)
        if not self._closing:
            # The next holder reads the maps from the map topic once it has fenced these slots
            # (on the way out, the run flushes once for everything).
            self.publisher.io("flush", 10)

    def _retry_due(self, now: float) -> None:
        due = self.retries.due(now)
        if not due:
            return
        slots = [s for s in due if isinstance(s, int)]
        keys = [k for k in due if not isinstance(k, int) and k[0] in self.topics.mapping]
        if slots:
            self._fence(slots)
        self.opener.open(keys)  # nothing to do when empty

    def _poll_coordinator(self) -> None:
        """Serve the group: heartbeats and slot hand-overs happen in here (migrate.mirror.ownership)."""
        message = self.membership.poll()
        if message is not None and message.error() is not None:
            error = message.error()
            if kafka.is_fatal(error) and not self._rejoined(error):
                self._raise_fatal(error)
            log.debug("coordination: %s", error.str())

    def _on_consumer_error(self, error) -> None:
        """librdkafka reports some fatal errors (a fenced static member) only here."""
        if kafka.is_fatal(error):
            self.fatal = error
        else:
            log.debug("source client: %s", error.str())

    def _rejoined(self, error) -> bool:
        """migrate.mirror.membership rule 7: a fenced member with a derived id rejoins, its slots dropped."""
        if self.claim is None or not self.membership.fenced(error) or self._rejoins >= MAX_REJOINS:
            return False
        self._rejoins += 1
        log.warning("the slots-group member was fenced (%s) although no other worker has its id; rejoining",
                    error.str())
        self.fatal = None
        for slot in sorted(self.ownership.owned):
            self.ownership.owned.discard(slot)
            self.setbacks.give_up_slot(slot, False)
        self.membership.replace(self._on_consumer_error)
        self._subscribe()
        return True

    def _raise_fatal(self, error) -> None:
        raise KafkaOperationError(
            f'source consumer on cluster "{self.spec.source.name}" stopped: {error.str()} (this worker was '
            "fenced by another with the same --worker-id, or hit a fatal error); nothing is lost: restart it"
        )

    def _refresh(self, selected: list[str]) -> list[str]:
        """New matching source topics: create their targets and open the partitions of owned slots."""
        try:
            now_selected = self.topics.prepare(required=False)
        except KafkaOperationError as exc:
            log.warning("metadata refresh failed: %s", exc)
            return selected
        check_no_loop(self.spec, self.topics.source_names, [self.topics.mapping[t] for t in now_selected],
                      while_running=True)
        self.configs.due({t: self.topics.mapping[t] for t in now_selected if self.ownership.slot_of((t, 0)) is not None})
        if now_selected and (self.topics.take_grown() or now_selected != selected):
            log.info("topics changed; now mirroring %s", ", ".join(now_selected))
            if not selected:
                self._subscribe()
            self.opener.open([k for slot in self.ownership.slots for k in self.ownership.slot_keys(slot)])
        return now_selected or selected

    def _sync_groups(self) -> None:
        try:
            self.group_sync()
        except Exception as exc:  # a sync problem must not stop the mirror
            log.warning("group offset sync failed: %s", exc)

    def unfinished(self) -> str:
        """What stopping now would leave behind (for the last line of an abandoned stop)."""
        open_ = sum(1 for s in list(self.ownership.slots.values()) if s.open or s.committing)
        return (f'mirror "{self.spec.name}": {open_} open target transactions (not committed; the next start '
                "reconciles them, nothing is lost)" if open_ else
                f'mirror "{self.spec.name}": nothing uncommitted (the next start resumes where it stopped)')

    def snapshot(self) -> snapshot.Snapshot:
        """Where the partitions stand now (migrate.mirror.snapshot); taken in the loop's thread."""
        assert self.lanes is not None
        return snapshot.take(self.partitions, self.retries, self.ownership.slot_keys, self.lanes, self.store)

    def progress(self, started: float) -> Progress:
        assert self.lanes is not None
        return snapshot.progress(self.partitions, self.ownership.slots.values(), self.lanes, self.result, started)


def run_mirror(spec: MirrorSpec, state: State, **kwargs) -> MirrorResult:
    return Mirror(spec, state, **kwargs).run()
