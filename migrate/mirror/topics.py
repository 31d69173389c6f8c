"""Which source topics a mirror copies, and their target topics made ready before any write.

Selection: a topic is mirrored when some --topics pattern matches its whole name and no
--exclude pattern does.  Internal topics (names starting with "_") are skipped unless a
pattern names them literally; our own `__migrate.*` topics are never mirrored.

Target topics are created with the source's partition count and the topic-level configs
on an allow-list (never broker-specific ones).  A target topic with fewer partitions than
its source is an error before anything is written; with more, a warning.

A source topic that grows while it is mirrored (partitions added) is different: its target
topic is widened with CreatePartitions.  Where the target refuses (Tansu does not support
CreatePartitions, measured), the new partitions are reported as blocked and the others go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Mapping

from migrate import kafka
from migrate.errors import KafkaOperationError, UsageError
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
    partitions: int  # the source topic's partition count
    configs: dict | None  # None: the target topic exists already
    created: bool = False
    target_partitions: int | None = None  # an existing target topic's count; below `partitions`: to widen
    refused: str = ""  # why the target topic could not be widened

    @property
    def writable(self) -> int:
        """How many partitions the mirror can write (the others are blocked until widened)."""
        if self.target_partitions is None:
            return self.partitions
        return min(self.partitions, self.target_partitions)


def select_topics(spec: MirrorSpec, available: Mapping[str, object]) -> list[str]:
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
                target_meta: dict[str, kafka.TopicInfo], mirrored: frozenset[str] = frozenset()) -> list[TopicPlan]:
    """Check every target topic first, so that a bad one stops the mirror before any write.

    `mirrored`: source topics this mirror already copies; a narrower target topic of one of
    them means the source grew, and is widened instead of refused.
    """
    plans = []
    absent = [name for name in source_topics if target_topic(spec, name) not in target_meta]
    entries = kafka.topic_config_entries_many(spec.source, absent)
    for name in source_topics:
        tgt = target_topic(spec, name)
        partitions = source_meta[name].partitions
        existing = target_meta.get(tgt)
        if existing is not None and existing.partitions < partitions and name in mirrored:
            plans.append(TopicPlan(name, tgt, partitions, None, target_partitions=existing.partitions))
            continue
        if existing is not None and existing.partitions < partitions:
            raise UsageError(
                f'target topic "{tgt}" has {existing.partitions} partitions but source topic "{name}" has '
                f"{partitions}; add partitions to the target topic or mirror under another name with --rename"
            )
        if existing is not None and existing.partitions > partitions:
            log.warning('target topic "%s" has %d partitions, more than the %d of source "%s"; '
                        "the extra partitions receive nothing", tgt, existing.partitions, partitions, name)
        configs = copied_configs(entries[name]) if existing is None else None
        plans.append(TopicPlan(name, tgt, partitions, configs,
                               target_partitions=None if existing is None else existing.partitions))
    return plans


def ensure_topics(spec: MirrorSpec, plans: list[TopicPlan]) -> list[TopicPlan]:
    """Create the missing target topics in one request, then wait for all of them at once;
    widen the target topics of sources that grew."""
    grown = [p for p in plans if p.target_partitions is not None and p.target_partitions < p.partitions]
    plans = [p for p in plans if p not in grown]
    created = kafka.create_topics(spec.target, {p.target_topic: (p.partitions, p.configs)
                                                for p in plans if p.configs is not None})
    kafka.wait_for_topics(spec.target, {p.target_topic: p.partitions for p in plans},
                         timeout=max(15.0, len(plans) / 10))
    done = [widen(spec, plan) for plan in grown]
    for plan in plans:
        if plan.target_topic in created:
            log.info('created target topic "%s" (%d partitions, configs %s)', plan.target_topic,
                     plan.partitions, plan.configs)
        done.append(TopicPlan(plan.source_topic, plan.target_topic, plan.partitions, plan.configs,
                              plan.target_topic in created))
    return done


def widen(spec: MirrorSpec, plan: TopicPlan) -> TopicPlan:
    """Add partitions to a target topic whose source grew; on refusal, say why and go on."""
    try:
        kafka.add_partitions(spec.target, plan.target_topic, plan.partitions)
        kafka.wait_for_topic(spec.target, plan.target_topic, plan.partitions)
    except KafkaOperationError as exc:
        reason = (f'source topic "{plan.source_topic}" grew to {plan.partitions} partitions but target topic '
                  f'"{plan.target_topic}" has {plan.target_partitions} and cannot be widened ({exc}); '
                  f"partitions {plan.target_partitions}..{plan.partitions - 1} are not mirrored: add partitions "
                  "to the target topic by hand (the mirror picks them up at its next refresh)")
        log.warning("%s", reason)
        return replace(plan, refused=reason)
    log.info('widened target topic "%s" from %d to %d partitions (its source grew)', plan.target_topic,
             plan.target_partitions, plan.partitions)
    return replace(plan, target_partitions=plan.partitions)

