"""The bounded record sample: which offsets to read, and what the records read there use.

Cost is bounded per partition, whatever the estate's size: at most `limit` records are read
from each partition, half from its head (the oldest records) and half from its tail (what
producers write now); a partition with fewer records is read whole, and then its figures
are counted rather than extrapolated.  `SampleAccumulator` folds records into counts as
they are read and keeps only the sizes and offsets of the sample (two small arrays), so
memory grows with partitions x limit, never with the estate's size.

Reading itself goes through migrate.kafka (confluent-kafka, the mirror's client) for the
records, plus two narrower passes where one view is not enough:
- read_committed over the partitions whose sample has offset gaps, to count aborted records
  (a partition without gaps has no transaction markers, so nothing in it was aborted);
- kafka-python over the partitions whose sample carries headers, for the header names:
  librdkafka cuts a header name at its first NUL byte, so only the other client sees them whole
  (the first HEADER_SAMPLE records of the head window and the last of the tail window).
"""

from __future__ import annotations

import logging
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

from migrate import kafka
from migrate.assess.model import SIZE_BUCKETS, SizeStats, Usage
from migrate.config import ClusterProfile
from migrate.records import Record, from_message

log = logging.getLogger("migrate.assess")

DEFAULT_LIMIT = 1000
NEAR_MAX_FRACTION = 0.8  # a record this close to max.message.bytes leaves no room for growth
LOG_APPEND_TIME = 2  # confluent-kafka's TIMESTAMP_LOG_APPEND_TIME
SCHEMA_MAGIC = 0

Window = tuple[int, int]  # [start, end) offsets
# Windows hold records that exist: a fetch left waiting at a partition's end when the reader moves on
# would hold up the next window for fetch.wait.max.ms (500 ms by default, measured on Tansu).
_BOUNDED_READ = {"enable.partition.eof": True, "fetch.wait.max.ms": 10}
HEADER_SAMPLE = 100  # records per window whose header names kafka-python reads


def header_windows(windows: tuple[Window, ...]) -> list[Window]:
    """The first records of a head window and the last of a tail window (kafka-python is the slower reader)."""
    if len(windows) == 1:
        start, end = windows[0]
        return [(start, min(end, start + HEADER_SAMPLE))]
    (head_start, head_end), (tail_start, tail_end) = windows
    return [(head_start, min(head_end, head_start + HEADER_SAMPLE)), (max(tail_start, tail_end - HEADER_SAMPLE), tail_end)]


def sample_windows(low: int, high: int, limit: int) -> tuple[Window, ...]:
    """The offset windows to read: the whole partition when it fits, else head and tail halves."""
    if high <= low or limit <= 0:
        return ()
    if high - low <= limit:
        return ((low, high),)
    head = limit // 2
    tail = (high - (limit - head), high)
    return ((low, low + head), tail) if head else (tail,)


def schema_id(value: bytes | None) -> int | None:
    """The schema id of a value in Schema Registry wire format (magic 0, 4-byte big-endian id)."""
    if value is None or len(value) < 5 or value[0] != SCHEMA_MAGIC:
        return None
    return int.from_bytes(value[1:5], "big")


def record_size(record: Record) -> int:
    return (len(record.key or b"") + len(record.value or b"")
            + sum(len(name.encode()) + len(value or b"") for name, value in record.headers))


def escape_name(name: str) -> str:
    """A header name shown safely: NUL and other control characters as \\xNN."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)


def _percentile(sorted_sizes: list[int], fraction: float) -> int:
    if not sorted_sizes:
        return 0
    return sorted_sizes[min(len(sorted_sizes) - 1, int(fraction * len(sorted_sizes)))]


class SampleAccumulator:
    """Folds one topic's sampled records into counts (feed partitions one window at a time)."""

    def __init__(self, max_message_bytes: int):
        self.near_limit = int(max_message_bytes * NEAR_MAX_FRACTION)
        self.sizes = array("I")
        self.offsets: dict[int, array] = {}  # partition -> sampled offsets (read_uncommitted)
        self.offset_sizes: dict[int, array] = {}  # partition -> the size of the record at each of those offsets
        self.covered = 0
        self.gaps = 0
        self.null_keys = self.tombstones = self.with_headers = 0
        self.backwards = self.near_max = self.log_append = 0
        self.values = self.framed = 0
        self.schema_ids: set[int] = set()
        self.header_names: Counter[str] = Counter()
        self.oldest: int | None = None
        self.newest: int | None = None
        self.aborted = 0
        self.aborted_bytes = 0
        self.nul_header_names: set[str] = set()
        self._last_ts: dict[int, int] = {}

    def add_window(self, partition: int, window: Window, records: Iterable[Record]) -> int:
        """Fold the records read from one window; returns how many there were."""
        start, end = window
        self.covered += end - start
        expected, count = start, 0
        offsets = self.offsets.setdefault(partition, array("q"))
        sizes = self.offset_sizes.setdefault(partition, array("I"))
        self._last_ts.pop(partition, None)  # head and tail windows are not adjacent
        for record in records:
            count += 1
            self.gaps += max(0, record.offset - expected)
            expected = record.offset + 1
            offsets.append(record.offset)
            sizes.append(self._add(partition, record))
        self.gaps += max(0, end - expected)
        return count

    def add_aborted(self, partition: int, aborted: Iterable[int]) -> None:
        """Count the sampled records at these offsets of a partition as aborted (with their bytes)."""
        gone = set(aborted)
        for offset, size in zip(self.offsets.get(partition, ()), self.offset_sizes.get(partition, ())):
            if offset in gone:
                self.aborted += 1
                self.aborted_bytes += size

    def _add(self, partition: int, record: Record) -> int:
        size = record_size(record)
        self.sizes.append(size)
        if size >= self.near_limit:
            self.near_max += 1
        if record.key is None:
            self.null_keys += 1
        if record.value is None:
            self.tombstones += 1
        else:
            self.values += 1
            found = schema_id(record.value)
            if found is not None:
                self.framed += 1
                self.schema_ids.add(found)
        if record.headers:
            self.with_headers += 1
            self.header_names.update({name for name, _ in record.headers})
        if record.timestamp_type == LOG_APPEND_TIME:
            self.log_append += 1
        ts = record.timestamp
        if ts is not None and ts >= 0:
            last = self._last_ts.get(partition)
            if last is not None and ts < last:
                self.backwards += 1
            self._last_ts[partition] = ts
            self.oldest = ts if self.oldest is None else min(self.oldest, ts)
            self.newest = ts if self.newest is None else max(self.newest, ts)
        return size

    def usage(self) -> Usage:
        ordered = sorted(self.sizes)
        buckets = [0] * (len(SIZE_BUCKETS) + 1)
        for size in ordered:
            buckets[next((i for i, bound in enumerate(SIZE_BUCKETS) if size < bound), len(SIZE_BUCKETS))] += 1
        sizes = SizeStats(_percentile(ordered, 0.5), _percentile(ordered, 0.99), ordered[-1] if ordered else 0,
                          round(sum(ordered) / len(ordered), 1) if ordered else 0.0, tuple(buckets))
        # A value that merely starts with a zero byte is not evidence: only a topic whose every
        # sampled value carries the prefix is taken to use the registry's wire format.
        ids = tuple(sorted(self.schema_ids)) if self.values and self.framed == self.values else ()
        return Usage(
            sampled=len(self.sizes), sampled_bytes=sum(self.sizes), offsets_covered=self.covered, null_keys=self.null_keys,
            tombstones=self.tombstones, with_headers=self.with_headers,
            header_names=tuple(sorted((escape_name(n), c) for n, c in self.header_names.items())),
            nul_header_names=tuple(sorted(escape_name(n) for n in self.nul_header_names)),
            sizes=sizes, backwards_timestamps=self.backwards, near_max_bytes=self.near_max,
            log_append_time=self.log_append, offset_gaps=self.gaps, aborted=self.aborted,
            aborted_bytes=self.aborted_bytes,
            schema_framed=self.framed if ids else 0, schema_ids=ids,
            oldest_timestamp=self.oldest, newest_timestamp=self.newest)


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionWindows:
    topic: str
    partition: int
    windows: tuple[Window, ...]


def read_uncommitted(profile: ClusterProfile, plan: list[PartitionWindows]) -> Iterator[tuple[PartitionWindows, Window, list[Record]]]:
    """Every window's records as any reader sees them (aborted ones included), through migrate.kafka."""
    client = kafka.consumer(profile, **_BOUNDED_READ, **{"isolation.level": "read_uncommitted"})
    try:
        for item in plan:
            for window in item.windows:
                messages = kafka.iter_partition(client, profile, item.topic, item.partition, *window,
                                                batch=window[1] - window[0])
                yield item, window, [from_message(m) for m in messages]
    finally:
        client.close()


def timestamps_at(profile: ClusterProfile, positions: list[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
    """The timestamp of the record at each (topic, partition, offset): one record read per position.

    A position on a transaction marker has no record and is left out.
    """
    if not positions:
        return {}
    client = kafka.consumer(profile, **_BOUNDED_READ, **{"isolation.level": "read_uncommitted"})
    out: dict[tuple[str, int, int], int] = {}
    try:
        for topic, partition, offset in positions:
            for message in kafka.iter_partition(client, profile, topic, partition, offset, offset + 1, batch=1):
                out[(topic, partition, offset)] = message.timestamp()[1]
    finally:
        client.close()
    return out


def aborted_offsets(profile: ClusterProfile, plan: list[PartitionWindows],
                    uncommitted: Mapping[tuple[str, int], Iterable[int]]) -> dict[tuple[str, int], list[int]]:
    """Per partition, the sampled offsets a read_committed reader does not get (aborted records).

    Windows are clipped at the last stable offset: a transaction still open is not aborted.
    """
    if not plan:
        return {}
    stable = kafka.partition_ends(profile, [(p.topic, p.partition) for p in plan], isolation="read_committed")
    client = kafka.consumer(profile, **_BOUNDED_READ, **{"isolation.level": "read_committed"})
    out: dict[tuple[str, int], list[int]] = {}
    try:
        for item in plan:
            key = (item.topic, item.partition)
            lso = stable[key].high
            seen: set[int] = set()
            clipped = [(start, min(end, lso)) for start, end in item.windows if start < lso]
            for start, end in clipped:
                seen.update(m.offset() for m in kafka.iter_partition(client, profile, item.topic, item.partition,
                                                                     start, end, batch=end - start))
            inside = [o for o in uncommitted.get(key, ()) if any(s <= o < e for s, e in clipped)]
            out[key] = [o for o in inside if o not in seen]
    finally:
        client.close()
    return out


def header_names_kafka_python(profile: ClusterProfile, plan: list[PartitionWindows],
                              timeout: float = 10.0) -> dict[str, set[str]]:
    """Header names as kafka-python reads them (whole, NUL bytes included) over the windows.

    No group: kafka-python with group_id=None never joins or commits.
    """
    from kafka import KafkaConsumer, TopicPartition

    from migrate.probe.kafka_python_client import settings

    names: dict[str, set[str]] = {}
    if not plan:
        return names
    consumer = KafkaConsumer(**settings(profile), group_id=None, enable_auto_commit=False,
                             isolation_level="read_uncommitted", fetch_max_wait_ms=10,
                             max_partition_fetch_bytes=1 << 20)
    try:
        for item in plan:
            tp = TopicPartition(item.topic, item.partition)
            consumer.assign([tp])
            for start, end in header_windows(item.windows):
                consumer.seek(tp, start)
                last_progress, position = time.monotonic(), start
                while position < end:
                    batch = consumer.poll(timeout_ms=100, max_records=end - start).get(tp, [])
                    names.setdefault(item.topic, set()).update(
                        name for r in batch if r.offset < end for name, _ in r.headers or ())
                    if consumer.position(tp) > position:
                        last_progress, position = time.monotonic(), consumer.position(tp)
                    elif time.monotonic() - last_progress > timeout:
                        log.warning("kafka-python made no progress reading %s[%d] at %d; header names of the "
                                    "rest of its sample not checked", item.topic, item.partition, position)
                        break
    finally:
        consumer.close()
    return names
