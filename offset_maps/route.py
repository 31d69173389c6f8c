"""The route of one direction of one mirror: how a sending partition's offset is translated.

Owns `MirrorMaps` (a mirror's partition maps, opened through the registry) and `Route`: which
sending topics a direction covers, the receiving topic of each (through the recorded topic
mapping, so renamed topics work), and the partition maps it translates through, on top of the
pure rules in `translate.py`.  `build_route` and `route_for` make one from the recorded mirrors.

Directions.  Forward (default): groups on mirror M's source, offsets committed on M's target,
through M's map.  Reverse (`reverse=True`, for rollback): groups on M's target, offsets
committed on M's source.  A target offset at or after where a reverse mirror R (a mirror from
M's target to M's source, such as `rollback`) began reading goes forward through R's map:
those are records produced on the target after cutover, which only R copied back.  Older
offsets go backward through M's map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import UsageError
from migrate.mirror import registry
from migrate.offset_maps import timestamps
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.translate import (
    BEFORE_START, GAP, NOT_YET, Translation, approximate, translate, translate_reverse, translate_reverse_via,
)
from migrate.state import State

FALLBACKS = ("none", "timestamp")


# --- mirrors and their maps ---------------------------------------------------------------------


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
            # translate_reverse_via answers from the reverse mirror only when it has this partition's map
            assert self.reverse_mirror is not None and reverse_map is not None and reverse_topic is not None
            routed = Routed(reverse_topic, result, self.reverse_mirror.name)
            routed = self._markers_only(routed, topic, partition, committed, reverse_map.source_high,
                                        lambda o: translate(reverse_map, o))
        else:
            back_to = source_topic or reverse_topic
            assert back_to is not None  # callers translate only topics the route covers()
            routed = Routed(back_to, result, self.forward.name)
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
    record = registry.get(state, mirror)
    forward = MirrorMaps(mirror, record.topics if record else {}, state, map_cluster=target)
    if not forward.topics:
        raise UsageError(
            f'no mirror named "{mirror}" is recorded in the state database or on the target; '
            "run `migrate mirror` first, or pass --name")
    if not reverse:
        return Route(source, target, forward, fallback=fallback)
    back = None
    if reverse_mirror is None and record is not None:
        candidates = registry.reverse_of(state, record)
        if len(candidates) > 1:
            raise UsageError(f'several reverse mirrors of "{mirror}" exist ({", ".join(candidates)}); '
                             "pass --reverse-mirror NAME")
        reverse_mirror = candidates[0] if candidates else None
    if reverse_mirror is not None:
        back_record = registry.get(state, reverse_mirror)
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
    record = registry.get(state, mirror)
    if (record is None or not record.source) and not (source and target):
        raise UsageError(
            f'no mirror named "{mirror}" is recorded in the state database {state.path}; pass --name, or '
            "--source and --target to read its map from the target cluster")
    source_profile = resolve(source or (record.source if record else None) or None, "source")
    target_profile = resolve(target or (record.target if record else None) or None, "target")
    for profile in (source_profile, target_profile):  # fail at once, as every other command does
        kafka.check_reachable(profile)
    return build_route(state, mirror, source_profile, target_profile, reverse, reverse_mirror, fallback)
