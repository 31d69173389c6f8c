"""Which source topics a mirror copies, and their target topics made ready before any write.

Selection: a topic is mirrored when some --topics pattern matches its whole name and no
--exclude pattern does.  Internal topics (names starting with "_") are skipped unless a
pattern names them literally; our own `__migrate.*` topics are never mirrored.

Target topics are created with the source's partition count and the topic-level configs in
scope (the allow-list and --config-include/--config-exclude, migrate.mirror.configs); while a
mirror follows, migrate.mirror.configsync keeps them in sync.  A target topic with fewer
partitions than its source is an error before anything is written; with more, a warning.

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
from migrate.mirror.configs import COPIED_CONFIGS, ConfigScope, creation_configs
from migrate.mirror.spec import MirrorSpec, compile_pattern, target_topic

log = logging.getLogger("migrate.mirror")


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


def plan_topics(spec: MirrorSpec, source_topics: list[str], source_meta: dict[str, kafka.TopicInfo],
                target_meta: dict[str, kafka.TopicInfo], mirrored: frozenset[str] = frozenset()) -> list[TopicPlan]:
    """Check every target topic first, so that a bad one stops the mirror before any write.

    `mirrored`: source topics this mirror already copies; a narrower target topic of one of
    them means the source grew, and is widened instead of refused.
    """
    plans = []
    scope = ConfigScope.of(spec.config_include, spec.config_exclude)
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
        configs = creation_configs(entries[name], scope) if existing is None else None
        plans.append(TopicPlan(name, tgt, partitions, configs,
                               target_partitions=None if existing is None else existing.partitions))
    return plans


def ensure_topics(spec: MirrorSpec, plans: list[TopicPlan]) -> list[TopicPlan]:
    """Create the missing target topics in one request, then wait for all of them at once;
    widen the target topics of sources that grew."""
    grown = [p for p in plans if p.target_partitions is not None and p.target_partitions < p.partitions]
    plans = [p for p in plans if p not in grown]
    wanted = {p.target_topic: (p.partitions, p.configs) for p in plans if p.configs is not None}
    try:
        created = kafka.create_topics(spec.target, wanted)
    except KafkaOperationError as exc:
        # Keys a user included (--config-include) are the ones platforms differ on: create without
        # them rather than not at all; the config sync then reports each one the target refuses.
        allowed = {t: (n, {k: v for k, v in c.items() if k in COPIED_CONFIGS}) for t, (n, c) in wanted.items()}
        if allowed == wanted:
            raise
        log.warning("creating target topics with the included configs failed (%s); creating them with the "
                    "built-in configs only (the config sync reports what the target refuses)", exc)
        created = kafka.create_topics(spec.target, allowed)
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

