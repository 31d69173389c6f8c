"""Reading one side of a comparison: a partition's records in batches, through assign-only consumers.

Each side is streamed with its own consumer (no group joins, no commits on the user's
clusters), partition by partition in batches from a small prefetch queue, so memory stays
bounded whatever the volume.
"""

from __future__ import annotations

from typing import Iterator

import xxhash
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.records import from_message
from migrate.validation.spec import ValidateSpec
from migrate.validators.digest import DigestOptions, encode

READ_BATCH = 2000


NO_PROGRESS_TIMEOUT = 60.0
# Small prefetch queues keep memory flat; a window re-read needs even less.  Some platforms
# (noida-db 0.2.3, measured) ignore the Fetch size limits and answer with everything from the
# fetch offset to the end of the partition, which librdkafka refuses above
# receive.message.max.bytes: allow the largest response rather than stall (memory then follows
# that platform's response size, not ours).
READER_SETTINGS = {"enable.partition.eof": True, "auto.offset.reset": "earliest",
                   "queued.max.messages.kbytes": 16384, "fetch.max.bytes": 8 << 20,
                   "max.partition.fetch.bytes": 4 << 20, "fetch.wait.max.ms": 50,
                   "receive.message.max.bytes": 2_147_483_647,
                   # noida-db also ignores the Fetch max wait: a consumer whose fetcher is at the
                   # end of a partition sends empty fetches in a busy loop (measured: 0.17 CPU-s per
                   # second in the client, more in the broker).  Backing off while enough is queued
                   # stops that loop for all but the last few thousand records of a partition.
                   "queued.min.messages": 20000, "fetch.queue.backoff.ms": 20}
REREAD_SETTINGS = {**READER_SETTINGS, "queued.max.messages.kbytes": 2048, "max.partition.fetch.bytes": 1 << 20,
                   "fetch.max.bytes": 1 << 20}


def read_batches(client: Consumer, profile: ClusterProfile, topic: str, partition: int, lo: int,
                 hi: int | None, batch: int = READ_BATCH) -> Iterator[list]:
    """Lists of messages of one partition with offsets in [lo, hi) (hi None: up to the current end).

    Ends early at end-of-partition: a partition that shrank since its end was read (a broker
    that lost data) yields what it still has, and the comparers report the rest as missing.
    """
    if hi is not None and lo >= hi:
        return
    kafka.know_topic(client, topic)
    client.assign([TopicPartition(topic, partition, lo)])
    try:
        yield from _batches(client, profile, topic, partition, hi, batch)
    finally:
        # A consumer left assigned at the end of a partition keeps fetching (busily, on a
        # platform that ignores the Fetch max wait): stop it as soon as the range is read.
        try:
            client.unassign()
        except (KafkaException, RuntimeError):
            pass


def _batches(client: Consumer, profile: ClusterProfile, topic: str, partition: int, hi: int | None,
             batch: int) -> Iterator[list]:
    reading = {(topic, partition)}
    try:
        # Most partitions of an estate hold less than a batch: read_assigned's short consume() wait
        # matters here (0.5 s cost 80 s at 200 partitions).
        for messages in kafka.read_assigned(client, profile, reading, timeout=NO_PROGRESS_TIMEOUT, batch=batch):
            if type(messages) is list and messages and (hi is None or kafka.offset_of(messages[-1]) + 1 < hi):
                yield messages  # records only, all below hi (see read_assigned): taken whole
                continue
            good: list[Message] = []
            for message in messages:
                if message.error() is not None:  # end of partition
                    if good:
                        yield good
                    return
                offset = kafka.offset_of(message)
                if hi is not None and offset >= hi:
                    if good:
                        yield good
                    return
                good.append(message)
                if hi is not None and offset + 1 >= hi:
                    yield good
                    return
            if good:
                yield good
    except KafkaException as exc:  # from consume() itself
        raise kafka.fail(profile, f"reading {topic}[{partition}]", exc) from exc


def read_partition(client: Consumer, profile: ClusterProfile, topic: str, partition: int, lo: int,
                   hi: int | None, batch: int = READ_BATCH) -> Iterator:
    """Messages of one partition with offsets in [lo, hi); see read_batches."""
    for messages in read_batches(client, profile, topic, partition, lo, hi, batch):
        yield from messages


def _items(batches: Iterator[list], options: DigestOptions, with_records: bool, digest_if=None) -> Iterator[tuple]:
    """Messages as comparer items: (offset, digest, timestamp, key, record or None)."""
    digest = xxhash.xxh3_128_digest
    if digest_if is None and not with_records:  # the hot path of a validation: kept flat
        for messages in batches:
            for m in messages:
                ts = m.timestamp()[1]
                key = m.key()
                yield (m.offset(), digest(encode(key, m.value(), m.headers() or (), ts, options)), ts, key, None)
        return
    for messages in batches:
        for m in messages:
            ts = m.timestamp()[1]
            key = m.key()
            offset = m.offset()
            if digest_if is None or digest_if(offset, ts):
                d = digest(encode(key, m.value(), m.headers() or (), ts, options))
            else:
                d = b""
            yield (offset, d, ts, key, from_message(m) if with_records else None)


class _Readers:
    """The consumers of one run, created on first use and closed together."""

    def __init__(self, spec: ValidateSpec):
        self.spec = spec
        self._clients: dict[tuple[str, str], Consumer] = {}

    def get(self, side: str, purpose: str = "main") -> Consumer:
        key = (side, purpose)
        if key not in self._clients:
            profile = self.spec.source if side == "source" else self.spec.target
            settings = READER_SETTINGS if purpose == "main" else REREAD_SETTINGS
            self._clients[key] = kafka.consumer(profile, **settings, **{"isolation.level": "read_committed"})
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            try:
                client.close()
            except (KafkaException, RuntimeError):
                pass
        self._clients.clear()
