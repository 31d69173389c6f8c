"""What a seeding wrote: per topic its records (committed, aborted, tombstones, null keys,
large values) and per group its committed offsets; `SeedSummary.rows()` is what
`migrate local seed` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from migrate.config import ClusterProfile
from migrate.seed.estate import LARGE_VALUE_BYTES, TOPICS, EstatePlan


@dataclass(frozen=True)
class TopicSummary:
    name: str
    partitions: int
    configs: Mapping[str, str]
    records: int  # committed records (what read_committed readers must see)
    aborted: int  # records written in aborted transactions
    tombstones: int
    null_keys: int
    large_values: int
    description: str


@dataclass(frozen=True)
class GroupSummary:
    name: str
    position: str
    offsets: tuple[tuple[str, int, int], ...]  # (topic, partition, committed offset)
    description: str


@dataclass(frozen=True)
class SeedSummary:
    cluster: str
    prefix: str
    seed: int
    scale: int
    workflows: int
    topics: tuple[TopicSummary, ...]
    groups: tuple[GroupSummary, ...]
    transactions_committed: int
    transactions_aborted: int

    @property
    def records(self) -> int:
        return sum(t.records for t in self.topics)

    def topic(self, suffix: str) -> TopicSummary:
        return next(t for t in self.topics if t.name == self.prefix + suffix)

    def group(self, suffix: str) -> GroupSummary:
        return next(g for g in self.groups if g.name == self.prefix + suffix)

    def rows(self) -> list[dict[str, object]]:
        """One row per topic and per group, for `emit`."""
        rows: list[dict[str, object]] = []
        for t in self.topics:
            extras = [f"{n} {label}" for n, label in ((t.aborted, "aborted"), (t.tombstones, "tombstones"),
                                                      (t.null_keys, "null keys"), (t.large_values, "large"))
                      if n]
            detail = "; ".join([t.description, *extras, *(f"{k}={v}" for k, v in t.configs.items())])
            rows.append({"kind": "topic", "name": t.name, "partitions": t.partitions,
                         "records": t.records, "detail": detail})
        for g in self.groups:
            rows.append({"kind": "group", "name": g.name, "partitions": len(g.offsets), "records": None,
                         "detail": g.description})
        return rows


def summarise(profile: ClusterProfile, plan: EstatePlan, prefix: str,
              positions: list[GroupSummary]) -> SeedSummary:
    topics = []
    for spec in TOPICS:
        records = [r for r in plan.records if r.topic == spec.suffix]
        kept = [r for r in records if not r.aborted]
        topics.append(TopicSummary(
            name=prefix + spec.suffix, partitions=spec.partitions, configs=dict(spec.configs),
            records=len(kept), aborted=len(records) - len(kept),
            tombstones=sum(r.value is None for r in kept), null_keys=sum(r.key is None for r in kept),
            large_values=sum(len(r.value or b"") >= LARGE_VALUE_BYTES for r in kept),
            description=spec.description,
        ))
    txns = plan.transactions()
    return SeedSummary(
        cluster=profile.name, prefix=prefix, seed=plan.seed, scale=plan.scale, workflows=plan.workflows,
        topics=tuple(topics), groups=tuple(positions),
        transactions_committed=sum(txns.values()), transactions_aborted=sum(not c for c in txns.values()),
    )
