"""Bounded reads: offset ranges of many partitions, one partition up to an offset, a state topic.

Each read has an end known before it starts and stops there (or at end-of-partition past
it), through the one read loop (`read_assigned`) and consumers made by `consumer(...)`.  A
read that makes no progress for its timeout raises KafkaOperationError.
"""

from __future__ import annotations

from typing import Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from migrate.config import ClusterProfile
from migrate.kafka.clients import consumer
from migrate.kafka.ends import ENDS_CHUNK, partition_ends
from migrate.kafka.metadata import list_topics
from migrate.kafka.read_loop import key_of, offset_of, read_assigned

def read_ranges(profile: ClusterProfile, ranges: Mapping[tuple[str, int], tuple[int, int]],
                isolation: str = "read_committed", timeout: float = 60.0, eof_ends: bool = False,
                settings: Mapping[str, object] | None = None) -> dict[tuple[str, int], list]:
    """The messages of many partitions, each from `start` to `end` (exclusive), read together.

    One assignment per chunk of ENDS_CHUNK partitions (see partition_ends), its topics' metadata
    read first (know_topic: without it, the first fetch of a topic new to the client waits up to a
    second, librdkafka 2.x, measured on both platforms).  A
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
            topics = {t for t, _ in chunk}
            know_topic(client, topics.pop() if len(topics) == 1 else None)
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
    know_topic(client, topic)
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



def know_topic(client: Consumer, topic: str | None) -> None:
    """Put the topic (None: every topic) in the client's metadata cache before it is assigned.

    librdkafka fetches a partition of a topic it has no metadata for only after its next topic
    scan, up to a second later (measured: 1.0 s for each new topic read by migrate assess's
    sampling, on noida-db; another partition of a topic already read took 10-50 ms).  One
    Metadata request for the topic costs a round trip; a failed one leaves the slow path.  A
    client still assigned a partition of the topic has it cached: no request (reads of window
    after window, or position after position, of one topic).
    """
    if topic is not None and any(tp.topic == topic for tp in client.assignment()):
        return
    try:
        client.list_topics(topic, timeout=10)
    except KafkaException:
        pass


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

