"""The record as the tool sees it: what a mirror copies and what a validator compares."""

from __future__ import annotations

from dataclasses import dataclass

Headers = tuple[tuple[str, "bytes | None"], ...]


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int  # milliseconds since the epoch, as the broker returned it
    timestamp_type: int = 1  # 1 CreateTime, 2 LogAppendTime, 0 not available


def from_message(message) -> Record:
    """A confluent-kafka Message (without error) as a Record."""
    ts_type, ts = message.timestamp()
    headers = message.headers()
    return Record(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        value=message.value(),
        headers=tuple(headers) if headers else (),
        timestamp=ts,
        timestamp_type=ts_type,
    )
