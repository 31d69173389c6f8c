"""Config drift: topics whose target copy has configs other than the source's (read-only on both).

For each assessed topic whose target topic exists (under the name a recorded mirror from this
source gives it, else the same name), the configs a mirror keeps in sync (the allow-list,
migrate.mirror.configs) are compared as they take effect on each platform, by the same rules
the mirror's config sync uses, so `assess` and a following mirror agree on what differs.  A
difference is a risk: a following mirror sets the target back to the source's value (or, with
--config-drift report, reports it), and a cutover would leave the target with it.
"""

from __future__ import annotations

from migrate import kafka
from migrate.assess.model import RISK, Finding, Inventory
from migrate.config import ClusterProfile
from migrate.errors import KafkaOperationError
from migrate.mirror.configs import ConfigScope, effective
from migrate.state import State


def target_names(state: State | None, source: ClusterProfile, source_name: str) -> dict[str, str]:
    """Source topic -> target topic, from the mirrors the state records for this source."""
    if state is None:
        return {}
    from migrate.mirror import registry

    out: dict[str, str] = {}
    for name in registry.names(state):
        record = registry.get(state, name)
        if record is not None and record.source in (source_name, source.bootstrap) and ".rh-" not in name:
            out.update(record.topics)
    return out


def drift_findings(inventory: Inventory, source: ClusterProfile, target: ClusterProfile,
                   renames: dict[str, str]) -> list[Finding]:
    names = {t.name: renames.get(t.name, t.name) for t in inventory.topics}
    present = set(kafka.list_topics(target))
    pairs = {s: t for s, t in names.items() if t in present}
    if not pairs:
        return []
    try:
        source_entries = kafka.topic_config_entries_many(source, list(pairs), skip_missing=True)
        target_entries = kafka.topic_config_entries_many(target, sorted(set(pairs.values())), skip_missing=True)
    except KafkaOperationError as exc:
        return [Finding("estate", "topic configs", RISK, "config drift", "-", f"not compared: {exc}")]
    scope = ConfigScope()
    out = []
    for topic, target_topic in sorted(pairs.items()):
        if topic not in source_entries or target_topic not in target_entries:
            continue
        src, tgt = source_entries[topic], target_entries[target_topic]
        differing = [(key, effective(src, key), effective(tgt, key)) for key in scope.keys(src, tgt)
                     if effective(src, key) != effective(tgt, key)]
        if not differing:
            continue
        evidence = "; ".join(f"{key}: source {_shown(s)}, target {_shown(t)}" for key, s, t in differing)
        out.append(Finding(
            "topic", topic, RISK, f"config drift on target topic {target_topic}", "-", evidence,
            "change configs on the source: a following mirror sets the target back to the source's values "
            "(with --config-drift report it only reports them), and a cutover keeps what the target has"))
    return out


def _shown(value: str | None) -> str:
    return "(unset)" if value is None else value
