"""Topic administration: creating, growing and deleting topics, and reading their configs.

One admin request per call (CreateTopics, CreatePartitions, DeleteTopics, DescribeConfigs,
IncrementalAlterConfigs), many topics per request where the caller has many.  Invariants: creating a topic that
already exists and deleting one that does not are not errors (the calls are re-runnable);
any other failure raises KafkaOperationError naming the cluster and the topic.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

from migrate.config import ClusterProfile
from migrate.kafka.client_errors import describe_error, fail
from migrate.kafka.clients import admin


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


def topic_config_entries_many(profile: ClusterProfile, names: Iterable[str], timeout: float = 30.0,
                              skip_missing: bool = False) -> dict[str, dict[str, tuple[str, bool]]]:
    """`topic_config_entries` for many topics in one DescribeConfigs request (with `skip_missing`,
    a topic the cluster does not know is left out of the answer instead of failing it)."""
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
            if skip_missing and exc.args and exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue
            raise fail(profile, f'describing configs of topic "{name}"', exc) from exc
        out[name] = {key: (entry.value, not entry.is_default) for key, entry in result.items()
                     if entry.value is not None and not entry.is_sensitive}
    return out


def alter_topic_configs(profile: ClusterProfile, changes: Mapping[str, Mapping[str, str | None]],
                        timeout: float = 30.0) -> dict[str, str | None]:
    """Set (a value) or delete (None: back to the broker's default) topic configs with one
    IncrementalAlterConfigs request; never the legacy AlterConfigs, which replaces a topic's whole
    config set and so resets every key it does not name (MirrorMaker 2's config sync did that
    until KIP-894).  Returns, per topic, None when the broker applied the change, else why not
    (a broker answers per topic, not per key).  Raises KafkaOperationError only when the
    request itself could not be made."""
    op_set, op_delete = AlterConfigOpType.SET, AlterConfigOpType.DELETE
    resources = {topic: ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=op_set if value is not None else op_delete)
        for key, value in keys.items()]) for topic, keys in changes.items() if keys}
    if not resources:
        return {}
    client = admin(profile)  # kept alive until every answer is in
    try:
        futures = client.incremental_alter_configs(list(resources.values()), request_timeout=timeout)
    except KafkaException as exc:
        raise fail(profile, "altering topic configs", exc) from exc
    out: dict[str, str | None] = {}
    for topic, resource in resources.items():
        try:
            futures[resource].result(timeout)
            out[topic] = None
        except KafkaException as exc:
            out[topic] = describe_error(exc)
        except TimeoutError:
            out[topic] = f"no answer within {timeout:.0f}s"
    return out


def topic_configs(profile: ClusterProfile, name: str, timeout: float = 15.0) -> dict[str, str]:
    """Topic-level configs the broker reports as explicitly set on the topic."""
    return {k: v for k, (v, explicit) in topic_config_entries(profile, name, timeout).items() if explicit}
