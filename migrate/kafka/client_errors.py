"""The errors of confluent-kafka clients, read and translated into ours (`migrate.errors`).

Owns the one translation of a client's KafkaException or KafkaError into a
KafkaOperationError: the message names the cluster and the request, and carries no secret
(every text from librdkafka goes through `redact_text`).  Also the two questions callers ask
of a client error: which KafkaError an exception carries, and whether it ends the client.
Invariant: nothing here talks to a cluster; it only reads errors already raised.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from migrate.config import ClusterProfile, redact_text
from migrate.errors import KafkaOperationError


def error_of(exc: BaseException) -> KafkaError | None:
    """The KafkaError a client exception carries (code, name, fatal flag), or None."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def is_fatal(error: KafkaError) -> bool:
    """A client error that ends the client for good: flagged fatal, or the _FATAL code a client
    raises for every call after its fatal error (measured: produce() on an idempotent producer
    whose target restarted empty raised code _FATAL with the fatal flag unset)."""
    return bool(error.fatal()) or error.code() == KafkaError._FATAL


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a Kafka exception."""
    err = error_of(exc)
    if err is not None:
        return redact_text(f"{err.name()}: {err.str()}")
    return redact_text(str(exc))


def fail(profile: ClusterProfile, what: str, exc: BaseException) -> KafkaOperationError:
    """Translate a client exception into our error, naming the cluster and the request."""
    return KafkaOperationError(f'{what} on cluster "{profile.name}" failed: {describe_error(exc)}')


def read_failure(profile: ClusterProfile, what: str, error: KafkaError) -> KafkaOperationError | None:
    """The error to raise for a consumer error met reading `what` ("topic[partition]"), or None when
    librdkafka retries it on its own."""
    if error.fatal() or not error.retriable():
        return KafkaOperationError(f'reading {what} on cluster "{profile.name}" failed: {redact_text(error.str())}')
    return None
