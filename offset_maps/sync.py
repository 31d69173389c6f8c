"""Consumer-group offsets across a mirror: translate them, and commit them on the other side.

Owns the group-level flow on top of a `Route` (`route.py`: one direction of one mirror and its
maps, over the pure rules in `translate.py`):
- `translate_groups` reads the sending side's committed offsets and translates every one;
- `sync_groups` commits the translations into the receiving side's groups, which must be
  inactive there; it never moves a group backwards unless asked, commits nothing for a
  group it refuses, and is idempotent (a second run finds nothing to change);
- `sync_groups_once` is the continuous form for the mirror loop (`--sync-groups REGEX`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Iterable

from migrate import groups as kgroups
from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import GroupActive, UsageError
from migrate.offset_maps.route import Route, Routed, build_route
from migrate.offset_maps.translate import APPROXIMATE
from migrate.state import State

log = logging.getLogger("migrate.offsets")


# --- translating groups ----------------------------------------------------------------------------


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


def _translate_committed(route: Route, committed: dict[str, kgroups.Offsets]
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


def _not_mirrored_note(route: Route) -> str:
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
    translated, uncovered = _translate_committed(route, kgroups.committed(route.sending, groups))
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
                                   None, None, None, "", _not_mirrored_note(route)))
    return out


# --- syncing groups -------------------------------------------------------------------------------

COMMIT = "commit"
REWIND = "rewind"
UNCHANGED = "unchanged"
REFUSED_REWIND = "refused-rewind"
UNTRANSLATABLE = "untranslatable"
NOT_MIRRORED = "not-mirrored"  # a committed partition on a topic the mirror does not copy: accounted, untouched


@dataclass(frozen=True)
class OffsetChange:
    """What sync does (or did) to one partition of one receiving group."""

    group: str
    topic: str  # sending side
    partition: int
    committed: int  # on the sending side
    to_topic: str
    current: int | None  # the receiving group's offset before
    translated: int | None  # the translation's answer
    new: int | None  # the offset committed (or to commit on a dry run); None: nothing
    action: str  # commit | rewind | unchanged | refused-rewind | untranslatable | not-mirrored
    status: str  # the translation's status
    note: str = ""


@dataclass(frozen=True)
class GroupSync:
    group: str
    outcome: str  # changed | would-change | unchanged | refused | skipped | not-mirrored
    reason: str
    changes: tuple[OffsetChange, ...] = field(default_factory=tuple)


def _plan_partition(group: str, topic: str, partition: int, offset: int, routed: Routed,
                    current: int | None, allow_rewind: bool, allow_approximate: bool) -> OffsetChange:
    tr = routed.translation
    usable = tr.exact or (allow_approximate and tr.status == APPROXIMATE)
    if not usable or tr.offset is None:
        action = UNTRANSLATABLE
    elif current == tr.offset:
        action = UNCHANGED
    elif current is not None and tr.offset < current:
        action = REWIND if allow_rewind else REFUSED_REWIND
    else:
        action = COMMIT
    new = tr.offset if action in (COMMIT, REWIND) else None
    return OffsetChange(group, topic, partition, offset, routed.to_topic, current, tr.offset, new, action,
                        tr.status, tr.note)


def _refusal(changes: list[OffsetChange]) -> str:
    reasons = []
    for c in changes:
        where = f"{c.topic}[{c.partition}]@{c.committed}"
        if c.action == UNTRANSLATABLE:
            reasons.append(f"{where} is {c.status}: {c.note}")
        elif c.action == REFUSED_REWIND:
            reasons.append(f"{where} would move {c.to_topic}[{c.partition}] back from {c.current} to "
                           f"{c.translated} (pass --allow-rewind to allow)")
    return "; ".join(reasons)


def sync_groups(route: Route, groups: Iterable[str], dry_run: bool = False, allow_rewind: bool = False,
                partial: bool = False, skip_active: bool = False) -> list[GroupSync]:
    """Commit every translated offset of `groups` into the same groups on the receiving side.

    A group is refused, with nothing committed, when it is active on the receiving side,
    when an offset would move backwards (without `allow_rewind`), or when an offset cannot be
    translated exactly.  With `partial`, a group is instead committed for the partitions that
    can be, and the others wait for the next run (the continuous mode).  Approximate
    (timestamp) answers are committed only when the route was built with that fallback.
    """
    asked = list(dict.fromkeys(groups))
    allow_approximate = route.fallback == "timestamp"
    translated, uncovered = _translate_committed(route, kgroups.committed(route.sending, asked))
    outside = {g: tuple(OffsetChange(g, t, p, o, "", None, None, None, NOT_MIRRORED, NOT_MIRRORED,
                                     _not_mirrored_note(route)) for t, p, o in uncovered.get(g, []))
               for g in asked}
    results: dict[str, GroupSync] = {
        g: GroupSync(g, NOT_MIRRORED if outside[g] else "unchanged",
                     f'no committed offsets on topics of mirror "{route.forward.name}"', outside[g])
        for g in asked if not translated.get(g)
    }
    groups = [g for g in asked if translated.get(g)]
    info = kgroups.describe(route.receiving, groups)
    wanted = {g: [(r.to_topic, p) for _, p, _, r in translated[g]] for g in groups}
    current = kgroups.committed(route.receiving, groups, wanted)
    to_commit: dict[str, dict[tuple[str, int], int]] = {}
    for group in groups:
        changes = [
            _plan_partition(group, t, p, o, r, current[group].get((r.to_topic, p)), allow_rewind, allow_approximate)
            for t, p, o, r in translated[group]
        ]
        refused = [c for c in changes if c.action in (UNTRANSLATABLE, REFUSED_REWIND)]
        moving = [c for c in changes if c.action in (COMMIT, REWIND)]
        if info.get(group) is not None and info[group].active:
            err = GroupActive(group, route.receiving.name, info[group].members)
            results[group] = GroupSync(group, "skipped" if skip_active else "refused", str(err), tuple(changes))
        elif refused and not partial:
            results[group] = GroupSync(group, "refused", f'group "{group}": {_refusal(refused)} (nothing committed)',
                                       tuple(changes))
        elif not moving:
            reason = "already in sync" if not refused else _refusal(refused)
            results[group] = GroupSync(group, "unchanged", reason, tuple(changes))
        elif dry_run:
            results[group] = GroupSync(group, "would-change", "dry run: nothing committed", tuple(changes))
        else:
            to_commit[group] = {(c.to_topic, c.partition): c.new for c in moving}
            results[group] = GroupSync(group, "changed", _refusal(refused) if refused else "", tuple(changes))
    if to_commit:
        outcome = kgroups.commit(route.receiving, to_commit)
        for group, problem in outcome.items():
            if problem == "active":  # became active between the check and the commit
                err = GroupActive(group, route.receiving.name, None)
                results[group] = GroupSync(group, "skipped" if skip_active else "refused", str(err),
                                           results[group].changes)
    return [replace(results[g], changes=results[g].changes + outside[g]) if translated.get(g) else results[g]
            for g in asked]


def sync_groups_once(state: State, mirror_name: str, source: ClusterProfile, target: ClusterProfile,
                     group_regex: str | re.Pattern[str], on_results=None) -> list[OffsetChange]:
    """One round of continuous group sync (`migrate mirror --sync-groups REGEX`).

    Groups on `source` whose id fully matches `group_regex` and that are inactive on `target`
    get every exactly translatable offset committed on `target`; offsets never move back,
    untranslatable partitions (mirror behind) wait for a later round, active groups are
    skipped.  Returns the partition changes committed in this round (empty when in sync).
    """
    pattern = re.compile(group_regex) if isinstance(group_regex, str) else group_regex
    route = build_route(state, mirror_name, source, target)
    groups = [g for g in listed_groups(source) if pattern.fullmatch(g)]
    if not groups:
        return []
    done = sync_groups(route, groups, partial=True, skip_active=True)
    if on_results is not None:  # metrics count the skipped groups
        on_results(done)
    changes = []
    for result in done:
        if result.outcome == "changed":
            changes.extend(c for c in result.changes if c.action in (COMMIT, REWIND))
        elif result.outcome == "skipped":
            log.debug("group sync skipped: %s", result.reason)
    return changes
