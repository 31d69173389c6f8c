"""The reference estate: a deterministic agentic-workflow workload, planned and written.

`plan_estate` is pure: from (scale, seed) it derives every topic, record (partition, key,
value, headers, timestamp, transaction) and consumer group of the estate.  `seed_estate`
writes that plan to a cluster and commits the groups' offsets.  The same seed always gives
the same records in the same partitions and order, so two seeded clusters (or two prefixes
on one cluster) can be compared record by record.

    estate.py    what the estate is: its topics, groups, records and plan (the values)
    planner.py   plan_estate(): every record from (scale, seed), pure
    writer.py    seed_estate(): the plan written to a cluster, the groups committed; re-seeding refuses
    summary.py   what a seeding wrote, per topic and group (the command's output)
"""

from __future__ import annotations

from migrate.seed.estate import (AGENTS, AUDIT_RETENTION, GROUPS, LARGE_VALUE_BYTES, LARGE_VALUES_PER_SCALE,
                                 LONG_RETENTION, REFERENCE_MS, SPREAD_MS, TOOLS, TOPICS, TRANSACTIONAL_TOOL,
                                 WORKFLOWS_PER_SCALE, EstatePlan, GroupSpec, Headers, SeedRecord, TopicSpec)
from migrate.seed.planner import murmur2_partition, plan_estate
from migrate.seed.summary import GroupSummary, SeedSummary, TopicSummary
from migrate.seed.writer import seed_estate

__all__ = ["AGENTS", "AUDIT_RETENTION", "GROUPS", "LARGE_VALUE_BYTES", "LARGE_VALUES_PER_SCALE", "LONG_RETENTION",
           "REFERENCE_MS", "SPREAD_MS", "TOOLS", "TOPICS", "TRANSACTIONAL_TOOL", "WORKFLOWS_PER_SCALE", "EstatePlan",
           "GroupSpec", "GroupSummary", "Headers", "SeedRecord", "SeedSummary", "TopicSpec", "TopicSummary",
           "murmur2_partition", "plan_estate", "seed_estate"]
