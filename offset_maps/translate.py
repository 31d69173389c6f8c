"""Exact translation of a committed consumer offset through a partition's offset map.

A committed offset C is "the next record to read".  Translating it means finding the
offset on the other cluster from which a consumer reads exactly the records the original
consumer would read next: no record skipped, none read twice.  Because the map holds every
mirrored record's offset pair (as runs, see `runs.py`), every translation is exact; there is
no `offset.lag.max` window as in MirrorMaker 2.

Forward rules (a source group's offset C -> target offset), over a map with `source_low`,
`source_high`, `target_high` and runs:

1. exact        C is a mirrored record's offset (inside a run): the target offset of that record.
2. gap          C falls in a gap (a record compacted away, a transaction marker, an aborted
                record; between runs, before the first run, or between the last run and
                `source_high`): the target offset of the next mirrored record after C, or
                `target_high` when no record after C is mirrored yet (the next record the
                mirror writes lands at or after it, and nothing between is data).
3. end          C == `source_high`, the mirrored end: `target_high`, the end of mirrored data.
4. not-yet      C > `source_high` (or nothing of the partition is mirrored yet): not
                translatable yet; `behind` says how many source offsets the mirror still has
                to cover.  Never guessed.  (The map alone cannot tell that [source_high, C)
                holds only transaction markers; `route.Route` checks the source log for that
                and, when so, answers rule 2 at the end: exact.)
5. before-start C < `source_low`, older than the earliest mapped offset (records that were never
                mirrored: retention, or mirroring began later): reported, no offset.  A
                timestamp fallback exists only on request and is always marked `approximate`
                (see `approximate`; the Kafka side of it lives in `migrate.offsets`).

Reverse rules (a target group's offset T -> source offset), over the same map:

1. exact        T is a mirrored record's target offset: its source offset.
2. gap          T falls between runs or between the last run and `target_high` (our own
                transaction markers on the target): the source offset of the next mirrored
                record after T, or `source_high` when there is none.
3. end          T == `target_high`: `source_high`.
4. not-yet      T > `target_high`: records past the mirrored end on the target have no source
                counterpart in this map (records produced directly on the target after
                cutover); `behind` = T - target_high (with the same marker check as rule 4
                forward: a consumer that read our last transaction commits after its marker,
                past `target_high`).  A reverse mirror (target -> source)
                covers them: translate those offsets FORWARD through the reverse mirror's map
                (`translate_reverse_via`).
5. before-start T < the first run's target offset: target records older than anything this map
                knows (the map does not record where the target partition began, and runs whose
                records both clusters deleted are pruned, runs.py).

`translate_reverse_via` combines the two maps of a rollback: offsets at or after the reverse
mirror's `source_low` (where it began reading the target) go forward through the reverse
mirror's map; older ones go backward through the forward mirror's map, and so does an offset
the reverse mirror has not reached yet but the forward map covers (both maps put a mirrored
record at the same source offset, so either answer is exact).

All functions here are pure: no Kafka, no state.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrate.offset_maps.runs import PartitionMap

EXACT = "exact"
GAP = "gap"
END = "end"
NOT_YET = "not-yet"
BEFORE_START = "before-start"
APPROXIMATE = "approximate"

TRANSLATED = frozenset({EXACT, GAP, END})  # an exact offset to commit
USABLE = frozenset({EXACT, GAP, END, APPROXIMATE})  # an offset exists (approximate on request only)


@dataclass(frozen=True)
class Translation:
    """The answer for one committed offset; `offset` is None unless the status has one."""

    status: str
    offset: int | None
    behind: int | None = None
    note: str = ""

    @property
    def exact(self) -> bool:
        return self.status in TRANSLATED

    @property
    def usable(self) -> bool:
        return self.status in USABLE and self.offset is not None


def translate(pmap: PartitionMap, committed: int) -> Translation:
    """Forward: a source committed offset to the target offset (rules 1-5 of the module doc)."""
    if committed < 0:
        raise ValueError(f"a committed offset is never negative (got {committed})")
    if pmap.source_low is None or pmap.source_high is None or pmap.target_high is None:
        return Translation(NOT_YET, None, None, "nothing of this partition is mirrored yet")
    if committed < pmap.source_low:
        return Translation(
            BEFORE_START, None, None,
            f"offset {committed} is older than the earliest mapped source offset {pmap.source_low} "
            "(never mirrored: removed by retention or before mirroring began)",
        )
    if committed > pmap.source_high:
        behind = committed - pmap.source_high
        return Translation(
            NOT_YET, None, behind,
            f"the mirror has reached source offset {pmap.source_high}, {behind} short of {committed}",
        )
    if committed == pmap.source_high:
        return Translation(END, pmap.target_high, 0, "at the mirrored end")
    target = pmap.target_of(committed)
    if target is not None:
        return Translation(EXACT, target, 0)
    following = pmap.next_run_after_source(committed)
    if following is None:
        return Translation(GAP, pmap.target_high, 0,
                           f"gap after the last mirrored record; no record in [{committed}, "
                           f"{pmap.source_high}) was mirrored")
    run = pmap.runs[following]
    return Translation(GAP, run.target_start, 0,
                       f"gap: next mirrored record is source offset {run.source_start}")


def translate_reverse(pmap: PartitionMap, committed: int) -> Translation:
    """Reverse: a target committed offset back to the source offset through the same map."""
    if committed < 0:
        raise ValueError(f"a committed offset is never negative (got {committed})")
    if pmap.source_high is None or pmap.target_high is None:
        return Translation(NOT_YET, None, None, "nothing of this partition is mirrored yet")
    if pmap.runs and committed < pmap.runs[0].target_start:
        return Translation(
            BEFORE_START, None, None,
            f"target offset {committed} is older than the earliest mapped target offset "
            f"{pmap.runs[0].target_start}",
        )
    if committed > pmap.target_high:
        behind = committed - pmap.target_high
        return Translation(
            NOT_YET, None, behind,
            f"target offset {committed} is {behind} past the mirrored end {pmap.target_high}: those "
            "target records have no source counterpart in this map (produced on the target?); "
            "a reverse mirror covers them",
        )
    if committed == pmap.target_high:
        return Translation(END, pmap.source_high, 0, "at the mirrored end")
    source = pmap.source_of(committed)
    if source is not None:
        return Translation(EXACT, source, 0)
    following = pmap.next_run_after_target(committed)
    if following is None:
        return Translation(GAP, pmap.source_high, 0, "gap after the last mirrored record")
    run = pmap.runs[following]
    return Translation(GAP, run.source_start, 0,
                       f"gap: next mirrored record is target offset {run.target_start}")


def translate_reverse_via(forward: PartitionMap | None, reverse: PartitionMap | None,
                          committed: int) -> tuple[str, Translation]:
    """Reverse with a rollback mirror: ("reverse-mirror"|"forward-map", translation).

    The reverse mirror's map is used forward for offsets it accounts for (at or after where it
    began reading the target); everything older goes back through the forward map.
    """
    if reverse is not None and reverse.source_low is not None and committed >= reverse.source_low:
        answer = translate(reverse, committed)
        if not answer.exact and forward is not None:
            # a rollback mirror still catching up: the forward map may already know the offset
            older = translate_reverse(forward, committed)
            if older.exact:
                return "forward-map", older
        return "reverse-mirror", answer
    if forward is None:
        if reverse is not None and reverse.source_low is not None:
            return "reverse-mirror", translate(reverse, committed)
        return "forward-map", Translation(NOT_YET, None, None, "no map covers this partition")
    return "forward-map", translate_reverse(forward, committed)


def approximate(offset: int, note: str) -> Translation:
    """A timestamp-based answer: never exact, always labelled so."""
    return Translation(APPROXIMATE, offset, None, f"approximate (by timestamp): {note}")
