"""Which source topics a mirror copies, and their target topics made ready before any write.

Selection: a topic is mirrored when some --topics pattern matches its whole name and no
--exclude pattern does.  Internal topics (names starting with "_") are skipped unless a
pattern names them literally; our own `__migrate.*` topics are never mirrored.

Target topics are created with the source's partition count and the topic-level configs
on an allow-list (never broker-specific ones).  A target topic with fewer partitions than
its source is an error before anything is written; with more, a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from migrate import kafka
from migrate.errors import UsageError
from migrate.mirror.spec import MirrorSpec, compile_pattern, target_topic

log = logging.getLogger("migrate.mirror")

# Topic configs a mirror copies, with Kafka's defaults: a value equal to the default is not
# copied, since some platforms report every config as explicitly set (and others none).
COPIED_CONFIGS = {
    "cleanup.policy": "delete",
    "retention.ms": "604800000",
    "retention.bytes": "-1",
    "max.message.bytes": "1048588",
    "segment.ms": "604800000",
    "segment.bytes": "1073741824",
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": "9223372036854775807",
    "delete.retention.ms": "86400000",
    "min.cleanable.dirty.ratio": "0.5",
    "message.timestamp.type": "CreateTime",
    "compression.type": "producer",
}


@dataclass(frozen=True)
class TopicPlan:
    source_topic: str
    target_topic: str
    partitions: int
    configs: dict | None  # None: the target topic exists already
    created: bool = False


def select_topics(spec: MirrorSpec, available: dict[str, kafka.TopicInfo]) -> list[str]:
    includes = [compile_pattern(p, "--topics") for p in spec.topics]
    excludes = [compile_pattern(p, "--exclude") for p in spec.exclude]
    chosen = []
    for name in sorted(available):
        if name.startswith("__migrate."):
            continue
        if name.startswith("_") and name not in spec.topics:
            continue
        if any(p.fullmatch(name) for p in includes) and not any(p.fullmatch(name) for p in excludes):
            chosen.append(name)
    return chosen


def copied_configs(entries: dict[str, tuple[str, bool]]) -> dict[str, str]:
    out = {}
    for key, default in COPIED_CONFIGS.items():
        if key in entries:
            value, explicit = entries[key]
            if explicit or value != default:
                out[key] = value
    return out


def plan_topics(spec: MirrorSpec, source_topics: list[str], source_meta: dict[str, kafka.TopicInfo],
                target_meta: dict[str, kafka.TopicInfo]) -> list[TopicPlan]:
    """Check every target topic first, so that a bad one stops the mirror before any write."""
    plans = []
    absent = [name for name in source_topics if target_topic(spec, name) not in target_meta]
    entries = kafka.topic_config_entries_many(spec.source, absent)
    for name in source_topics:
        tgt = target_topic(spec, name)
        partitions = source_meta[name].partitions
        existing = target_meta.get(tgt)
        if existing is not None and existing.partitions < partitions:
            raise UsageError(
                f'target topic "{tgt}" has {existing.partitions} partitions but source topic "{name}" has '
                f"{partitions}; add partitions to the target topic or mirror under another name with --rename"
            )
        if existing is not None and existing.partitions > partitions:
            log.warning('target topic "%s" has %d partitions, more than the %d of source "%s"; '
                        "the extra partitions receive nothing", tgt, existing.partitions, partitions, name)
        configs = copied_configs(entries[name]) if existing is None else None
        plans.append(TopicPlan(name, tgt, partitions, configs))
    return plans


def ensure_topics(spec: MirrorSpec, plans: list[TopicPlan]) -> list[TopicPlan]:
    """Create the missing target topics in one request, then wait for all of them at once."""
    created = kafka.create_topics(spec.target, {p.target_topic: (p.partitions, p.configs)
                                                for p in plans if p.configs is not None})
    kafka.wait_for_topics(spec.target, {p.target_topic: p.partitions for p in plans},
                         timeout=max(15.0, len(plans) / 10))
    done = []
    for plan in plans:
        if plan.target_topic in created:
            log.info('created target topic "%s" (%d partitions, configs %s)', plan.target_topic,
                     plan.partitions, plan.configs)
        done.append(TopicPlan(plan.source_topic, plan.target_topic, plan.partitions, plan.configs,
                              plan.target_topic in created))
    return done
