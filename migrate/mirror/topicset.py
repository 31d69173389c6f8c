"""Which source topics a running mirror copies, as last prepared, and where each goes.

The one owner of the run's topic view: the plan of every selected topic (its target topic,
partitions, how many the target can take), the source-to-target name mapping and partition
counts that the slots are cut from.  `prepare` is run at start and at every metadata refresh:
new topics, topics whose source grew and topics still waiting to be widened are planned and
created again (migrate.mirror.topics); the others are left as they are.

Invariants:
1. A topic is in `mapping` and `counts` exactly when it has a plan.
2. Source partitions at or above a plan's `writable` are blocked (the target topic has no such
   partition): reported, never opened.  When the target is widened they are unblocked.
3. A source topic with mirrored records that vanished from the source is data loss: the run
   stops before anything more is copied.
"""

from __future__ import annotations

from collections.abc import Callable

from migrate import kafka
from migrate.errors import DataLossDetected, PartitionDiverged, UsageError
from migrate.mirror import registry
from migrate.mirror import topics as topic_plans
from migrate.mirror.spec import MirrorSpec
from migrate.offset_maps.store import MapStore
from migrate.state import State

Key = tuple[str, int]


class TopicSet:
    def __init__(self, spec: MirrorSpec, state: State, store: MapStore,
                 block: Callable[[Key, PartitionDiverged], None], unblock: Callable[[Key], None]):
        self.spec = spec
        self.state = state
        self.store = store
        self._block = block  # stops a partition as "blocked" (invariant 2)
        self._unblock = unblock
        self.plans: dict[str, topic_plans.TopicPlan] = {}  # per source topic, as last prepared
        self.mapping: dict[str, str] = {}
        self.counts: dict[str, int] = {}  # mirrored source topic -> partition count
        self.source_names: list[str] = []
        self.grown = False  # a topic gained partitions (or a target was widened) since the last look
        self.definition_due = False  # the definition changed: publish it to the fleet status

    def prepare(self, required: bool) -> list[str]:
        """The selected source topics, their targets created or widened where needed."""
        spec = self.spec
        source_meta = kafka.list_topics(spec.source)
        self.source_names = list(source_meta)
        self._check_vanished(source_meta)
        selected = topic_plans.select_topics(spec, source_meta)
        if not selected:
            if required:
                raise UsageError(
                    f'no topic on cluster "{spec.source.name}" matches --topics {" ".join(spec.topics)}'
                    + (f' (excluding {" ".join(spec.exclude)})' if spec.exclude else "")
                    + "; check the pattern (it must match the whole topic name)"
                )
            return []
        # New topics, topics whose source grew, and topics still waiting to be widened.
        changed = [t for t in selected if t not in self.plans or source_meta[t].partitions != self.plans[t].partitions
                   or self.plans[t].writable < self.plans[t].partitions]
        if changed:
            target_meta = kafka.list_topics(spec.target)
            plans = topic_plans.plan_topics(spec, changed, source_meta, target_meta,
                                            mirrored=frozenset(self._mirrored_topics()))
            plans = topic_plans.ensure_topics(spec, plans)
            registry.record(self.state, spec, plans)
            for plan in plans:
                self._plan_ready(plan)
            self.definition_due = True
        return selected

    def take_grown(self) -> bool:
        grown, self.grown = self.grown, False
        return grown

    def take_definition_due(self) -> bool:
        due, self.definition_due = self.definition_due, False
        return due

    def writable(self, key: Key) -> bool:
        return key[1] < self.plans[key[0]].writable

    def refused(self, topic: str) -> str:
        return self.plans[topic].refused

    def target_of(self, topic: str) -> str:
        return self.mapping.get(topic, topic)

    def _mirrored_topics(self) -> set[str]:
        """Source topics with a map: the mirror copies them already (so a narrower target means growth)."""
        return set(self.plans) | {t for t, _p in self.store.partitions()}

    def _plan_ready(self, plan: topic_plans.TopicPlan) -> None:
        old = self.plans.get(plan.source_topic)
        self.plans[plan.source_topic] = plan
        self.mapping[plan.source_topic] = plan.target_topic
        self.grown = self.grown or (old is not None and (old.partitions < plan.partitions
                                                          or old.writable < plan.writable))
        self.counts[plan.source_topic] = plan.partitions
        for partition in range(plan.writable, plan.partitions):
            self._block((plan.source_topic, partition), PartitionDiverged(plan.source_topic, partition, plan.refused))
        if old is not None:
            for partition in range(old.writable, plan.writable):
                self._unblock((plan.source_topic, partition))

    def _check_vanished(self, source_meta: dict) -> None:
        """A source topic this mirror copied records from must still exist: if not, data was lost."""
        mirrored: dict[str, int] = {}
        for row in self.store.progress():
            if (row["source_high"] or 0) > (row["source_low"] or 0):
                mirrored[row["topic"]] = mirrored.get(row["topic"], 0) + row["source_high"] - (row["source_low"] or 0)
        gone = {t: n for t, n in mirrored.items() if t not in source_meta}
        wanted = set(topic_plans.select_topics(self.spec, {t: None for t in gone}))
        for topic in sorted(wanted):
            raise DataLossDetected(
                self.spec.source.name, topic, -1,
                f'source topic "{topic}" vanished from cluster "{self.spec.source.name}" after {gone[topic]} '
                "offsets were mirrored (the source restarted empty or the topic was deleted): data loss on "
                "the source; the target and the map are kept, nothing more is mirrored",
            )
