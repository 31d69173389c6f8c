"""What every check gets: the cluster, the run's scratch names, and small client helpers.

Every topic and group a check creates is named `__migrate.probe.<token>.<label>-<random>`,
so that the runner can find and delete all of them afterwards by prefix, including those
made by a check that ran (and perhaps died) in a child process.  The helpers here read and
write records with plain confluent-kafka clients built by migrate.kafka; they raise on any
delivery error so that a check never mistakes a lost write for a platform's answer.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Sequence, cast

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from migrate import kafka
from migrate.config import ClusterProfile, redact_text
from migrate.probe.model import FAIL, PASS, UNSUPPORTED, CheckResult

SCRATCH_PREFIX = "__migrate.probe."
# Real Kafka refuses session timeouts under group.min.session.timeout.ms (6000 by default);
# some platforms take session.timeout/2 to answer a JoinGroup, so stay at that minimum.
GROUP_SESSION_TIMEOUT_MS = 6000
GROUP_HEARTBEAT_MS = 500


@dataclass(frozen=True)
class ProbeContext:
    profile: ClusterProfile
    token: str

    @classmethod
    def new(cls, profile: ClusterProfile) -> "ProbeContext":
        return cls(profile, uuid.uuid4().hex[:10])

    @property
    def prefix(self) -> str:
        return f"{SCRATCH_PREFIX}{self.token}."

    def scratch_name(self, label: str) -> str:
        return f"{self.prefix}{label}-{uuid.uuid4().hex[:6]}"

    def scratch_topic(self, label: str, partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name = self.scratch_name(label)
        kafka.create_topic(self.profile, name, partitions, configs)
        kafka.wait_for_topic(self.profile, name, partitions)
        return name

    def group_settings(self) -> dict[str, object]:
        return {"session.timeout.ms": GROUP_SESSION_TIMEOUT_MS, "heartbeat.interval.ms": GROUP_HEARTBEAT_MS}

    # The child of an isolated check gets the context on stdin (never on its command line,
    # where settings such as passwords would show in the process list).
    def to_json(self) -> str:
        return json.dumps({
            "name": self.profile.name,
            "settings": dict(self.profile.settings),
            "role_overrides": {k: dict(v) for k, v in self.profile.role_overrides.items()},
            "token": self.token,
        })

    @classmethod
    def from_json(cls, text: str) -> "ProbeContext":
        data = json.loads(text)
        profile = ClusterProfile(data["name"], data["settings"], data["role_overrides"])
        return cls(profile, data["token"])


class Stopwatch:
    """Durations for the results of one check: each lap is the time since the previous one."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def lap(self) -> float:
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        return elapsed


def result(name: str, client: str, status: str, expected: str, observed: str,
           watch: Stopwatch | None = None) -> CheckResult:
    duration = watch.lap() if watch else 0.0
    return CheckResult(name, client, status, expected, redact_text(observed), round(duration, 3))


def verdict(name: str, client: str, ok: bool, expected: str, observed: str,
            watch: Stopwatch | None = None) -> CheckResult:
    return result(name, client, PASS if ok else FAIL, expected, observed, watch)


# librdkafka's ways of saying "this broker does not do that": not advertised, refused, or the
# broker hung up on the request (a platform without the API often just closes the socket).
_UNSUPPORTED_CODES = {
    KafkaError._UNSUPPORTED_FEATURE, KafkaError.UNSUPPORTED_VERSION, KafkaError._TRANSPORT,
    KafkaError.INVALID_REQUEST, KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
}


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, evidence) for an exception raised by a request a check made."""
    err = kafka.error_of(exc)
    text = kafka.describe_error(exc)
    if err is not None and err.code() in _UNSUPPORTED_CODES:
        if err.code() == KafkaError._TRANSPORT:
            text = f"the broker closed the connection ({text})"
        return UNSUPPORTED, text
    return FAIL, text


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] | None = None
    timestamp: int | None = None
    partition: int = 0


def produce(profile: ClusterProfile, topic: str, records: Iterable[Rec], *, producer=None, timeout: float = 20.0,
            **overrides: object) -> list[int]:
    """Write records and return their offsets; raises KafkaException on any delivery error."""
    own = producer is None
    client = producer or kafka.producer(profile, **{"enable.idempotence": False, **overrides})
    offsets: list[int] = []
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            offsets.append(cast(int, msg.offset()))  # a delivered record has its offset

    try:
        for rec in records:
            kwargs: dict[str, Any] = {"value": rec.value, "key": rec.key, "partition": rec.partition,
                                         "on_delivery": delivered}
            if rec.headers is not None:
                kwargs["headers"] = list(rec.headers)
            if rec.timestamp is not None:
                kwargs["timestamp"] = rec.timestamp
            client.produce(topic, **kwargs)
        remaining = client.flush(timeout)
        if errors:
            raise KafkaException(errors[0])
        if remaining:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"{remaining} records not acknowledged"))
        return offsets
    finally:
        if own:
            del client


def read(profile: ClusterProfile, topic: str, partition: int = 0, *, start: int = 0,
         isolation: str = "read_uncommitted", limit: int = 100_000, timeout: float = 15.0,
         **overrides: object) -> list[Message]:
    """Records of one partition from `start` up to the end the broker reports (Fetch, not ListOffsets)."""
    client = kafka.consumer(profile, **{"enable.partition.eof": True, "isolation.level": isolation,
                                        "auto.offset.reset": "earliest", **overrides})
    out: list[Message] = []
    try:
        client.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < limit:
            for message in client.consume(1000, timeout=0.2):
                err = message.error()
                if err is None:
                    out.append(message)
                elif err.code() == KafkaError._PARTITION_EOF:
                    return out
                elif not err.retriable():
                    raise KafkaException(err)
        return out
    finally:
        client.close()


def fetch_end(profile: ClusterProfile, topic: str, partition: int = 0, isolation: str = "read_uncommitted") -> int:
    """The partition's end as a Fetch response reports it (right where ListOffsets may be wrong)."""
    return kafka.partition_ends(profile, [(topic, partition)], isolation=isolation)[(topic, partition)].high


def describe_records(messages: Sequence[Message]) -> list[tuple]:
    """A comparable summary of records: key, value, headers, timestamp."""
    return [(m.key(), m.value(), tuple(m.headers() or ()), m.timestamp()) for m in messages]


def short(value: object, limit: int = 160) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
