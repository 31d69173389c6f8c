"""kafka-python for the probe: its clients made from a cluster profile, reading one partition
to its end, and telling its ways of saying "not supported" from a failure.
"""

from __future__ import annotations

import time
from typing import Any

from migrate.config import ClusterProfile
from migrate.probe.context import ProbeContext
from migrate.probe.model import FAIL, UNSUPPORTED

# librdkafka property -> kafka-python keyword, for the settings that decide whether we can connect.
_SETTINGS = {
    "bootstrap.servers": "bootstrap_servers",
    "client.id": "client_id",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
}


def settings(profile: ClusterProfile, role: str = "consumer") -> dict[str, Any]:
    config = profile.client_config(role)
    out: dict[str, Any] = {"request_timeout_ms": 15_000}
    for key, value in config.items():
        if key in _SETTINGS:
            out[_SETTINGS[key]] = value
    return out


def make_consumer(ctx: ProbeContext, **extra: Any):
    from kafka import KafkaConsumer

    return KafkaConsumer(**settings(ctx.profile), enable_auto_commit=False, auto_offset_reset="earliest", **extra)


def make_admin(ctx: ProbeContext):
    from kafka.admin import KafkaAdminClient

    # A platform that never answers a request it does not know would otherwise cost 15s per call.
    return KafkaAdminClient(**{**settings(ctx.profile, "admin"), "request_timeout_ms": 3_000})


def status_of(exc: BaseException) -> tuple[str, str]:
    """kafka-python's ways of saying "not supported": a version error or a dropped connection."""
    from kafka import errors

    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (errors.UnsupportedVersionError, errors.IncompatibleBrokerVersion,
                        errors.KafkaConnectionError, errors.InvalidRequestError)):
        return UNSUPPORTED, text
    if isinstance(exc, errors.KafkaTimeoutError) and "connection" in str(exc).lower():
        return UNSUPPORTED, text
    return FAIL, text


def read(ctx: ProbeContext, topic: str, partition: int = 0, isolation: str = "read_uncommitted",
         timeout: float = 15.0) -> list:
    """Records of one partition up to the high watermark carried by Fetch responses."""
    from kafka import TopicPartition

    consumer = make_consumer(ctx, isolation_level=isolation)
    tp = TopicPartition(topic, partition)
    out: list = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200, max_records=5000).values():
                out.extend(records)
            high = consumer.highwater(tp)
            if high is not None and consumer.position(tp) >= high:
                # read_committed stops at the last stable offset; the markers behind it are not records
                break
        return out
    finally:
        consumer.close()
