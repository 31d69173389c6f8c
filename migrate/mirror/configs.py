"""Which topic configs a mirror keeps in sync, and what one sync round changes (pure: no Kafka here).

Scope: the allow-list (migrate.mirror.topics.COPIED_CONFIGS, with Kafka's defaults), plus every
key a cluster reports that matches a --config-include regex, minus every key matching a
--config-exclude regex.  Broker-specific keys are never synced unless a user includes them.

Values are compared as they take effect, never by the brokers' "default" flags, which
platforms set differently (measured): noida-db, like Kafka, reports every topic config and
flags the defaults; Tansu reports only the keys it stores, and flags those as defaults too.
- A key on the allow-list that a cluster does not report has Kafka's default value.
- A key outside it is unset (None) where it is not reported, or where the cluster reports
  every allow-list key (it lists defaults, so its flags mean something) and flags it a default.
- cleanup.policy is a set ("compact,delete" equals "delete,compact").

Per topic and key, with S the source's value, T the target's and B the baseline (the source's
value at the end of the last round, kept in the configs topic: migrate.mirror.configsync):
1. S == T: in sync (B := S).
2. S != T and S != B (the source changed, or there is no baseline and drift is restored):
   the target is set to S ("applied"); S None deletes the key on the target.
3. S != T and S == B (the target was changed by hand): drift.  --config-drift restore: the
   target is set back to S ("restored"); --config-drift report: left as it is, reported.
4. No baseline and --config-drift report: a difference is reported as drift, never applied
   (it may be a hand change the user asked to keep); a later change on the source is applied.
A change the target refuses is reported as drift "refused", and not tried again while S stays
the value that was refused (one warning per topic, key and value, never a stop).  Only
differences are sent: a topic in sync costs two DescribeConfigs answers and no write
(MirrorMaker 2 re-sent every config of every topic each round, KAFKA-14082, and with the
legacy AlterConfigs reset the keys it did not name, which KIP-894 ended).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from migrate.mirror.spec import compile_pattern

Entries = dict[str, tuple[str, bool]]  # key -> (value, reported as explicitly set)
Values = dict[str, str | None]
APPLIED, RESTORED, REFUSED, REPORTED = "applied", "restored", "refused", "reported"
DRIFT_MODES = ("restore", "report")

# The allow-list: topic configs a mirror copies and keeps in sync, with Kafka's defaults (a
# value equal to the default is not copied at creation: platforms flag defaults differently).
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
class ConfigScope:
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, include: tuple[str, ...], exclude: tuple[str, ...]) -> ConfigScope:
        return cls(tuple(compile_pattern(p, "--config-include") for p in include),
                   tuple(compile_pattern(p, "--config-exclude") for p in exclude))

    def wants(self, key: str) -> bool:
        if any(p.fullmatch(key) for p in self.exclude):
            return False
        return key in COPIED_CONFIGS or any(p.fullmatch(key) for p in self.include)

    def keys(self, *entries: Entries) -> list[str]:
        """The keys in scope for a topic: the allow-list and what the clusters report that is included."""
        seen = set(COPIED_CONFIGS)
        for found in entries:
            seen.update(found)
        return sorted(k for k in seen if self.wants(k))


def lists_defaults(entries: Entries) -> bool:
    """The cluster reported every allow-list key for the topic: it lists defaults, its flags mean something."""
    return all(key in entries for key in COPIED_CONFIGS)


def effective(entries: Entries, key: str) -> str | None:
    """The value a key takes on a cluster (see the module docstring), normalised for comparison."""
    reported = entries.get(key)
    if key in COPIED_CONFIGS:
        value: str | None = reported[0] if reported is not None else COPIED_CONFIGS[key]
    elif reported is None or (not reported[1] and lists_defaults(entries)):
        value = None
    else:
        value = reported[0]
    if value is not None and key == "cleanup.policy":
        value = ",".join(sorted(part.strip() for part in value.split(",") if part.strip()))
    return value


def creation_configs(entries: Entries, scope: ConfigScope) -> dict[str, str]:
    """The configs a new target topic is created with: what the source sets, in scope."""
    out = {}
    for key in scope.keys(entries):
        value = effective(entries, key)
        if value is None or key not in entries:
            continue
        explicit = entries[key][1]
        if explicit or value != COPIED_CONFIGS.get(key):
            out[key] = entries[key][0]
    return out


@dataclass(frozen=True)
class Drift:
    """A key whose target value differs from the source's after a round."""

    topic: str  # the source topic
    target_topic: str
    key: str
    source: str | None
    target: str | None
    state: str  # REPORTED (left as it is) or REFUSED (the target would not take the source's value)


@dataclass
class TopicPlan:
    """What a round does for one topic, and what it leaves behind."""

    topic: str
    target_topic: str
    changes: Values = field(default_factory=dict)  # key -> value to set on the target (None: delete)
    reasons: dict[str, str] = field(default_factory=dict)  # key -> APPLIED or RESTORED
    drift: list[Drift] = field(default_factory=list)
    baseline: Values = field(default_factory=dict)  # B after the round (keys whose change fails keep their old B)
    source: Values = field(default_factory=dict)
    target: Values = field(default_factory=dict)


def plan_topic(topic: str, target_topic: str, scope: ConfigScope, source: Entries, target: Entries,
               baseline: Values | None, mode: str, refused: dict[str, str | None]) -> TopicPlan:
    """Rules 1-4 for every key in scope.  `refused`: key -> the source value the target refused."""
    plan = TopicPlan(topic, target_topic)
    for key in scope.keys(source, target):
        s, t = effective(source, key), effective(target, key)
        plan.source[key], plan.target[key] = s, t
        plan.baseline[key] = s
        if s == t:
            continue
        if key in refused and refused[key] == s:
            plan.drift.append(Drift(topic, target_topic, key, s, t, REFUSED))
            continue
        if baseline is None:
            if mode == "report":
                plan.drift.append(Drift(topic, target_topic, key, s, t, REPORTED))
            else:
                plan.changes[key], plan.reasons[key] = s, APPLIED
            continue
        if key not in baseline or baseline[key] != s:
            plan.changes[key], plan.reasons[key] = s, APPLIED
        elif mode == "restore":
            plan.changes[key], plan.reasons[key] = s, RESTORED
        else:
            plan.drift.append(Drift(topic, target_topic, key, s, t, REPORTED))
    return plan


def refuse(plan: TopicPlan, key: str, old_baseline: Values | None) -> None:
    """The target refused `key`: it stays different, reported, and keeps its old baseline."""
    plan.changes.pop(key, None)
    plan.reasons.pop(key, None)
    plan.drift.append(Drift(plan.topic, plan.target_topic, key, plan.source[key], plan.target[key], REFUSED))
    if old_baseline is not None and key in old_baseline:
        plan.baseline[key] = old_baseline[key]
    else:
        plan.baseline.pop(key, None)
