"""Consumer-group offsets across a mirror: which groups, and their translations.

Owns the group-level reading on top of a `Route` (`route.py`: one direction of one mirror and
its maps, over the pure rules in `translate.py`): the groups a command means, and
`translate_groups`, which reads the sending side's committed offsets and translates every one.
Committing the translations on the receiving side is the checkpointing step, in `checkpoint.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from migrate import groups as kgroups
from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import UsageError
from migrate.offset_maps.route import Route


# --- translating groups ----------------------------------------------------------------------------


NOT_MIRRORED = "not-mirrored"  # a committed partition on a topic the mirror does not copy: accounted, untouched


@dataclass(frozen=True)
class GroupOffset:
    """One partition of one group, translated: the row of `offsets translate`."""

    group: str
    topic: str
    partition: int
    committed: int
    end: int | None
    lag: int | None
    to_topic: str
    to_offset: int | None
    status: str
    to_end: int | None
    to_lag: int | None
    behind: int | None
    via: str
    note: str


INTERNAL_GROUPS = re.compile(r"migrate\.mirror\..*|migrate-reader-.*")  # our own mirrors' and readers' groups


def listed_groups(profile: ClusterProfile) -> list[str]:
    """The groups a cluster lists, without the tool's own (a mirror's source group is not a user's)."""
    return [g for g in kgroups.list_groups(profile) if not INTERNAL_GROUPS.fullmatch(g)]


def select_groups(route: Route, groups: Iterable[str] = (), all_groups: bool = False) -> list[str]:
    """The groups asked for; a named group the sending cluster does not have is an error (a typo)."""
    named = list(dict.fromkeys(groups))
    chosen = named
    if all_groups:
        chosen = sorted(set(chosen) | set(listed_groups(route.sending)))
    if not chosen:
        raise UsageError("no group given; pass --group NAME (repeatable) or --all-groups")
    missing = missing_groups(route.sending, named)
    if missing:
        listed = ", ".join(listed_groups(route.sending)) or "none"
        raise UsageError(f'{"groups" if len(missing) > 1 else "group"} {", ".join(missing)} not found on cluster '
                         f'"{route.sending.name}" (no committed offsets, no members); groups there: {listed}')
    return chosen


def missing_groups(profile: ClusterProfile, groups: list[str]) -> list[str]:
    """Named groups with neither committed offsets nor live members on the cluster."""
    if not groups:
        return []
    offsets = kgroups.committed(profile, groups)
    empty = [g for g in groups if not offsets.get(g)]
    info = kgroups.describe(profile, empty) if empty else {}
    return [g for g in empty if not (info.get(g) and info[g].active)]


def translate_committed(route: Route, committed: dict[str, kgroups.Offsets]
                         ) -> tuple[dict[str, list[tuple]], dict[str, list[tuple[str, int, int]]]]:
    """(translated rows per group, committed partitions on topics the mirror does not cover per group)."""
    route.prepare([(t, p, o) for offsets in committed.values() for (t, p), o in offsets.items()])
    out: dict[str, list[tuple]] = {}
    uncovered: dict[str, list[tuple[str, int, int]]] = {}
    for group, offsets in committed.items():
        rows = []
        for (topic, partition), offset in sorted(offsets.items()):
            if route.covers(topic):
                rows.append((topic, partition, offset, route.translate(topic, partition, offset)))
            else:
                uncovered.setdefault(group, []).append((topic, partition, offset))
        out[group] = rows
    return out, uncovered


def not_mirrored_note(route: Route) -> str:
    return f'topic not in mirror "{route.forward.name}"'


def _ends(profile: ClusterProfile, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
    if not partitions:
        return {}
    existing = kafka.list_topics(profile)
    wanted = [(t, p) for t, p in sorted(partitions) if t in existing and p < existing[t].partitions]
    return {tp: e.high for tp, e in kafka.partition_ends(profile, wanted).items()}


def translate_groups(route: Route, groups: Iterable[str], with_ends: bool = True) -> list[GroupOffset]:
    """Every committed offset of `groups` on the sending side, translated."""
    groups = list(groups)
    translated, uncovered = translate_committed(route, kgroups.committed(route.sending, groups))
    sending_parts = {(t, p) for rows in translated.values() for t, p, _, _ in rows}
    sending_parts |= {(t, p) for rows in uncovered.values() for t, p, _ in rows}
    receiving_parts = {(r.to_topic, p) for rows in translated.values() for _, p, _, r in rows if r.to_topic}
    ends = _ends(route.sending, sending_parts) if with_ends else {}
    to_ends = _ends(route.receiving, receiving_parts) if with_ends else {}
    out = []
    for group in groups:
        for topic, partition, offset, routed in translated.get(group, []):
            tr = routed.translation
            end = ends.get((topic, partition))
            to_end = to_ends.get((routed.to_topic, partition))
            out.append(GroupOffset(
                group, topic, partition, offset, end, None if end is None else max(0, end - offset),
                routed.to_topic, tr.offset, tr.status, to_end,
                None if to_end is None or tr.offset is None else max(0, to_end - tr.offset),
                tr.behind, routed.via, tr.note))
        for topic, partition, offset in uncovered.get(group, []):
            end = ends.get((topic, partition))
            out.append(GroupOffset(group, topic, partition, offset, end,
                                   None if end is None else max(0, end - offset), "", None, NOT_MIRRORED,
                                   None, None, None, "", not_mirrored_note(route)))
    return out
