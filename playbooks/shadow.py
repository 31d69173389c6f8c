"""Rehearsal naming: how a rehearsal keeps its hands off production state.

A rehearsal runs the real plan against the real clusters, with every name that would change
production state rewritten to a shadow:

- consumer groups written or waited on:  `<group>.rehearsal`
- mirrors (their state, map topic, process): `<mirror>.rh-<id>`
- topics a mirror writes on its target:    `rehearsal.<id>.<topic>` (a shadow prefix; not `__`,
  which mirrors and validators treat as internal)
- hooks see `MIGRATE_REHEARSAL=1`, `MIGRATE_SHADOW_PREFIX` and `MIGRATE_GROUP_SUFFIX` and
  must not act on production (the shipped demo hooks only report what they would do).

Production groups are only ever read (to translate their offsets into the shadow groups);
production topics are only ever read (by the shadow mirror and the validator).
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP_SUFFIX = ".rehearsal"


@dataclass(frozen=True)
class Shadow:
    run_tag: str  # short id shared by the cutover and rollback halves of one rehearsal

    @property
    def topic_prefix(self) -> str:
        return f"rehearsal.{self.run_tag}."

    @property
    def group_suffix(self) -> str:
        return GROUP_SUFFIX

    def mirror(self, name: str) -> str:
        return f"{name}.rh-{self.run_tag}"

    def group(self, name: str) -> str:
        return name if name.endswith(GROUP_SUFFIX) else name + GROUP_SUFFIX

    def rename(self, template: str) -> str:
        return self.topic_prefix + template

    def env(self) -> dict[str, str]:
        return {"MIGRATE_REHEARSAL": "1", "MIGRATE_SHADOW_PREFIX": self.topic_prefix,
                "MIGRATE_GROUP_SUFFIX": self.group_suffix}


def tag_of(run_id: str) -> str:
    return run_id.replace("-", "")[-6:]
