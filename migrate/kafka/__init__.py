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
import socket
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from migrate.config import ClusterProfile, redact_text
from migrate.errors import ClusterUnreachable, KafkaOperationError
from migrate.kafka.client_errors import describe_error, error_of, fail, is_fatal, read_failure
from migrate.kafka.clients import admin, consumer, producer
from migrate.kafka.parallel import at_once

# Names defined in the package's modules, re-exported here.
__all__ = ["admin", "at_once", "consumer", "describe_error", "error_of", "fail", "is_fatal", "producer",
           "read_failure"]

REACH_TIMEOUT = 10.0
ENDS_CHUNK = 250  # partitions per reader in partition_ends
ENDS_PARALLEL = 4  # readers at once in partition_ends


# --- reachability --------------------------------------------------------------------------


def _tcp_probe(bootstrap: str, timeout: float) -> str | None:
    """None when some bootstrap address accepts a TCP connection, else the last reason."""
    reason = "no address"
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        host = host.strip("[]")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return None
        except OSError as exc:
            reason = exc.strerror or str(exc)
        except ValueError:
            reason = f"bad address {address!r}"
    return reason


def check_reachable(profile: ClusterProfile, timeout: float = REACH_TIMEOUT):
    """Return the cluster metadata, or raise ClusterUnreachable within about `timeout` seconds."""
    return AdminSession(profile).check_reachable(timeout)


# --- topics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int


def list_topics(profile: ClusterProfile, timeout: float = REACH_TIMEOUT) -> dict[str, TopicInfo]:
    return AdminSession(profile).list_topics(timeout)


class AdminSession:
    """One admin client of a cluster, held across a sequence of metadata requests.

    The module's check_reachable, list_topics and wait_for_topics build a client per call; a
    caller that lists, creates and waits, or polls a listing, holds one session instead (the
    client is made on first use and dropped on close).  Answers and errors are those of the
    module functions: each listing still probes TCP first, so a cluster that went away fails as
    fast and with the same reason as a fresh list_topics.
    """

    def __init__(self, profile: ClusterProfile):
        self.profile = profile
        self._client: AdminClient | None = None

    def __enter__(self) -> AdminSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client = None

    def _admin(self) -> AdminClient:
        if self._client is None:
            self._client = admin(self.profile)
        return self._client

    def check_reachable(self, timeout: float = REACH_TIMEOUT):
        """Return the cluster metadata, or raise ClusterUnreachable within about `timeout` seconds."""
        profile = self.profile
        started = time.monotonic()
        reason = _tcp_probe(profile.bootstrap, timeout=min(3.0, timeout))
        if reason is not None:
            raise ClusterUnreachable(profile.name, profile.bootstrap, reason.lower())
        remaining = max(1.0, timeout - (time.monotonic() - started))
        client = self._admin()
        try:
            return client.list_topics(timeout=remaining)
        except KafkaException as exc:
            raise ClusterUnreachable(profile.name, profile.bootstrap, describe_error(exc)) from exc
        finally:
            client.poll(0)  # librdkafka's log lines reach our logger (-vv) only when the client is polled

    def list_topics(self, timeout: float = REACH_TIMEOUT) -> dict[str, TopicInfo]:
        metadata = self.check_reachable(timeout)
        return {
            name: TopicInfo(name, len(topic.partitions))
            for name, topic in metadata.topics.items()
            if topic.error is None or topic.error.code() == KafkaError.NO_ERROR
        }

    def wait_for_topic(self, name: str, partitions: int, timeout: float = 15.0) -> None:
        self.wait_for_topics({name: partitions}, timeout)

    def wait_for_topics(self, wanted: Mapping[str, int], timeout: float = 15.0) -> None:
        """Wait until every topic is in the metadata with at least its partition count."""
        profile = self.profile
        deadline = time.monotonic() + timeout
        client = self._admin()
        missing = dict(wanted)
        while missing:
            try:
                metadata = client.list_topics(timeout=max(1.0, deadline - time.monotonic()))
            except KafkaException as exc:
                raise ClusterUnreachable(profile.name, profile.bootstrap, describe_error(exc)) from exc
            for name, partitions in list(missing.items()):
                topic = metadata.topics.get(name)
                if topic is not None and topic.error is None and len(topic.partitions) >= partitions:
                    del missing[name]
            if not missing:
                return
            if time.monotonic() > deadline:
                names = ", ".join(f'"{n}"' for n in list(missing)[:5])
                raise KafkaOperationError(
                    f'topic {names} did not appear on cluster "{profile.name}" within {timeout:.0f}s'
                )
            time.sleep(0.05)


def create_topic(
    profile: ClusterProfile,
    name: str,
    partitions: int,
    configs: Mapping[str, str] | None = None,
    replication_factor: int = -1,
    timeout: float = 30.0,
) -> bool:
    """Create a topic; True when created, False when it already existed."""
    client = admin(profile)
    futures = client.create_topics(
        [NewTopic(name, partitions, replication_factor, config=dict(configs or {}))],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        futures[name].result(timeout=timeout)
        return True
    except KafkaException as exc:
        if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise fail(profile, f'creating topic "{name}"', exc) from exc


def create_topics(
    profile: ClusterProfile,
    topics: Mapping[str, tuple[int, Mapping[str, str]]],
    timeout: float = 60.0,
) -> set[str]:
    """Create many topics (name -> (partitions, configs)) in one CreateTopics request.

    Returns the names created; a topic that already existed is not an error.
    """
    if not topics:
        return set()
    client = admin(profile)
    futures = client.create_topics(
        [NewTopic(name, partitions, -1, config=dict(configs)) for name, (partitions, configs) in topics.items()],
        operation_timeout=timeout, request_timeout=timeout,
    )
    created = set()
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.add(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise fail(profile, f'creating topic "{name}"', exc) from exc
    return created


def add_partitions(profile: ClusterProfile, name: str, total: int, timeout: float = 30.0) -> None:
    """Grow a topic to `total` partitions (CreatePartitions)."""
    client = admin(profile)
    try:
        futures = client.create_partitions([NewPartitions(name, total)], operation_timeout=timeout,
                                           request_timeout=timeout)
        futures[name].result(timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        raise fail(profile, f'adding partitions to topic "{name}"', exc) from exc


def wait_for_topic(profile: ClusterProfile, name: str, partitions: int, timeout: float = 15.0) -> None:
    AdminSession(profile).wait_for_topic(name, partitions, timeout)


def wait_for_topics(profile: ClusterProfile, wanted: Mapping[str, int], timeout: float = 15.0) -> None:
    """Wait until every topic is in the metadata with at least its partition count (one client)."""
    AdminSession(profile).wait_for_topics(wanted, timeout)


def delete_topics(profile: ClusterProfile, names: Iterable[str], timeout: float = 30.0) -> None:
    names = list(names)
    if not names:
        return
    client = admin(profile)
    futures = client.delete_topics(names, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue
            raise fail(profile, f'deleting topic "{name}"', exc) from exc


def topic_config_entries(profile: ClusterProfile, name: str, timeout: float = 15.0) -> dict[str, tuple[str, bool]]:
    """Every topic config the broker reports: key -> (value, reported as explicitly set).

    Brokers differ in how they flag defaults (some mark everything as a default), so callers
    that copy configs should also compare values with Kafka's documented defaults.
    """
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    client = admin(profile)  # keep a reference: a destroyed client fails its pending futures
    try:
        result = client.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
    except KafkaException as exc:
        raise fail(profile, f'describing configs of topic "{name}"', exc) from exc
    return {
        key: (entry.value, not entry.is_default)
        for key, entry in result.items()
        if entry.value is not None and not entry.is_sensitive
    }


def topic_config_entries_many(profile: ClusterProfile, names: Iterable[str],
                              timeout: float = 30.0) -> dict[str, dict[str, tuple[str, bool]]]:
    """`topic_config_entries` for many topics in one DescribeConfigs request."""
    resources = {name: ConfigResource(ConfigResource.Type.TOPIC, name) for name in names}
    if not resources:
        return {}
    client = admin(profile)
    futures = client.describe_configs(list(resources.values()), request_timeout=timeout)
    out = {}
    for name, resource in resources.items():
        try:
            result = futures[resource].result(timeout)
        except KafkaException as exc:
            raise fail(profile, f'describing configs of topic "{name}"', exc) from exc
        out[name] = {key: (entry.value, not entry.is_default) for key, entry in result.items()
                     if entry.value is not None and not entry.is_sensitive}
    return out


def topic_configs(profile: ClusterProfile, name: str, timeout: float = 15.0) -> dict[str, str]:
    """Topic-level configs the broker reports as explicitly set on the topic."""
    return {k: v for k, (v, explicit) in topic_config_entries(profile, name, timeout).items() if explicit}


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
