"""The one place that builds confluent-kafka clients and turns their errors into ours.

Everything the tool does on a cluster goes through a client made here, so that profile
settings, safe defaults, logging and redaction are applied the same way everywhere.
It also holds the small Kafka facts that several parts need and that some platforms get
wrong, done the robust way: partition ends are read from a Fetch response (the high
watermark it carries) rather than trusted from ListOffsets, which some Kafka-compatible
platforms answer wrongly after multi-record batches.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from migrate.config import ClusterProfile, redact_text
from migrate.errors import KafkaOperationError
from migrate.kafka.client_errors import describe_error, error_of, fail, is_fatal, read_failure
from migrate.kafka.clients import admin, consumer, producer
from migrate.kafka.metadata import (REACH_TIMEOUT, AdminSession, TopicInfo, check_reachable, list_topics, wait_for_topic,
                                    wait_for_topics)
from migrate.kafka.parallel import at_once
from migrate.kafka.topics import (add_partitions, create_topic, create_topics, delete_topics, topic_config_entries,
                                  topic_config_entries_many, topic_configs)

# Names defined in the package's modules, re-exported here.
__all__ = ["REACH_TIMEOUT", "AdminSession", "TopicInfo", "add_partitions", "admin", "at_once", "check_reachable",
           "consumer", "create_topic", "create_topics", "delete_topics", "describe_error", "error_of", "fail",
           "is_fatal", "list_topics", "producer", "read_failure", "topic_config_entries", "topic_config_entries_many",
           "topic_configs", "wait_for_topic", "wait_for_topics"]

ENDS_CHUNK = 250  # partitions per reader in partition_ends
ENDS_PARALLEL = 4  # readers at once in partition_ends


# --- partition ends ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionEnds:
    low: int
    high: int  # read_uncommitted: high watermark; read_committed: last stable offset


def partition_ends(
    profile: ClusterProfile,
    partitions: Iterable[tuple[str, int]],
    isolation: str = "read_committed",
    timeout: float = 30.0,
) -> dict[tuple[str, int], PartitionEnds]:
    """Ends of each partition, taken from Fetch responses rather than from ListOffsets.

    ListOffsets LATEST is only used as a hint of where to start reading; the answer is the
    offset at which the broker reports end-of-partition, which is right on every platform
    we know (and at the last stable offset under read_committed).
    """
    wanted = list(dict.fromkeys(partitions))
    # Bounded chunks: a librdkafka consumer assigned 600+ partitions of some platforms
    # (Tansu 0.6.0, measured) stops getting Fetch answers, and memory stays bounded.  A chunk
    # mostly waits for its answers, so up to ENDS_PARALLEL chunks are read at once.
    chunks = [wanted[first:first + ENDS_CHUNK] for first in range(0, len(wanted), ENDS_CHUNK)]
    ends: dict[tuple[str, int], PartitionEnds] = {}
    for chunk_ends in at_once([functools.partial(_partition_ends, profile, chunk, isolation, timeout)
                               for chunk in chunks], ENDS_PARALLEL):
        ends.update(chunk_ends)
    return ends


def _partition_ends(profile: ClusterProfile, wanted: list[tuple[str, int]], isolation: str,
                    timeout: float) -> dict[tuple[str, int], PartitionEnds]:
    client = consumer(profile, **{"enable.partition.eof": True, "isolation.level": isolation,
                                  "auto.offset.reset": "earliest", "fetch.max.bytes": 1 << 20,
                                  "fetch.wait.max.ms": 20,
                                  "max.partition.fetch.bytes": 1 << 18})
    try:
        lows: dict[tuple[str, int], int] = {}
        starts = []
        for topic, partition in wanted:
            try:
                low, high_hint = client.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            except KafkaException as exc:
                raise fail(profile, f"reading offsets of {topic}[{partition}]", exc) from exc
            lows[(topic, partition)] = low
            starts.append(TopicPartition(topic, partition, max(low, high_hint - 1)))
        client.assign(starts)
        ends: dict[tuple[str, int], PartitionEnds] = {}
        deadline = time.monotonic() + timeout
        while len(ends) < len(wanted):
            if time.monotonic() > deadline:
                missing = [f"{t}[{p}]" for t, p in wanted if (t, p) not in ends]
                raise KafkaOperationError(
                    f'cluster "{profile.name}" did not report the end of {", ".join(missing[:5])} '
                    f"within {timeout:.0f}s"
                )
            # A short timeout: consume() waits for the whole timeout unless the batch fills up.
            for message in client.consume(10000, timeout=0.05):
                error = message.error()
                key = (message.topic(), message.partition())
                if error is None or key in ends:
                    continue
                if error.code() == KafkaError._PARTITION_EOF:
                    eof = key_of(message)
                    ends[eof] = PartitionEnds(lows[eof], offset_of(message))
                elif (failure := read_failure(profile, f"{key[0]}[{key[1]}]", error)) is not None:
                    raise failure
        return ends
    finally:
        client.close()


# --- reading partitions ------------------------------------------------------------------------

Key = tuple[str, int]


def key_of(message: Message) -> Key:
    """(topic, partition) of a record or end-of-partition event read by a consumer.

    The stubs say Optional (a client-level error has neither); librdkafka sets both on these."""
    return cast(Key, (message.topic(), message.partition()))


def offset_of(message: Message) -> int:
    """The offset of a record or end-of-partition event (the end) read by a consumer (set on both)."""
    return cast(int, message.offset())


def _names(keys: Iterable[Key]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in list(keys)[:5])


def read_assigned(client: Consumer, profile: ClusterProfile, reading: set[Key], *, timeout: float, batch: int,
                  starts: Mapping[Key, int] | None = None) -> Iterator[Iterable[Message]]:
    """The records and end-of-partition events of an assigned consumer, one iterator per consume() call.

    The one read loop: the caller assigns `client` (enable.partition.eof on) and holds the policy
    of when a partition is done, by discarding it from `reading` (the loop ends when `reading` is
    empty) or by no longer iterating.  Each inner iterator yields the records of partitions in
    `reading` and their end-of-partition events (error code _PARTITION_EOF: the offset is the
    end); iterate it before asking for the next.  Anything of a partition the caller discarded is
    dropped.  Other consumer errors are classified here, in order: with `starts`, an
    offset-out-of-range names the offset the read started from; a fatal or non-retriable error
    raises KafkaOperationError naming the cluster and partition; retriable ones are skipped.
    Raises KafkaOperationError when consume() brings nothing for `timeout` seconds.  Exceptions
    of consume() itself propagate unchanged.  When one partition is assigned and a batch holds
    only its records (no event, no error), the inner iterator is consume()'s list itself, so a
    caller may take it whole.
    """
    assigned = set(reading)
    last_progress = time.monotonic()
    while reading:
        # A short wait: consume() waits out its whole timeout unless the batch fills up.
        messages = client.consume(batch, timeout=0.05)
        if messages:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > timeout:
            raise KafkaOperationError(f'reading {_names(reading)} on cluster "{profile.name}" made no progress '
                                      f"for {timeout:.0f}s")
        yield _classified(messages, profile, reading, assigned, starts)


def _classified(messages: list[Message], profile: ClusterProfile, reading: set[Key], assigned: set[Key],
                starts: Mapping[Key, int] | None) -> Iterable[Message]:
    # The common case of a one-partition read, taken without a look at each record's partition:
    # still reading it, and no error or end-of-partition event in the batch (an assign-only
    # consumer returns records of assigned partitions only).  Each batch a validation reads.
    if len(assigned) == 1 and reading and not [m for m in messages if m.error() is not None]:
        return messages
    return _checked(messages, profile, reading, assigned, starts)


def _checked(messages: list[Message], profile: ClusterProfile, reading: set[Key], assigned: set[Key],
             starts: Mapping[Key, int] | None) -> Iterator[Message]:
    for message in messages:
        key = (message.topic(), message.partition())
        error = message.error()
        if error is None or error.code() == KafkaError._PARTITION_EOF:
            if key in reading:
                yield message
            continue
        if key in assigned:
            if key not in reading:
                continue  # a partition the caller is done with
            if (starts is not None and key in starts
                    and error.code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE)):
                raise KafkaOperationError(f'{key[0]}[{key[1]}] on cluster "{profile.name}": offset {starts[key]} '
                                          f"is out of range ({redact_text(error.str())})")
        # An error of no partition read (none known for assign-only consumers) names those being read.
        failure = read_failure(profile, f"{key[0]}[{key[1]}]" if key in assigned else _names(reading), error)
        if failure is not None:
            raise failure


def read_ranges(profile: ClusterProfile, ranges: Mapping[tuple[str, int], tuple[int, int]],
                isolation: str = "read_committed", timeout: float = 60.0, eof_ends: bool = False,
                settings: Mapping[str, object] | None = None) -> dict[tuple[str, int], list]:
    """The messages of many partitions, each from `start` to `end` (exclusive), read together.

    One assignment per chunk of ENDS_CHUNK partitions (see partition_ends): a consumer that
    reads one partition after another waits about a second for each new assignment's first
    fetch (librdkafka 2.x, measured on both platforms), one that holds many does not.  A
    partition is done at its end or at end-of-partition past it (with `eof_ends`, at any
    end-of-partition: a partition that shrank yields what it still has).  Raises
    KafkaOperationError when a chunk makes no progress for `timeout` seconds.
    """
    wanted = {key: span for key, span in ranges.items() if span[0] < span[1]}
    out: dict[tuple[str, int], list] = {key: [] for key in ranges}
    keys = list(wanted)
    for first in range(0, len(keys), ENDS_CHUNK):
        chunk = keys[first:first + ENDS_CHUNK]
        client = consumer(profile, **{**(settings or {}), "enable.partition.eof": True, "isolation.level": isolation,
                                      "fetch.wait.max.ms": 20})
        try:
            client.assign([TopicPartition(t, p, wanted[(t, p)][0]) for t, p in chunk])
            pending = set(chunk)
            for messages in read_assigned(client, profile, pending, timeout=timeout, batch=5000):
                for message in messages:
                    key = key_of(message)
                    offset = offset_of(message)
                    end = wanted[key][1]
                    if message.error() is not None:  # end of partition
                        if eof_ends or offset >= end:
                            pending.discard(key)
                        continue
                    if offset < end:
                        out[key].append(message)
                    if offset + 1 >= end:
                        pending.discard(key)
        finally:
            client.close()
    return out


def iter_partition(client: Consumer, profile: ClusterProfile, topic: str, partition: int, start: int, end: int,
                   timeout: float = 60.0, batch: int = 2000):
    """Yield the messages of one partition from `start` until offset `end` (exclusive).

    `client` is a consumer made by `consumer(...)` with enable.partition.eof on; it is
    re-assigned to this partition.  Stops at `end` or at end-of-partition past it, and
    raises KafkaOperationError when no progress is made for `timeout` seconds.
    """
    if start >= end:
        return
    client.assign([TopicPartition(topic, partition, start)])
    key = (topic, partition)
    for messages in read_assigned(client, profile, {key}, timeout=timeout, batch=batch, starts={key: start}):
        for message in messages:
            offset = offset_of(message)
            if message.error() is not None:  # end of partition
                if offset >= end:
                    return
                continue
            if offset >= end:
                return
            yield message
            if offset + 1 >= end:
                return


def read_log(profile: ClusterProfile, topic: str, start: int | None = None, timeout: float = 60.0
             ) -> tuple[list[tuple[bytes, bytes | None]], int | None]:
    """(key, value) of partition 0 of a topic from `start` (the log start when None) to the end
    seen when the read began, and that end (None when the topic does not exist)."""
    if topic not in list_topics(profile):
        return [], None
    end = partition_ends(profile, [(topic, 0)], isolation="read_uncommitted")[(topic, 0)]
    begin = end.low if start is None else max(start, end.low)
    records: list[tuple[bytes, bytes | None]] = []
    if end.high <= begin:
        return records, end.high
    reader = consumer(profile, **{"isolation.level": "read_uncommitted", "enable.partition.eof": True})
    try:
        for message in iter_partition(reader, profile, topic, 0, begin, end.high, timeout=timeout, batch=5000):
            records.append((message.key(), message.value()))
    finally:
        reader.close()
    return records, end.high


def read_compacted(profile: ClusterProfile, topic: str, timeout: float = 60.0) -> dict[bytes, bytes | None]:
    """The latest value of every key of a one-partition topic (our compacted state topics)."""
    return dict(read_log(profile, topic, timeout=timeout)[0])
