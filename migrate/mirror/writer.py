"""The writers of mirrored records: one transactional producer per write slot.

A mirror has a fixed number of write slots (migrate.mirror.slots); every source partition
belongs to exactly one slot.  A `SlotWriter` owns the slot's transactional producer,
transactional.id `migrate.<mirror>.slot.<k>`: initialising it fences every earlier holder of
the slot (a zombie worker, a worker that lost the slot in a rebalance) and aborts whatever
such a holder left open, before reconciliation reads the targets' tails.  Records of all
the slot's partitions are written in one short transaction; after each commit the pairs
(source offset, target offset) are added to each partition's map.

Each partition of the slot has a `PartitionWriter`: the per-partition half of the
transaction (source runs written, delivery samples, its map).  Target offsets come from
delivery reports on the first record of each partition in a transaction and on every
SAMPLE-th record after it: within one transaction of the only writer of a partition,
offsets are contiguous, and the samples check that they really are.  A gap means some
other writer got in: the slot's transaction is aborted and its partitions reconciled again.

With `transactions=True` the map entries are produced to the map topic inside the same
transaction, so data and map commit together on targets whose transactions work.

Threads: `commit` may run in a pool thread while the engine goes on with other slots; the
engine never produces into a slot while its commit is in flight, and extends the maps itself,
in its own thread, once the commit has returned.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import REFUSED_ERRORS, WriterFailed
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.topic import MapRecord, map_records

log = logging.getLogger("migrate.mirror")

SAMPLE = 1024
Key = tuple[str, int]
Run = tuple[int, int, int]  # source start, target start, length: pairs one transaction wrote


LINGER_MS = 5  # a slot producer's batching wait: part of a live record's way (benchmarks/freshness.py)


def slot_transactional_id(mirror: str, slot: int) -> str:
    return f"migrate.{mirror}.slot.{slot}"


class SlotWriter:
    def __init__(self, mirror: str, target: ClusterProfile, slot: int, *, compression: str = "none",
                 map_topic: str | None = None, transactions: bool = False):
        self.slot = slot
        self.map_topic = map_topic
        self.transactions = transactions
        self.producer = kafka.producer(target, **{
            "compression.type": compression,
            "linger.ms": LINGER_MS,
            "batch.size": 1_000_000,
            "queue.buffering.max.kbytes": 65536,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 60_000,
            "transactional.id": slot_transactional_id(mirror, slot),
            "transaction.timeout.ms": 60_000,
        })
        self.partitions: dict[Key, PartitionWriter] = {}
        self.open = False
        self.committing = False  # a commit is in flight in a pool thread
        self.started_at = 0.0
        self.backfill = False  # the open transaction holds records of the backfill lane
        self.count = 0
        # (partition, librdkafka error name, text) of delivery and produce errors in the open transaction
        self.errors: list[tuple[Key, str, str]] = []
        self.produce_errors: list[tuple[Key, str, str]] = []
        self.last_count = self.last_bytes = 0

    def fence(self, timeout: float = 30.0) -> None:
        try:
            self.producer.init_transactions(timeout)
        except KafkaException as exc:
            raise WriterFailed(f"initialising the transactional producer of slot {self.slot}: "
                               f"{kafka.describe_error(exc)}", error_names=_names(exc)) from exc

    def add(self, source_topic: str, target_topic: str, partition: int, pmap: PartitionMap) -> PartitionWriter:
        writer = PartitionWriter(self, source_topic, target_topic, partition, pmap)
        self.partitions[(source_topic, partition)] = writer
        return writer

    def begin(self) -> None:
        try:
            self.producer.begin_transaction()
        except KafkaException as exc:  # a fatal client (fenced) refuses to begin
            raise WriterFailed(f"beginning a transaction of slot {self.slot}: {kafka.describe_error(exc)}",
                               error_names=_names(exc)) from exc
        self.open = True
        self.started_at = time.monotonic()

    def due(self, now: float, interval: float, max_records: int) -> bool:
        return self.open and not self.committing and (self.count >= max_records or now - self.started_at >= interval)

    @property
    def maps_in_transaction(self) -> bool:
        """Map entries are written inside the records' own transaction (--transactions)."""
        return self.transactions and bool(self.map_topic)

    def commit(self, timeout: float = 60.0) -> dict[Key, list[Run]]:
        """Commit the open transaction; returns each written partition's new runs.

        The maps are not touched here: the caller extends them (PartitionWriter.extend_map) once
        this has returned, so that a map never shows a pair whose transaction may still abort
        (a metrics scrape during a slow commit read the extended map as mirrored)."""
        if not self.open:
            self.last_count = self.last_bytes = 0
            return {}
        written = [w for w in self.partitions.values() if w.count]
        began = time.monotonic()
        try:
            remaining = self.producer.flush(timeout)
        except (KafkaException, SystemError) as exc:
            # SystemError: a fenced producer can fail inside a delivery callback during flush
            raise WriterFailed(f"flushing: {kafka.describe_error(exc)}", error_names=_names(exc)) from exc
        if remaining or self.errors or self.produce_errors:
            # the delivery errors first: they say why (e.g. MSG_SIZE_TOO_LARGE), a produce error only that it failed
            errors = self.errors[:3] + self.produce_errors[:1]
            failing = _failing_partitions(self.errors + self.produce_errors)
            raise WriterFailed(f"{remaining} records undelivered; errors: "
                               f"{'; '.join(text for _, _, text in errors)}", failing,
                               tuple(dict.fromkeys(name for _, name, _ in errors)))
        runs = {(w.source_topic, w.partition): w.written_runs() for w in written}
        try:
            if self.map_topic and self.transactions:
                for w in written:
                    for key, value in w.map_records_after(runs[(w.source_topic, w.partition)]):
                        self.producer.produce(self.map_topic, value, key, partition=0)
            self.producer.commit_transaction(timeout)
        except (KafkaException, SystemError) as exc:
            raise WriterFailed(f"committing the transaction of slot {self.slot}: "
                               f"{kafka.describe_error(exc)}", error_names=_names(exc)) from exc
        self.open = False
        self.last_count = sum(w.count for w in written)
        self.last_bytes = sum(w.bytes for w in written)
        committed_at, seconds = time.time(), time.monotonic() - began
        for writer in written:
            writer.last_count, writer.last_bytes = writer.count, writer.bytes
            writer.last_first_timestamp, writer.committed_at = writer.first_timestamp, committed_at
            writer.last_commit_seconds = seconds
        self._reset()
        return runs

    def abort(self) -> None:
        """Drop the open transaction (its records were never mapped; reconciliation decides)."""
        if self.open:
            try:
                self.producer.abort_transaction(10)
            except KafkaException as exc:
                log.debug("abort on slot %d: %s", self.slot, kafka.describe_error(exc))
        self.open = False
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.errors = []
        self.produce_errors = []
        for writer in self.partitions.values():
            writer.reset_batch()

    def poll(self) -> None:
        """Serve delivery reports.  librdkafka raises a fatal error here too (_FENCED: another
        worker initialised the slot's transactional.id), which ends this writer."""
        try:
            self.producer.poll(0)
        except KafkaException as exc:
            raise WriterFailed(f"slot {self.slot}: {kafka.describe_error(exc)}", error_names=_names(exc)) from exc

    def close(self) -> None:
        try:
            self.producer.flush(5)
        except KafkaException as exc:  # a fenced or failed client has nothing left to deliver
            log.debug("closing the writer of slot %d: %s", self.slot, kafka.describe_error(exc))


class PartitionWriter:
    """One partition's share of its slot's transaction: what was written, and the map."""

    def __init__(self, slot: SlotWriter, source_topic: str, target_topic: str, partition: int,
                 pmap: PartitionMap):
        self.slot = slot
        self.source_topic = source_topic
        self.target_topic = target_topic
        self.partition = partition
        self.pmap = pmap
        self.retired = False  # stopped or given up: dropped from the slot after its next commit
        self._produce = slot.producer.produce
        self.last_count = self.last_bytes = 0
        # Read by migrate.metrics (freshness, latency, commit duration); set once per transaction.
        self.last_first_timestamp: int | None = None
        self.last_commit_seconds = 0.0
        self.committed_at = 0.0
        self.reset_batch()

    def reset_batch(self) -> None:
        self.count = 0
        self.bytes = 0
        self.first_timestamp: int | None = None  # CreateTime (ms) of this transaction's first (oldest) record
        self.source_offsets: list[tuple[int, int]] = []  # closed source runs in this transaction: (start, length)
        self.run_start = 0
        self.run_next: int | None = None  # the open run: source offsets run_start .. run_next-1
        self.samples: dict[int, int] = {}  # index in transaction -> target offset

    @property
    def open(self) -> bool:
        """True while records of this partition are in a transaction not yet committed."""
        return self.count > 0

    def _delivered(self, index: int):
        key = (self.source_topic, self.partition)

        def callback(err, msg) -> None:
            if err is not None:
                self.slot.errors.append((key, err.name(), str(err)))
            else:
                self.samples[index] = msg.offset()
        return callback

    def write(self, message) -> None:
        """Produce one source message to the same partition of the target topic (the hot path)."""
        slot = self.slot
        if not slot.open:
            slot.begin()
        if not self.count:
            self.first_timestamp = message.timestamp()[1]
        offset = message.offset()
        if offset == self.run_next:
            self.run_next = offset + 1
        else:
            self._new_source_run(offset)
        index = self.count
        value = message.value()
        callback = self._delivered(index) if not index % SAMPLE else None
        try:
            try:
                self._produce(self.target_topic, value, message.key(), self.partition, callback,
                              timestamp=message.timestamp()[1], headers=message.headers())
            except BufferError:  # the queue is full: wait for room (the transaction may fail meanwhile)
                self._produce_waiting(value, message, callback)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._UNKNOWN_PARTITION:
                # The transaction has already failed (the target refused a record: the producer is in
                # an abortable state and refuses every later produce); the commit reports it and the
                # slot is retried.  Raising here would stop the whole mirror.  The record still counts
                # as written: its partition stays open until the slot is aborted, so an end-of-
                # partition read after it is never applied to the map as if the record were mirrored
                # (CI found a map advanced past five such records, with nothing of them mapped).
                self.slot.produce_errors.append(((self.source_topic, self.partition), exc.args[0].name(),
                                                 kafka.describe_error(exc)))
                self.count = index + 1
                slot.count += 1
                return
            # A target topic widened after this producer read its metadata (the source grew):
            # read it again, once, and produce.
            try:
                self.slot.producer.list_topics(self.target_topic, timeout=10)
                self._produce_waiting(value, message, callback)
            except KafkaException as again:
                raise WriterFailed(f"producing to {self.target_topic}[{self.partition}]: "
                                   f"{kafka.describe_error(again)}", error_names=_names(again)) from again
        self.count = index + 1
        slot.count += 1
        if value:
            self.bytes += len(value)

    def _produce_waiting(self, value, message, callback) -> None:
        """Produce, waiting for room in the producer's queue while it is full."""
        while True:
            try:
                self._produce(self.target_topic, value, message.key(), self.partition, callback,
                              timestamp=message.timestamp()[1], headers=message.headers())
                return
            except BufferError:
                self.slot.producer.poll(0.05)

    def _new_source_run(self, offset: int) -> None:
        if self.run_next is not None:
            self.source_offsets.append((self.run_start, self.run_next - self.run_start))
        self.run_start, self.run_next = offset, offset + 1

    def _source_runs(self) -> list[tuple[int, int]]:
        runs = list(self.source_offsets)
        if self.run_next is not None:
            runs.append((self.run_start, self.run_next - self.run_start))
        return runs

    def written_runs(self) -> list[Run]:
        """After a flush: check the delivery samples; this transaction's runs (source start, target start, length)."""
        key = ((self.source_topic, self.partition),)
        first = self.samples.get(0)
        if first is None:
            raise WriterFailed(f"no delivery report for the first record of {self.target_topic}[{self.partition}] "
                               "in the transaction", key)
        for index, offset in self.samples.items():
            if offset != first + index:
                raise WriterFailed(
                    f"target offsets are not contiguous within one transaction (record {index} at {offset}, "
                    f"expected {first + index}): another writer on {self.target_topic}[{self.partition}]?", key)
        runs, target = [], first
        for start, length in self._source_runs():
            runs.append((start, target, length))
            target += length
        return runs

    def extend_map(self, runs: list[Run]) -> list[MapRecord]:
        """The transaction of `runs` committed: add its pairs to the map; returns the map changes."""
        for start, target, length in runs:
            self.pmap.append_run(start, target, length)
        return self.map_changes()

    def map_records_after(self, runs: list[Run]) -> list[MapRecord]:
        """The map changes `extend_map(runs)` will make, the map left as it is (--transactions writes
        them inside the transaction, before it commits)."""
        pmap = self.pmap
        # Only the unsaved runs, and the last saved one (the first new run may extend it).
        base = max(0, min(pmap.dirty_from, len(pmap.runs) - 1))
        preview = PartitionMap(pmap.runs[base:], source_low=pmap.source_low, source_high=pmap.source_high,
                               target_high=pmap.target_high)
        preview.dirty_from, preview.head_dirty = pmap.dirty_from - base, pmap.head_dirty
        for start, target, length in runs:
            preview.append_run(start, target, length)
        return map_records(self.source_topic, self.partition, preview, self.target_topic)

    def map_changes(self) -> list[MapRecord]:
        """Map-topic records for what changed in the map since it was last saved."""
        return map_records(self.source_topic, self.partition, self.pmap, self.target_topic)


def _failing_partitions(errors: list[tuple[Key, str, str]]) -> tuple[Key, ...]:
    """The partitions a failed transaction is to blame on: those whose record the target refused
    when there are any.  Once one record is refused the transaction is in an error state and every
    later produce fails with `_STATE`, whichever partition it is for: those partitions did nothing
    wrong (measured: a healthy partition of the same slot was reported beside the refused one)."""
    refused = [key for key, name, _ in errors if name in REFUSED_ERRORS]
    return tuple(dict.fromkeys(refused or [key for key, _, _ in errors]))


def _names(exc: BaseException) -> tuple[str, ...]:
    """The librdkafka error name an exception carries, for WriterFailed.error_names."""
    err = kafka.error_of(exc)
    return (err.name(),) if err is not None else ()
