"""Consumer-group offsets across a mirror: translate them, and commit them on the other side.

Owns the group-level flow on top of the pure rules in `translate.py`:
- a `Route` is one direction of one mirror: which sending topics it covers, the receiving
  topic of each (through the recorded topic mapping, so renamed topics work), and the
  partition maps to translate through;
- `translate_groups` reads the sending side's committed offsets and translates every one;
- `sync_groups` commits the translations into the receiving side's groups, which must be
  inactive there; it never moves a group backwards unless asked, commits nothing for a
  group it refuses, and is idempotent (a second run finds nothing to change);
- `sync_groups_once` is the continuous form for the mirror loop (`--sync-groups REGEX`).

Directions.  Forward (default): groups on mirror M's source, offsets committed on M's target,
through M's map.  Reverse (`reverse=True`, for rollback): groups on M's target, offsets
committed on M's source.  A target offset at or after where a reverse mirror R (a mirror from
M's target to M's source, such as `rollback`) began reading goes forward through R's map:
those are records produced on the target after cutover, which only R copied back.  Older
offsets go backward through M's map.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from migrate import groups as kgroups
from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import GroupActive, UsageError
from migrate.mirror import registry
from migrate.offset_maps import timestamps
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.translate import (
    APPROXIMATE, BEFORE_START, GAP, NOT_YET, Translation, approximate, translate, translate_reverse,
    translate_reverse_via,
)
from migrate.state import State

log = logging.getLogger("migrate.offsets")

FALLBACKS = ("none", "timestamp")


# --- mirrors and their maps ---------------------------------------------------------------------


# The registry owns what a mirror is; these names stay for the callers of this module.
MirrorRecord = registry.MirrorRecord
mirror_record = registry.get
reverse_mirrors = registry.reverse_of


class MirrorMaps:
    """The partition maps of one mirror, opened by the registry's one rule.

    Per partition, the longer of the local index and the durable map topic on the mirror's
    target (`map_cluster`), so any machine that reaches the target works and a partial local
    index never shortens a map.
    """

    def __init__(self, name: str, topics: dict[str, str], state: State | None = None,
                 map_cluster: ClusterProfile | None = None):
        self.name = name
        self.topics = dict(topics)
        self._maps = registry.open_maps(state, name, map_cluster)
        for (topic, _), (_pmap, target_topic) in self._maps.items():
            if target_topic and topic not in self.topics:
                self.topics[topic] = target_topic

    def get(self, topic: str, partition: int) -> PartitionMap | None:
        found = self._maps.get((topic, partition))
        if found is None or (found[0].source_low is None and found[0].empty):
            return None
        return found[0]


# --- one direction -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    to_topic: str
    translation: Translation
    via: str  # the mirror whose map answered


class Route:
    """One direction of one mirror: sending cluster -> receiving cluster."""

    def __init__(self, sending: ClusterProfile, receiving: ClusterProfile, forward: MirrorMaps,
                 reverse: bool = False, reverse_mirror: MirrorMaps | None = None, fallback: str = "none"):
        if fallback not in FALLBACKS:
            raise UsageError(f'--fallback must be one of {", ".join(FALLBACKS)}, not "{fallback}"')
        self.sending = sending
        self.receiving = receiving
        self.forward = forward
        self.reverse = reverse
        self.reverse_mirror = reverse_mirror
        self.fallback = fallback
        self._spans: dict[tuple[str, int, int, int], bool | None] = {}
        self._collecting: list[tuple[str, int, int, int]] | None = None
        if reverse:
            self._inverse = {t: s for s, t in forward.topics.items()}
            self.topics = set(self._inverse) | set(reverse_mirror.topics if reverse_mirror else ())
        else:
            self.topics = set(forward.topics)

    def covers(self, topic: str) -> bool:
        return topic in self.topics

    def translate(self, topic: str, partition: int, committed: int) -> Routed:
        if not self.reverse:
            to_topic = self.forward.topics[topic]
            pmap = self.forward.get(topic, partition)
            if pmap is None:
                return Routed(to_topic, _unmapped(self.forward.name), self.forward.name)
            routed = Routed(to_topic, translate(pmap, committed), self.forward.name)
            routed = self._markers_only(routed, topic, partition, committed, pmap.source_high,
                                        lambda o: translate(pmap, o))
            return self._maybe_fallback(routed, topic, partition, committed)
        source_topic = self._inverse.get(topic)
        forward_map = self.forward.get(source_topic, partition) if source_topic else None
        reverse_map = None
        reverse_topic = None
        if self.reverse_mirror is not None and topic in self.reverse_mirror.topics:
            reverse_map = self.reverse_mirror.get(topic, partition)
            reverse_topic = self.reverse_mirror.topics[topic]
        which, result = translate_reverse_via(forward_map, reverse_map, committed)
        if which == "reverse-mirror":
            routed = Routed(reverse_topic, result, self.reverse_mirror.name)
            routed = self._markers_only(routed, topic, partition, committed, reverse_map.source_high,
                                        lambda o: translate(reverse_map, o))
        else:
            routed = Routed(source_topic or reverse_topic, result, self.forward.name)
            if forward_map is not None:
                routed = self._markers_only(routed, topic, partition, committed, forward_map.target_high,
                                            lambda o: translate_reverse(forward_map, o))
        return self._maybe_fallback(routed, topic, partition, committed)

    def prepare(self, committed: list[tuple[str, int, int]]) -> None:
        """Check at once every span a batch of translations will ask `_markers_only` about."""
        self._collecting = []
        try:
            for topic, partition, offset in committed:
                if self.covers(topic):
                    self.translate(topic, partition, offset)
            wanted = [s for s in self._collecting if s not in self._spans]
        finally:
            self._collecting = None
        self._spans.update(timestamps.spans_with_records(self.sending, wanted))

    def _markers_only(self, routed: Routed, topic: str, partition: int, committed: int, high: int | None,
                      at: Callable[[int], Translation]) -> Routed:
        """An offset past the mapped end is still exact when only non-records lie in between.

        A consumer commits after the trailing transaction marker of its partition; if the
        sending log holds no committed record in [mapped end, committed), that offset is a gap
        at the end (rule 2), which the map alone cannot see.  Checked on the sending cluster,
        below its last stable offset only: an open transaction may still add records.
        """
        if routed.translation.status != NOT_YET or high is None or committed <= high:
            return routed
        span = (topic, partition, high, committed)
        if self._collecting is not None:
            self._collecting.append(span)
            return routed
        if span not in self._spans:  # many groups sit at the same end: read each span once
            self._spans[span] = timestamps.has_records(self.sending, topic, partition, high, committed)
        if self._spans[span] is not False:
            return routed
        end = at(high)
        return Routed(routed.to_topic, Translation(
            GAP, end.offset, 0, f"offsets {high}..{committed - 1} hold no records (transaction markers): "
            "same as the mirrored end"), routed.via)

    def _maybe_fallback(self, routed: Routed, topic: str, partition: int, committed: int) -> Routed:
        if routed.translation.status != BEFORE_START or self.fallback != "timestamp" or self._collecting is not None:
            return routed
        found = timestamps.timestamp_at(self.sending, topic, partition, committed)
        if found is None:
            return routed
        at, ts = found
        offset = timestamps.offset_for_timestamp(self.receiving, routed.to_topic, partition, ts)
        note = (f"first {routed.to_topic}[{partition}] record with timestamp >= {ts} "
                f"(timestamp of {topic}[{partition}]@{at}); {routed.translation.note}")
        return Routed(routed.to_topic, approximate(offset, note), routed.via)


def _unmapped(mirror: str) -> Translation:
    return Translation("not-yet", None, None, f'mirror "{mirror}" has not mapped this partition yet')


def build_route(state: State, mirror: str, source: ClusterProfile, target: ClusterProfile,
                reverse: bool = False, reverse_mirror: str | None = None, fallback: str = "none") -> Route:
    """The route for mirror `mirror` between its source and target clusters.

    `source`/`target` are the mirror's own source and target; `reverse` swaps sending and
    receiving.  `reverse_mirror` names the rollback mirror explicitly; by default a mirror
    recorded from `target` back to `source` is used when exactly one exists.
    """
    record = mirror_record(state, mirror)
    forward = MirrorMaps(mirror, record.topics if record else {}, state, map_cluster=target)
    if not forward.topics:
        raise UsageError(
            f'no mirror named "{mirror}" is recorded in the state database or on the target; '
            "run `migrate mirror` first, or pass --name")
    if not reverse:
        return Route(source, target, forward, fallback=fallback)
    back = None
    if reverse_mirror is None and record is not None:
        candidates = reverse_mirrors(state, record)
        if len(candidates) > 1:
            raise UsageError(f'several reverse mirrors of "{mirror}" exist ({", ".join(candidates)}); '
                             "pass --reverse-mirror NAME")
        reverse_mirror = candidates[0] if candidates else None
    if reverse_mirror is not None:
        back_record = mirror_record(state, reverse_mirror)
        back = MirrorMaps(reverse_mirror, back_record.topics if back_record else {}, state, map_cluster=source)
        if not back.topics:
            raise UsageError(f'reverse mirror "{reverse_mirror}" is not recorded; run it first or drop --reverse-mirror')
    return Route(target, source, forward, reverse=True, reverse_mirror=back, fallback=fallback)


def route_for(state: State, mirror: str, resolve: Callable[[str | None, str], ClusterProfile],
              source: str | None = None, target: str | None = None, reverse: bool = False,
              reverse_mirror: str | None = None, fallback: str = "none") -> Route:
    """A route whose clusters default to the ones recorded for the mirror.

    `resolve(spec, role)` turns a cluster spec into a profile (the CLI's config resolution);
    explicit `source`/`target` specs win over the recorded ones (needed on a machine whose
    state does not know the mirror: the maps are then read from the target's map topic).
    """
    record = mirror_record(state, mirror)
    if (record is None or not record.source) and not (source and target):
        raise UsageError(
            f'no mirror named "{mirror}" is recorded in the state database {state.path}; pass --name, or '
            "--source and --target to read its map from the target cluster")
    source_profile = resolve(source or (record.source if record else None) or None, "source")
    target_profile = resolve(target or (record.target if record else None) or None, "target")
    for profile in (source_profile, target_profile):  # fail at once, as every other command does
        kafka.check_reachable(profile)
    return build_route(state, mirror, source_profile, target_profile, reverse, reverse_mirror, fallback)


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


def translate_summary(rows: list[GroupOffset]) -> str:
    """One line counting the group partitions of `offsets translate` by status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    groups = len({row.group for row in rows})
    kinds = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"{len(rows)} committed partition{'s' if len(rows) != 1 else ''} of {groups} "
            f"group{'s' if groups != 1 else ''}: {kinds or 'none'}")


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


PARTITION_KINDS = ("committed", "would commit", "already in sync", "not mirrored", "not yet mirrored", "refused")


def partition_kind(result: GroupSync, change: OffsetChange) -> str:
    """What happened to one committed partition of a group, in the words of the summary."""
    if change.action == NOT_MIRRORED:
        return "not mirrored"
    if change.action == UNCHANGED:
        return "already in sync"
    if change.action == UNTRANSLATABLE and change.status == NOT_YET:
        return "not yet mirrored"
    if result.outcome in ("refused", "skipped") or change.action in (UNTRANSLATABLE, REFUSED_REWIND):
        return "refused"
    return "would commit" if result.outcome == "would-change" else "committed"


def summary(results: list[GroupSync], receiving: str) -> str:
    """One line saying what a sync did to every group and every committed partition, for people."""
    outcomes: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for result in results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        for change in result.changes:
            kind = partition_kind(result, change)
            kinds[kind] = kinds.get(kind, 0) + 1
    total = len(results)
    groups = f'{total} group{"s" if total != 1 else ""}'
    if total and outcomes.get("unchanged", 0) == total and set(kinds) <= {"already in sync"}:
        return f'nothing to change: all {groups} already in sync on "{receiving}"'
    parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    partitions = ", ".join(f"{kinds[k]} {k}" for k in PARTITION_KINDS if kinds.get(k)) or "none"
    return f'{groups}: {parts}; partitions: {partitions} on "{receiving}"'
