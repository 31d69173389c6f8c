"""The group-checkpointing step: commit a group's translated offsets on the receiving side.

Owns the writing half of group sync, on top of the translation in `sync.py`:
- `sync_groups` commits the translations into the receiving side's groups, which must be
  inactive there; it never moves a group backwards unless asked, commits nothing for a
  group it refuses, and is idempotent (a second run finds nothing to change);
- `sync_groups_once` is the continuous form for the mirror loop (`--sync-groups REGEX`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Iterable, cast

from migrate import groups as kgroups
from migrate.config import ClusterProfile
from migrate.errors import GroupActive
from migrate.offset_maps.route import Route, Routed, build_route
from migrate.offset_maps.sync import NOT_MIRRORED, listed_groups, not_mirrored_note, translate_committed
from migrate.offset_maps.translate import APPROXIMATE
from migrate.state import State

log = logging.getLogger("migrate.offsets")

COMMIT = "commit"
REWIND = "rewind"
UNCHANGED = "unchanged"
REFUSED_REWIND = "refused-rewind"
UNTRANSLATABLE = "untranslatable"


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
    translated, uncovered = translate_committed(route, kgroups.committed(route.sending, asked))
    outside = {g: tuple(OffsetChange(g, t, p, o, "", None, None, None, NOT_MIRRORED, NOT_MIRRORED,
                                     not_mirrored_note(route)) for t, p, o in uncovered.get(g, []))
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
            # a commit or a rewind always carries its new offset (_plan_partition)
            to_commit[group] = {(c.to_topic, c.partition): cast(int, c.new) for c in moving}
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
    changes: list[OffsetChange] = []
    for result in done:
        if result.outcome == "changed":
            changes.extend(c for c in result.changes if c.action in (COMMIT, REWIND))
        elif result.outcome == "skipped":
            log.debug("group sync skipped: %s", result.reason)
    return changes
