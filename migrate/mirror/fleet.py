"""Fleet state: what the workers of a mirror agree on, kept in Kafka on the target.

Named `__migrate.<mirror>.status`, one partition, compacted (latest value per key wins),
beside the map topic (`__migrate.<mirror>.offset-map`).  It holds three kinds of records:
- `["mirror"]`: the mirror's definition (clusters as bootstrap strings, patterns, rename,
  slot count, and every source topic's target topic and partition count);
- `["partition", topic, partition]`: how far a partition is mirrored (source/target
  positions), its state (mirroring, diverged, data-loss), which worker holds it and when
  it last committed;
- `["worker", id]`: a heartbeat (slots held, partitions, time seen, running or stopped).
Any machine that reaches the target reads the same answer from here, including one that
never ran a worker; the local state database is only an index and cache of it.

A worker counts as alive while its heartbeat is recent and it did not say it stopped; a
partition marked "mirroring" whose worker is not alive is reported as "stopped".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass, field

from migrate import kafka
from migrate.config import ClusterProfile

HEARTBEAT_S = 2.0
# Partition progress is published at most this often per worker (the topic is compacted on
# Kafka, but some platforms never compact: keep its growth modest).
STATUS_EVERY_S = 2.0
ALIVE_AFTER_S = 10.0  # a heartbeat older than this: the worker is gone (killed, paused, cut off)
STATUS_CONFIGS = {"cleanup.policy": "compact", "retention.ms": "-1"}


def status_topic_name(mirror: str) -> str:
    return f"__migrate.{mirror}.status"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _key(*parts) -> bytes:
    return json.dumps(list(parts), separators=(",", ":")).encode()


def _value(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def mirror_record(spec, counts: dict[str, int], mapping: dict[str, str], slots: int) -> tuple[bytes, bytes]:
    return _key("mirror"), _value({
        "name": spec.name, "source": spec.source.bootstrap, "target": spec.target.bootstrap,
        "topics": list(spec.topics), "exclude": list(spec.exclude), "rename": spec.rename, "slots": slots,
        "mappings": {topic: [mapping[topic], counts[topic]] for topic in sorted(mapping)},
    })


def partition_record(topic: str, partition: int, target_topic: str, pmap, state: str, worker: str,
                     error: str | None = None) -> tuple[bytes, bytes]:
    return _key("partition", topic, partition), _value({
        "target_topic": target_topic, "source_low": pmap.source_low, "source_high": pmap.source_high,
        "target_high": pmap.target_high, "status": state, "worker": worker, "updated_at": now_iso(),
        "error": error,
    })


def worker_record(worker: str, slots: list[int], partitions: int, running: bool,
                  member: dict | None = None) -> tuple[bytes, bytes]:
    """`member`: its slots-group identity (member_id, instance_id) and waiting_s (held no slot for)."""
    return _key("worker", worker), _value({
        "worker": worker, "host": socket.gethostname(), "pid": os.getpid(), "slots": slots,
        "partitions": partitions, "seen_at": now_iso(), "state": "running" if running else "stopped",
        "interval": HEARTBEAT_S, **(member or {}),
    })


@dataclass(frozen=True)
class WorkerStatus:
    worker: str
    host: str
    pid: int
    slots: tuple[int, ...]
    partitions: int
    seen_at: str
    state: str  # as last reported: running | stopped
    member_id: str = ""  # its slots-group member (to remove it when it is gone: migrate.mirror.vacancies)
    instance_id: str = ""
    waiting_s: float | None = None  # held no slot for this long, when it last beat

    def alive(self, now: dt.datetime | None = None) -> bool:
        if self.state != "running":
            return False
        now = now or dt.datetime.now(dt.timezone.utc)
        return (now - dt.datetime.fromisoformat(self.seen_at)).total_seconds() < ALIVE_AFTER_S


@dataclass
class FleetStatus:
    """Everything the status topic says about one mirror (empty when it has no status topic)."""

    definition: dict | None = None
    partitions: dict[tuple[str, int], dict] = field(default_factory=dict)
    workers: dict[str, WorkerStatus] = field(default_factory=dict)

    def alive(self, worker: str | None) -> bool:
        found = self.workers.get(worker or "")
        return found is not None and found.alive()


def ensure_status_topic(target: ClusterProfile, mirror: str) -> str:
    name = status_topic_name(mirror)
    if kafka.create_topic(target, name, 1, STATUS_CONFIGS):
        kafka.wait_for_topic(target, name, 1)
    return name


def read_status(target: ClusterProfile, mirror: str, timeout: float = 60.0) -> FleetStatus:
    reader = StatusReader(target, mirror)
    return reader.refresh(timeout)


class StatusReader:
    """Follows the status topic: each refresh reads only what was appended since the last one."""

    def __init__(self, target: ClusterProfile, mirror: str):
        self.target = target
        self.topic = status_topic_name(mirror)
        self.next: int | None = None
        self.status = FleetStatus()

    def refresh(self, timeout: float = 60.0) -> FleetStatus:
        records, end = kafka.read_log(self.target, self.topic, self.next, timeout)
        for key, value in records:
            if value is not None:
                self._apply(json.loads(key), json.loads(value))
        if end is not None:
            self.next = end
        return self.status

    def _apply(self, key: list, data: dict) -> None:
        kind, *rest = key
        if kind == "mirror":
            self.status.definition = data
        elif kind == "partition":
            self.status.partitions[(rest[0], rest[1])] = data
        elif kind == "worker":
            self.status.workers[rest[0]] = WorkerStatus(
                data["worker"], data.get("host", ""), data.get("pid", 0), tuple(data.get("slots", ())),
                data.get("partitions", 0), data["seen_at"], data.get("state", "running"),
                data.get("member_id", ""), data.get("instance_id", ""), data.get("waiting_s"))
