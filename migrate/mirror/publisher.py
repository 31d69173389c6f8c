"""What a worker publishes besides the mirrored records: maps, fleet status, heartbeats.

One producer on the target writes the map topic (`__migrate.NAME.offset-map`) and the status
topic (`__migrate.NAME.status`); the local index (the state file) is saved after each batch of
map changes; the slots group on the source gets the mirrored positions as its offsets (for lag
tools only).

Who writes the map topic, and in which order (one rule for both modes):
- default mode: this producer, after the slot's target transaction committed.  The changes are
  handed to the producer first (`publish`), then the local index is saved (`save`).  Delivery
  is asynchronous, so after a crash either may be the longer: the registry takes the longer
  per partition, and reconciliation verifies the target tail beyond it, so neither order loses
  or duplicates a record.  The topic is flushed before a slot is handed over (the revoke
  callback), so the next holder reads everything this one mapped.
- --transactions: the slot's writer appends them inside the records' own transaction
  (SlotWriter.commit) and hands nothing to publish for them; the local save is the same.

A heartbeat thread writes this worker's record every fleet.HEARTBEAT_S, so the fleet sees the
process alive even while its loop is busy opening slots.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaException, Producer, TopicPartition

from migrate import kafka
from migrate.mirror import fleet
from migrate.mirror.membership import Membership
from migrate.mirror.partitions import Partitions
from migrate.mirror.spec import MirrorSpec
from migrate.mirror.topicset import TopicSet
from migrate.mirror.writer import PartitionWriter
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.store import MapStore
from migrate.offset_maps.topic import MapRecord

log = logging.getLogger("migrate.mirror")

Key = tuple[str, int]


class Publisher:
    def __init__(self, spec: MirrorSpec, store: MapStore, worker: str, partitions: Partitions, topics: TopicSet,
                 holding: Callable[[], tuple[list[int], int]]):
        self.spec = spec
        self.store = store
        self.worker = worker
        self.partitions = partitions
        self.topics = topics
        self._holding = holding  # (slots held, partitions open), read from the heartbeat thread too
        self.map_topic = self.status_topic = ""
        self.slot_count = spec.slots
        self.producer: Producer | None = None  # the map and status producer, from start() on
        self.member: Callable[[], dict] = dict  # this worker's slots-group identity, for its heartbeat
        self.membership: Membership | None = None  # the slots-group member (migrate.mirror.membership), which commits the source positions
        self._saves: dict[Key, PartitionWriter] = {}  # published since the last local save
        self._status_due: dict[Key, PartitionWriter] = {}
        self._source_commits: dict[Key, int | None] = {}  # None: nothing mapped yet
        self._status_at = 0.0
        self._beating = threading.Event()
        self._beat: threading.Thread | None = None

    def start(self, map_topic: str, status_topic: str, slot_count: int) -> None:
        self.map_topic, self.status_topic, self.slot_count = map_topic, status_topic, slot_count
        self.producer = kafka.producer(self.spec.target, **{"linger.ms": 20})

    # --- maps --------------------------------------------------------------------------------------

    def publish(self, writer: PartitionWriter, pending: list[MapRecord]) -> None:
        """Append map changes to the durable map topic; the local save follows (`save`)."""
        for record_key, value in pending:
            self._produce(record_key, value, self.map_topic)
        key = (writer.source_topic, writer.partition)
        self._saves[key] = writer
        self._status_due[key] = writer
        self._source_commits[key] = writer.pmap.source_high

    def save(self) -> None:
        """Save every map published since the last save, in one short SQLite transaction."""
        if not self._saves:
            return
        saves, self._saves = self._saves, {}
        items = []
        for key, w in saves.items():
            failure = self.partitions.failure(key)
            items.append((w.source_topic, w.partition, w.pmap, w.target_topic,
                          failure.kind if failure else "mirroring", failure.message if failure else None))
        self.store.save_many(items, worker=self.worker)

    def publish_failure(self, key: Key, pmap: PartitionMap) -> None:
        failure = self.partitions.failure(key)
        assert failure is not None  # published when a partition fails
        self._produce(*fleet.partition_record(key[0], key[1], self.topics.target_of(key[0]), pmap,
                                              failure.kind, self.worker, failure.message), topic=self.status_topic)

    # --- fleet status ------------------------------------------------------------------------------

    def publish_status(self, force: bool = False) -> None:
        """The fleet status on the target: definition, partitions that moved, this worker's heartbeat."""
        if self.topics.take_definition_due():
            self._produce(*fleet.mirror_record(self.spec, self.topics.counts, self.topics.mapping, self.slot_count),
                          topic=self.status_topic)
        now = time.monotonic()
        if self._status_due and (force or now - self._status_at >= fleet.STATUS_EVERY_S):
            self._status_at = now
            due, self._status_due = self._status_due, {}
            for key, writer in due.items():
                failure = self.partitions.failure(key)
                self._produce(*fleet.partition_record(
                    key[0], key[1], writer.target_topic, writer.pmap, failure.kind if failure else "mirroring",
                    self.worker, failure.message if failure else None), topic=self.status_topic)

    def heartbeat(self, running: bool) -> None:
        slots, partitions = self._holding()
        self._produce(*fleet.worker_record(self.worker, slots, partitions, running, self.member()),
                      topic=self.status_topic)

    def start_heartbeats(self) -> None:
        self.heartbeat(running=True)
        self._beat = threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True)
        self._beat.start()

    def stop_heartbeats(self) -> None:
        """The last beat says the worker stopped."""
        self._beating.set()
        if self._beat is not None and self._beat.is_alive():
            self._beat.join()
        self.heartbeat(running=False)

    def _heartbeats(self) -> None:
        """A thread: the process is alive while it beats, even while the loop is busy opening slots."""
        while not self._beating.wait(fleet.HEARTBEAT_S):
            try:
                self.heartbeat(running=True)
            except Exception as exc:  # a missed beat only makes the worker look stale for a while
                log.debug("heartbeat skipped: %s", exc)

    # --- side effects, once a second ---------------------------------------------------------------

    def flush_side_effects(self, force: bool = False) -> None:
        self.publish_status(force)
        self.io("poll", 0)
        if self._source_commits:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self._source_commits.items() if o is not None]
            self._source_commits = {}
            if offsets and self.membership is not None:
                # Informational only (lag tools read the group's offsets): the coordination member
                # commits them, since only a member of the group may.
                try:
                    self.membership.commit(offsets)
                except (KafkaException, RuntimeError) as exc:
                    log.debug("source group commit skipped: %s", exc)

    # --- the producer ------------------------------------------------------------------------------

    def io(self, what: str, timeout: float) -> None:
        """poll() or flush() the producer, replacing it when it failed for good."""
        try:
            getattr(self.producer, what)(timeout)
        except KafkaException as exc:
            self.producer_failed(exc)

    def producer_failed(self, exc: KafkaException) -> None:
        """A fatal error of the map and status producer (measured: an idempotent producer whose target
        restarted empty, Tansu deviation 10).  What it still held were map and status records, which
        only ever lag the truth (reconciliation extends the maps), so a new producer takes over;
        the partitions themselves find the target's loss when they are reconciled."""
        err = kafka.error_of(exc)
        if err is None or not kafka.is_fatal(err):
            raise exc
        log.warning('the map producer on cluster "%s" failed for good (%s); starting a new one',
                    self.spec.target.name, kafka.describe_error(exc))
        self.producer = kafka.producer(self.spec.target, **{"linger.ms": 20})

    def _produce(self, record_key: bytes, value: bytes | None, topic: str) -> None:
        while True:
            try:
                assert self.producer is not None  # start() ran
                self.producer.produce(topic, value, record_key, partition=0)
                return
            except BufferError:
                self.io("poll", 0.05)
            except KafkaException as exc:
                self.producer_failed(exc)
