"""Client-side lookups in a partition's records that offset translation needs.

`has_records` tells whether a span of offsets holds any committed record (a span of only
transaction markers and aborted records translates like its end, exactly).  The timestamp
lookups serve the approximate fallback only: used when a committed offset is older than anything the map knows (`--fallback timestamp`).
Brokers' ListOffsets-by-timestamp cannot be trusted on every platform (Tansu compares batch
write times and answers 0 past the end), so the search reads record timestamps itself:
a binary search over offsets, each probe a seek and a one-record fetch.  It assumes
timestamps grow with offsets, which is why every answer built on it is marked approximate.
"""

from __future__ import annotations

import time

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
        kafka.know_topic(self.consumer, topic)  # its first fetch at once, not at the next topic scan

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
                return kafka.offset_of(message), message.timestamp()[1]
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            failure = kafka.read_failure(self.profile, f"{self.topic}[{self.partition}]", error)
            if failure is not None:
                raise failure

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


def has_records(profile: ClusterProfile, topic: str, partition: int, start: int, stop: int) -> bool | None:
    """Whether [start, stop) holds a record a read_committed consumer would read.

    None when that cannot be known yet: part of the span lies past the last stable offset
    (an open transaction may still commit records there).
    """
    reader = _Reader(profile, topic, partition)
    try:
        if stop > reader.high:
            return None
        found = reader.first_at_or_after(start)
        return found is not None and found[0] < stop
    finally:
        reader.close()


Span = tuple[str, int, int, int]  # topic, partition, start, stop


def spans_with_records(profile: ClusterProfile, spans: list[Span], timeout: float = 30.0) -> dict[Span, bool | None]:
    """`has_records` for many spans at once: one end lookup and one reader for all of them."""
    spans = list(dict.fromkeys(spans))
    if not spans:
        return {}
    ends = kafka.partition_ends(profile, {(t, p) for t, p, _, _ in spans})
    out: dict[Span, bool | None] = {}
    todo: dict[tuple[str, int], list[Span]] = {}
    for span in spans:
        topic, partition, start, stop = span
        end = ends[(topic, partition)]
        if stop > end.high:
            out[span] = None
        elif max(start, end.low) >= stop:
            out[span] = False
        else:
            todo.setdefault((topic, partition), []).append(span)
    # one read per partition from its earliest span start; a partition's first record answers all
    reader = kafka.consumer(profile, **{"enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        starts = {key: max(ends[key].low, min(s[2] for s in group)) for key, group in todo.items()}
        pending = dict(todo)
        seen: dict[tuple[str, int], list[int]] = {key: [] for key in todo}
        reader.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])
        limit = {key: max(s[3] for s in group) for key, group in todo.items()}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise KafkaOperationError(f'reading spans on cluster "{profile.name}" did not finish within '
                                          f"{timeout:.0f}s")
            for message in reader.consume(1000, timeout=0.2):
                key = (message.topic(), message.partition())
                if key not in pending:
                    continue
                error = message.error()
                if error is None:
                    offset = kafka.offset_of(message)
                    seen[key].append(offset)
                    done = offset + 1 >= limit[key]
                elif error.code() == KafkaError._PARTITION_EOF:
                    done = True
                elif (failure := kafka.read_failure(profile, f"{key[0]}[{key[1]}]", error)) is not None:
                    raise failure
                else:
                    continue
                if done:
                    for span in pending.pop(key):
                        out[span] = any(span[2] <= o < span[3] for o in seen[key])
    finally:
        reader.close()
    return out
