"""Cluster metadata through one admin client: reachability, the topic listing, waiting for topics.

Owns `check_reachable` and what is built on it.  A listing first probes TCP on the bootstrap
addresses, so that a cluster that is down fails within seconds with the operating system's
reason instead of after librdkafka's retries; a cluster that does not answer a Metadata
request raises ClusterUnreachable, and a topic still missing after its wait raises
KafkaOperationError.  The module functions build a client per call; AdminSession holds one.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from migrate.config import ClusterProfile
from migrate.errors import ClusterUnreachable, KafkaOperationError
from migrate.kafka.client_errors import describe_error
from migrate.kafka.clients import admin

REACH_TIMEOUT = 10.0


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


def wait_for_topic(profile: ClusterProfile, name: str, partitions: int, timeout: float = 15.0) -> None:
    AdminSession(profile).wait_for_topic(name, partitions, timeout)


def wait_for_topics(profile: ClusterProfile, wanted: Mapping[str, int], timeout: float = 15.0) -> None:
    """Wait until every topic is in the metadata with at least its partition count (one client)."""
    AdminSession(profile).wait_for_topics(wanted, timeout)
