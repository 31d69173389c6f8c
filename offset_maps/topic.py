"""The durable copy of the offset maps: a compacted topic on the target cluster.

Named `__migrate.<mirror>.offset-map`, one partition.  Each run is one record keyed by
(source topic, partition, source_start); a run that grows is written again under the same
key, so compaction keeps only its latest length; a run pruned from the map (runs.py) is a
tombstone under its key.  Each partition's head (source_low, source_high, target_high, target
topic) is a record keyed by (topic, partition, "head").
Any machine that can read the target can rebuild the maps from this topic.

The map topic is written only after the records it describes are on the target, so it is
always a prefix of the truth; mirror reconciliation extends it from the target's tail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.offset_maps.runs import PartitionMap, Run

MAP_CONFIGS = {"cleanup.policy": "compact"}
MapRecord = tuple[bytes, bytes | None]  # (key, value) of the map topic; None: a pruned run's tombstone


def map_topic_name(mirror: str) -> str:
    return f"__migrate.{mirror}.offset-map"


def run_key(topic: str, partition: int, source_start: int) -> bytes:
    return json.dumps([topic, partition, source_start], separators=(",", ":")).encode()


def head_key(topic: str, partition: int) -> bytes:
    return json.dumps([topic, partition, "head"], separators=(",", ":")).encode()


def run_value(run: Run) -> bytes:
    return json.dumps({"s": run.source_start, "t": run.target_start, "n": run.length},
                      separators=(",", ":")).encode()


def head_value(pmap: PartitionMap, target_topic: str) -> bytes:
    return json.dumps({"target_topic": target_topic, "source_low": pmap.source_low,
                       "source_high": pmap.source_high, "target_high": pmap.target_high},
                      separators=(",", ":")).encode()


def map_records(topic: str, partition: int, pmap: PartitionMap,
                target_topic: str) -> list[MapRecord]:
    """(key, value) pairs describing what changed in pmap since it was last saved (None: a pruned run)."""
    out: list[MapRecord] = [(run_key(topic, partition, start), None) for start in pmap.pruned]
    out += [(run_key(topic, partition, r.source_start), run_value(r)) for r in pmap.dirty_runs()]
    out.append((head_key(topic, partition), head_value(pmap, target_topic)))
    return out


@dataclass
class LoadedMap:
    pmap: PartitionMap
    target_topic: str | None


def ensure_map_topic(target: ClusterProfile, mirror: str) -> str:
    name = map_topic_name(mirror)
    if kafka.create_topic(target, name, 1, MAP_CONFIGS):
        kafka.wait_for_topic(target, name, 1)
    return name


def load_maps(target: ClusterProfile, mirror: str, timeout: float = 60.0) -> dict[tuple[str, int], LoadedMap]:
    """Read the whole map topic (latest value per key wins) into partition maps."""
    reader = MapTopicReader(target, mirror)
    reader.refresh(timeout)
    # get() answers None only for a key outside partitions()
    return {key: cast(LoadedMap, reader.get(key)) for key in reader.partitions()}


class MapTopicReader:
    """Follows the map topic: each refresh reads only what was appended since the last one."""

    def __init__(self, target: ClusterProfile, mirror: str):
        self.target = target
        self.topic = map_topic_name(mirror)
        self.next: int | None = None
        self.runs: dict[tuple[str, int], dict[int, Run]] = {}
        self.heads: dict[tuple[str, int], dict] = {}

    def refresh(self, timeout: float = 60.0) -> None:
        records, end = kafka.read_log(self.target, self.topic, self.next, timeout)
        for key, value in records:
            topic, partition, third = json.loads(key)
            if value is None:  # a pruned run
                self.runs.get((topic, partition), {}).pop(third, None)
                continue
            data = json.loads(value)
            if third == "head":
                self.heads[(topic, partition)] = data
            else:
                self.runs.setdefault((topic, partition), {})[third] = Run(data["s"], data["t"], data["n"])
        if end is not None:
            self.next = end

    def partitions(self) -> set[tuple[str, int]]:
        return set(self.runs) | set(self.heads)

    def get(self, key: tuple[str, int]) -> LoadedMap | None:
        if key not in self.runs and key not in self.heads:
            return None
        head = self.heads.get(key, {})
        pmap = PartitionMap(list(self.runs.get(key, {}).values()), head.get("source_low"), head.get("source_high"),
                            head.get("target_high"))
        pmap.mark_saved()
        return LoadedMap(pmap, head.get("target_topic"))
