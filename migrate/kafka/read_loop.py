"""The one read loop over an assigned consumer, and how its records and events are named.

`read_assigned` owns the classification of what consume() returns while reading assigned
partitions: records and end-of-partition events (error code _PARTITION_EOF, whose offset is
the end) of partitions still being read are passed on; consumer errors become
KafkaOperationError here, or are skipped when librdkafka retries them on its own.  The caller
owns the policy of when a partition is done.  Invariant: the loop never assigns, seeks or
commits; it only consumes.
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator, Mapping, cast

from confluent_kafka import Consumer, KafkaError, Message

from migrate.config import ClusterProfile, redact_text
from migrate.errors import KafkaOperationError
from migrate.kafka.client_errors import read_failure

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

