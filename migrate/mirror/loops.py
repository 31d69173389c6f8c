"""Loop prevention: a mirror never copies records back to the cluster they came from.

Two mirrors in opposite directions over the same topic names (A -> B and B -> A) copy each
other's copies for ever (measured: 10 records produced on each side grew to 1,810 and 2,540
within seconds).  A failed cutover that leaves the forward mirror running, followed by the
rollback's reverse mirror, is exactly that.  So before a mirror starts, and again at each
metadata refresh while it follows, it looks on the clusters themselves (this works across
machines and state files):

1. a mirror that writes into our source cluster keeps its map topic there
   (`__migrate.<name>.offset-map`);
2. it is running while its source consumer group (`migrate.mirror.<name>`), which lives on
   our target cluster, is active (judged by the group state: Tansu lists no members);
3. it copies topics that we would write into when the topics its group has committed on our
   target cluster (its sources) meet our target topics.

All three hold: the mirror is refused with an error naming the other one.  The check cannot
see a reverse mirror that started in the same second and has committed nothing yet; the
refresh-time check catches it a refresh interval later.

The refresh-time check is skipped while the target is unreachable (a client of this process
lost every target broker in the last minute).  The group calls it makes are coordinator
requests, and librdkafka 2.16 aborts the whole process when the connection drops under one
(`rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0`, librdkafka issue 4605,
unfixed; seen here during a 90 s network cut of the target).  A reverse mirror cannot start
against an unreachable cluster either, so nothing is missed that the next check would find.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from migrate import groups as kgroups
from migrate import kafka
from migrate.errors import KafkaOperationError, MirrorLoop
from migrate.mirror.spec import MirrorSpec

log = logging.getLogger("migrate.mirror")

MAP_PREFIX, MAP_SUFFIX = "__migrate.", ".offset-map"


@dataclass(frozen=True)
class ReverseMirror:
    name: str  # the other mirror
    topics: tuple[str, ...]  # its source topics that our mirror would write into


def mirrors_writing_into(topic_names: Iterable[str]) -> list[str]:
    """Names of the mirrors whose map topic is among a cluster's topics (they write into it)."""
    return sorted(t[len(MAP_PREFIX):-len(MAP_SUFFIX)] for t in topic_names
                  if t.startswith(MAP_PREFIX) and t.endswith(MAP_SUFFIX) and len(t) > len(MAP_PREFIX + MAP_SUFFIX))


def find_reverse(spec: MirrorSpec, source_topic_names: Iterable[str], target_topics: Iterable[str]) -> ReverseMirror | None:
    """A running mirror that reads `target_topics` from our target and writes into our source, or None."""
    wanted = set(target_topics)
    others = mirrors_writing_into(source_topic_names)
    if not others or not wanted:
        return None
    group_of = {f"migrate.mirror.{name}": name for name in others}
    states = kgroups.describe(spec.target, list(group_of))
    running = [group for group, info in states.items() if info.active]
    if not running:
        return None
    committed = kgroups.committed(spec.target, running)
    for group in running:
        overlap = sorted({topic for topic, _p in committed.get(group, {})} & wanted)
        if overlap:
            return ReverseMirror(group_of[group], tuple(overlap))
    return None


UNREACHABLE_WITHIN = 60.0  # seconds since a client here last lost every target broker


def check_no_loop(spec: MirrorSpec, source_topic_names: Iterable[str], target_topics: Iterable[str],
                  while_running: bool = False) -> None:
    """Raise MirrorLoop when a running mirror in the opposite direction copies the same topics."""
    if while_running and kafka.lost_recently(spec.target, UNREACHABLE_WITHIN):
        log.debug("loop check skipped: the target lost every broker within %.0fs", UNREACHABLE_WITHIN)
        return
    try:
        other = find_reverse(spec, source_topic_names, target_topics)
    except KafkaOperationError as exc:
        log.warning("could not check for a mirror running in the opposite direction: %s", exc)
        return
    if other is not None:
        shown = ", ".join(other.topics[:5]) + (f" and {len(other.topics) - 5} more" if len(other.topics) > 5 else "")
        raise MirrorLoop(
            f'mirror "{other.name}" is running in the opposite direction (it reads cluster "{spec.target.name}" '
            f'and writes into cluster "{spec.source.name}") over the same topics ({shown}); mirror "{spec.name}" '
            f"would copy its records back to their source in a loop: stop mirror \"{other.name}\" first"
        )
