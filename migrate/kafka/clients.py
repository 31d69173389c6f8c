"""The one place that builds confluent-kafka clients: admin, consumer, producer.

Everything the tool does on a cluster goes through a client made here, so that profile
settings, safe defaults, logging and redaction are applied the same way everywhere: each
client gets the profile's settings for its role, a `client.id` naming the cluster, our
librdkafka logger ("migrate.librdkafka", shown at -vv) and an error callback that warns
when every broker is down.  A client that cannot be made for want of OS resources raises
KafkaOperationError saying which limit to lower.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Mapping

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from migrate.config import ClusterProfile, redact_text
from migrate.errors import KafkaOperationError

log = logging.getLogger("migrate.kafka")
librdkafka_log = logging.getLogger("migrate.librdkafka")

# cluster name -> when a client of this process last lost every broker (time.monotonic())
_last_all_down: dict[str, float] = {}


def _base(profile: ClusterProfile, role: str, overrides: Mapping[str, object]) -> dict[str, object]:
    config = profile.client_config(role, **overrides)
    config.setdefault("client.id", f"migrate-{profile.name}")
    config["logger"] = librdkafka_log
    config.setdefault("error_cb", functools.partial(_log_client_error, profile.name))
    return config


def _log_client_error(cluster: str, err: KafkaError) -> None:
    # Losing every broker is what an operator must see at once (the client retries on its own,
    # silently, for up to its delivery timeout); other client errors are detail for -vv.
    if err.code() == KafkaError._ALL_BROKERS_DOWN:
        _last_all_down[cluster] = time.monotonic()
        log.warning('cluster "%s": every broker connection is down (librdkafka: %s); retrying',
                    cluster, redact_text(err.str()))
    else:
        librdkafka_log.debug("client error: %s", redact_text(str(err)))


def lost_recently(profile: ClusterProfile, within: float) -> bool:
    """Whether a client of this process lost every broker of the cluster in the last `within` seconds.

    librdkafka reports losing every broker, never getting one back, so this is a recency test.
    """
    last = _last_all_down.get(profile.name)
    return last is not None and time.monotonic() - last < within


def _client(kind, profile: ClusterProfile, config: dict):
    try:
        return kind(config)
    except RuntimeError as exc:
        # librdkafka takes OS resources per client (threads, a thread-local key); past the
        # process limits the constructor raises this instead of a Kafka error.
        raise KafkaOperationError(
            f'cannot create another Kafka client for cluster "{profile.name}" ({exc}): this process hit an OS '
            "limit on threads or thread-local storage; use fewer write slots (--slots) or workers (--parallel)"
        ) from exc


def admin(profile: ClusterProfile, **overrides: object) -> AdminClient:
    return _client(AdminClient, profile, _base(profile, "admin", overrides))


def consumer(profile: ClusterProfile, **overrides: object) -> Consumer:
    """A consumer that never commits on its own unless asked (assign-style reading)."""
    defaults = {
        "group.id": f"migrate-reader-{profile.name}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "isolation.level": "read_committed",
        # Some platforms (noida-db 0.2.3, measured) ignore Fetch size limits and answer with
        # everything up to the end of the partition; librdkafka drops a response above this
        # limit and retries forever, so accept the largest rather than stall.
        "receive.message.max.bytes": 2_147_483_647,
    }
    return _client(Consumer, profile, _base(profile, "consumer", {**defaults, **overrides}))


def producer(profile: ClusterProfile, **overrides: object) -> Producer:
    defaults = {"linger.ms": 5, "enable.idempotence": True}
    return _client(Producer, profile, _base(profile, "producer", {**defaults, **overrides}))
