"""Partition ends (log start and end), read from Fetch responses, never from ListOffsets.

Some Kafka-compatible platforms answer ListOffsets LATEST wrongly after multi-record batches
(Tansu 0.6.0, measured), so ListOffsets is only a hint of where to start reading: the end is
the offset at which the broker reports end-of-partition, right on every platform we know
(and at the last stable offset under read_committed).  Partitions are read in bounded
chunks, a few chunks at once.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Iterable

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from migrate.config import ClusterProfile
from migrate.errors import KafkaOperationError
from migrate.kafka.client_errors import fail, read_failure
from migrate.kafka.clients import consumer
from migrate.kafka.parallel import at_once
from migrate.kafka.read_loop import key_of, offset_of

ENDS_CHUNK = 250  # partitions per reader in partition_ends
ENDS_PARALLEL = 4  # readers at once in partition_ends


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

