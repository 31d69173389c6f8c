"""The writer of one target partition: the only thing that produces mirrored records.

Each writer owns a transactional producer whose transactional.id is derived from the
mirror and the target partition.  Initialising it fences every earlier writer of that
partition (a zombie worker, a worker that lost the partition in a rebalance), and aborts
whatever such a writer left open, before reconciliation reads the target's tail.  Records
are written in short transactions; after each commit the pairs (source offset, target
offset) are added to the partition's map.

Target offsets come from delivery reports on the first record of each transaction and on
every SAMPLE-th record after it: within one transaction of the only writer of a partition,
offsets are contiguous, and the samples check that they really are.  A gap means some
other writer got in: the transaction is aborted and the partition reconciled again.

With `transactions=True` the map entries are produced to the map topic inside the same
transaction, so data and map commit together on targets whose transactions work.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.topic import map_records

log = logging.getLogger("migrate.mirror")

SAMPLE = 1024


REFUSED = ("MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "MESSAGE_TOO_LARGE", "INVALID_RECORD")


class WriterFailed(Exception):
    """This partition's writer cannot go on; the engine reconciles the partition again."""

    @property
    def refused(self) -> bool:
        """True when the target refused a record itself (retrying cannot help until it is reconfigured)."""
        return any(code in str(self) for code in REFUSED)


class PartitionWriter:
    def __init__(self, mirror: str, target: ClusterProfile, source_topic: str, target_topic: str,
                 partition: int, pmap: PartitionMap, *, compression: str = "none",
                 map_topic: str | None = None, transactions: bool = False, fencing: bool = True):
        self.source_topic = source_topic
        self.target_topic = target_topic
        self.partition = partition
        self.pmap = pmap
        self.map_topic = map_topic
        self.transactions = transactions
        self.fencing = fencing
        settings = {
            "compression.type": compression,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.kbytes": 65536,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 60_000,
        }
        if fencing:
            settings["transactional.id"] = f"migrate.{mirror}.{target_topic}.{partition}"
            settings["transaction.timeout.ms"] = 60_000
        self.producer = kafka.producer(target, **settings)
        self._produce = self.producer.produce
        self.open = False
        self.last_count = self.last_bytes = 0
        # Read by migrate.metrics (freshness, latency, commit duration); set once per transaction.
        self.last_first_timestamp: int | None = None
        self.last_commit_seconds = 0.0
        self.committed_at = 0.0
        self._reset_batch()

    def _reset_batch(self) -> None:
        self.count = 0
        self.bytes = 0
        self.started_at = 0.0
        self.first_timestamp: int | None = None  # CreateTime (ms) of the transaction's first (oldest) record
        self.source_offsets: list[tuple[int, int]] = []  # closed source runs in this transaction: (start, length)
        self.run_start = 0
        self.run_next: int | None = None  # the open run: source offsets run_start .. run_next-1
        self.first_target: int | None = None
        self.samples: dict[int, int] = {}  # index in transaction -> target offset
        self.errors: list[str] = []
        self.produce_error: str | None = None  # a produce refused because the transaction had failed

    def fence(self, timeout: float = 30.0) -> None:
        if not self.fencing:
            return
        try:
            self.producer.init_transactions(timeout)
        except KafkaException as exc:
            raise WriterFailed(f"initialising the transactional producer: {kafka.describe_error(exc)}") from exc

    def _delivered(self, index: int):
        def callback(err, msg) -> None:
            if err is not None:
                self.errors.append(str(err))
            else:
                self.samples[index] = msg.offset()
        return callback

    def _begin(self) -> None:
        if self.fencing:
            self.producer.begin_transaction()
        self.open = True
        self.started_at = time.monotonic()

    def write(self, message) -> None:
        """Produce one source message to the same partition of the target topic (the hot path)."""
        if not self.open:
            self._begin()
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
            self._produce(self.target_topic, value, message.key(), self.partition, callback,
                          timestamp=message.timestamp()[1], headers=message.headers())
        except BufferError:
            self._produce_waiting(value, message, callback)
        except KafkaException as exc:
            # The transaction has already failed (the target refused a record: the producer is
            # in an abortable state and refuses every later produce); the commit reports it and
            # the partition is retried.  Raising here would stop the whole mirror.
            self.produce_error = kafka.describe_error(exc)
        self.count = index + 1
        if value:
            self.bytes += len(value)

    def _produce_waiting(self, value, message, callback) -> None:
        while True:
            self.producer.poll(0.05)
            try:
                self._produce(self.target_topic, value, message.key(), self.partition, callback,
                              timestamp=message.timestamp()[1], headers=message.headers())
                return
            except BufferError:
                continue

    def _new_source_run(self, offset: int) -> None:
        if self.run_next is not None:
            self.source_offsets.append((self.run_start, self.run_next - self.run_start))
        self.run_start, self.run_next = offset, offset + 1

    def _source_runs(self) -> list[tuple[int, int]]:
        runs = list(self.source_offsets)
        if self.run_next is not None:
            runs.append((self.run_start, self.run_next - self.run_start))
        return runs

    def due(self, now: float, interval: float, max_records: int) -> bool:
        return self.open and (self.count >= max_records or now - self.started_at >= interval)

    def commit(self, timeout: float = 60.0) -> list[tuple[bytes, bytes]]:
        """Commit the open transaction and extend the map; returns map records still to publish."""
        if not self.open:
            self.last_count = self.last_bytes = 0
            return []
        began = time.monotonic()
        try:
            remaining = self.producer.flush(timeout)
        except (KafkaException, SystemError) as exc:
            # SystemError: a fenced producer can fail inside a delivery callback during flush
            raise WriterFailed(f"flushing: {kafka.describe_error(exc)}") from exc
        if remaining or self.errors or self.produce_error:
            # the delivery errors first: they say why (e.g. MSG_SIZE_TOO_LARGE), the produce error only that it failed
            errors = self.errors[:3] + ([self.produce_error] if self.produce_error else [])
            raise WriterFailed(f"{remaining} records undelivered; errors: {'; '.join(errors)}")
        first = self.samples.get(0)
        if first is None:
            raise WriterFailed("no delivery report for the first record of the transaction")
        for index, offset in self.samples.items():
            if offset != first + index:
                raise WriterFailed(
                    f"target offsets are not contiguous within one transaction (record {index} at {offset}, "
                    f"expected {first + index}): another writer on {self.target_topic}[{self.partition}]?"
                )
        pending = self._extend_map(first)
        if self.transactions and self.map_topic:
            for key, value in pending:
                self.producer.produce(self.map_topic, value, key, partition=0)
            pending = []
        try:
            if self.fencing:
                self.producer.commit_transaction(timeout)
        except (KafkaException, SystemError) as exc:
            raise WriterFailed(f"committing the transaction: {kafka.describe_error(exc)}") from exc
        self.open = False
        self.last_count, self.last_bytes = self.count, self.bytes
        self.last_first_timestamp, self.committed_at = self.first_timestamp, time.time()
        self.last_commit_seconds = time.monotonic() - began
        self._reset_batch()
        return pending

    def _extend_map(self, first_target: int) -> list[tuple[bytes, bytes]]:
        target = first_target
        for start, length in self._source_runs():
            self.pmap.append_run(start, target, length)
            target += length
        return self.map_changes()

    def map_changes(self) -> list[tuple[bytes, bytes]]:
        """Map-topic records for what changed in the map since it was last saved."""
        return map_records(self.source_topic, self.partition, self.pmap, self.target_topic)

    def abort(self) -> None:
        """Drop the open transaction (its records were never mapped; reconciliation decides)."""
        if self.open and self.fencing:
            try:
                self.producer.abort_transaction(10)
            except KafkaException as exc:
                log.debug("abort on %s[%d]: %s", self.target_topic, self.partition, kafka.describe_error(exc))
        self.open = False
        self._reset_batch()

    def poll(self) -> None:
        self.producer.poll(0)

    def close(self) -> None:
        self.producer.flush(5)
