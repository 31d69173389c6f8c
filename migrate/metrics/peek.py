"""The first unmirrored record and the end of partitions the mirror is not fetching.

A partition that waits for a retry (or stopped for good) is paused on the mirror's consumer,
so that consumer's cached high watermark no longer moves.  At scrape time such partitions
are read here, with a consumer of our own: one Fetch from the first unmirrored offset
answers both the partition's end (its high watermark, or last stable offset under
read_committed, as the mirror sees it: never ListOffsets) and the CreateTime of the oldest
record not yet on the target.  Fetching partitions only need the timestamp, and only when
no transaction of theirs is open; that answer is cached per offset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from migrate import kafka
from migrate.config import ClusterProfile

Key = tuple[str, int]


@dataclass(frozen=True)
class Peeked:
    end: int | None  # the partition's end from the Fetch response (None: no answer in time)
    first_timestamp: int | None  # CreateTime (ms) of the first record at/after the offset (None: none before the end)


class Peeker:
    def __init__(self, source: ClusterProfile):
        self.source = source
        self._client: Consumer | None = None

    def peek(self, wanted: dict[Key, int], timeout: float = 2.0) -> dict[Key, Peeked]:
        if not wanted:
            return {}
        if self._client is None:
            self._client = kafka.consumer(self.source, **{"enable.partition.eof": True, "fetch.wait.max.ms": 20,
                                                           "group.id": "migrate-metrics-peek"})
        client = self._client
        assigned = [TopicPartition(t, p, offset) for (t, p), offset in wanted.items()]
        client.assign(assigned)
        first: dict[Key, int | None] = {}
        ends: dict[Key, int] = {}
        deadline = time.monotonic() + timeout
        try:
            while len(first) < len(wanted) and time.monotonic() < deadline:
                for message in client.consume(1000, timeout=0.1):
                    key = (message.topic(), message.partition())
                    if key in first or key not in wanted:
                        continue
                    error = message.error()
                    if error is None:
                        first[key] = message.timestamp()[1]
                    elif error.code() == KafkaError._PARTITION_EOF:
                        first[key] = None
                        ends[key] = cast(int, message.offset())  # end-of-partition carries the end offset
                    else:
                        continue
                    client.pause([TopicPartition(*key)])  # one answer is all we need
            out = {}
            for key in first:
                end = ends.get(key)
                if end is None:
                    try:
                        _low, high = client.get_watermark_offsets(TopicPartition(*key), cached=True)
                    except KafkaException:
                        high = -1
                    end = high if high >= 0 else None
                stamp = first[key]
                out[key] = Peeked(end, stamp if stamp is not None and stamp >= 0 else None)
            return out
        finally:
            client.resume(assigned)  # pausing is remembered per partition, across assignments
            client.unassign()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
