"""Client-side timestamp lookups, for the approximate fallback of offset translation only.

Used when a committed offset is older than anything the map knows (`--fallback timestamp`).
Brokers' ListOffsets-by-timestamp cannot be trusted on every platform (Tansu compares batch
write times and answers 0 past the end), so the search reads record timestamps itself:
a binary search over offsets, each probe a seek and a one-record fetch.  It assumes
timestamps grow with offsets, which is why every answer built on it is marked approximate.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, TopicPartition

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import KafkaOperationError

PROBE_TIMEOUT = 10.0


class _Reader:
    def __init__(self, profile: ClusterProfile, topic: str, partition: int):
        self.profile = profile
        self.topic = topic
        self.partition = partition
        ends = kafka.partition_ends(profile, [(topic, partition)])[(topic, partition)]
        self.low, self.high = ends.low, ends.high
        self.consumer = kafka.consumer(profile, **{"enable.partition.eof": True, "auto.offset.reset": "earliest"})

    def first_at_or_after(self, offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first readable record at or after offset, None at the end."""
        offset = max(offset, self.low)
        if offset >= self.high:  # some platforms never answer a fetch past the end
            return None
        self.consumer.assign([TopicPartition(self.topic, self.partition, offset)])
        while True:
            message = self.consumer.poll(PROBE_TIMEOUT)
            if message is None:
                raise KafkaOperationError(
                    f'no answer reading {self.topic}[{self.partition}] at {offset} on cluster '
                    f'"{self.profile.name}" within {PROBE_TIMEOUT:.0f}s')
            error = message.error()
            if error is None:
                return message.offset(), message.timestamp()[1]
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            if error.fatal() or not error.retriable():
                raise KafkaOperationError(
                    f'reading {self.topic}[{self.partition}] on cluster "{self.profile.name}" failed: '
                    f"{error.str()}")

    def close(self) -> None:
        self.consumer.close()


def timestamp_at(profile: ClusterProfile, topic: str, partition: int, offset: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the record a consumer at `offset` would read first, if any."""
    reader = _Reader(profile, topic, partition)
    try:
        return reader.first_at_or_after(offset)
    finally:
        reader.close()


def offset_for_timestamp(profile: ClusterProfile, topic: str, partition: int, timestamp: int) -> int:
    """The offset of the first record with a timestamp at or after `timestamp` (the end if none)."""
    reader = _Reader(profile, topic, partition)
    try:
        lo, hi, answer = reader.low, reader.high, reader.high
        while lo < hi:
            mid = (lo + hi) // 2
            found = reader.first_at_or_after(mid)
            if found is None:
                hi = mid
            elif found[1] >= timestamp:
                answer = found[0]
                hi = mid
            else:
                lo = found[0] + 1
        return answer
    finally:
        reader.close()
