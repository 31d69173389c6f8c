"""The exact map of one mirrored partition: source offsets to target offsets, as runs.

A run is a stretch where source and target offsets advance together: source offsets
`source_start .. source_start+length-1` became target offsets `target_start ..` in order.
Anything that makes one side skip (a transaction marker or aborted record on the source,
a compacted-away record, our own transaction markers on the target) starts a new run, so a
contiguous partition of a million records is a single run.

Besides the runs, a map knows the span of source positions it accounts for:
- `source_low`: where mirroring of this partition began (the source log start then);
  offsets below it were never mirrored.
- `source_high`: the source consumer position reached: every record below it is mirrored
  (offsets between the last run and `source_high` are gaps: markers, aborted records).
- `target_high`: the target position just after the last mirrored record (plus any of our
  own trailing markers seen by reconciliation).

Invariants: runs are sorted and strictly increasing on both sides, never overlap, and lie
within [source_low, source_high) and below target_high.

Pruning (`prune_below`): a map that follows a live partition for weeks gains a run per commit
that wrote to the partition (each commit leaves a marker on the target, so the next run starts
one target offset later).  Runs whose records are deleted on both clusters (below both log
starts) answer for offsets no consumer can read on either side, so they are dropped.  A run
is dropped only when the run after it starts at or below both log starts: every offset the map
stops answering for is then below both, and every offset above them is answered as before (a
gap before the first kept run would otherwise lose its answer).  The last run is never dropped.
`source_low` stays: a source offset between it and the first kept run reads as a gap before that
run, so it translates to the first kept record, where a consumer resets on either cluster just as
it would at its old answer (both are below the log starts); a re-read still starts no lower than
the source's log start (migrate.mirror.reconcile.safe_read_start).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from migrate.errors import MapOrderError


@dataclass(frozen=True, slots=True)
class Run:
    source_start: int
    target_start: int
    length: int

    @property
    def source_end(self) -> int:  # exclusive
        return self.source_start + self.length

    @property
    def target_end(self) -> int:  # exclusive
        return self.target_start + self.length


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


class PartitionMap:
    def __init__(self, runs: list[Run] | None = None, source_low: int | None = None,
                 source_high: int | None = None, target_high: int | None = None):
        self.runs: list[Run] = sorted(runs or [], key=lambda r: r.source_start)
        self._starts = [r.source_start for r in self.runs]
        self._target_starts = [r.target_start for r in self.runs]
        last = self.runs[-1] if self.runs else None
        first = self.runs[0] if self.runs else None
        self.source_low = source_low if source_low is not None else (first.source_start if first else None)
        self.source_high = _max(source_high, last.source_end if last else None)
        self.target_high = _max(target_high, last.target_end if last else None)
        self.dirty_from = len(self.runs)  # runs at or after this index are not yet saved
        self.head_dirty = False
        self.pruned: list[int] = []  # source starts of runs dropped since the last save

    # --- growing the map -------------------------------------------------------------------

    def start_at(self, source_low: int, target_low: int) -> None:
        """Record where mirroring of an empty map begins."""
        if self.source_low is None:
            self.source_low = source_low
            self.source_high = max(self.source_high or 0, source_low)
            self.target_high = max(self.target_high or 0, target_low)
            self.head_dirty = True

    def append(self, source_offset: int, target_offset: int) -> None:
        self.append_run(source_offset, target_offset, 1)

    def append_run(self, source_start: int, target_start: int, length: int) -> None:
        """Add `length` pairs; extends the last run when both sides continue it."""
        if length <= 0:
            return
        last = self.runs[-1] if self.runs else None
        if last is not None and (source_start < last.source_end or target_start < last.target_end):
            raise MapOrderError(
                f"pair ({source_start}->{target_start}) does not follow the last run "
                f"({last.source_start}->{last.target_start} x{last.length})"
            )
        if self.source_low is None:
            self.source_low = source_start
        if last is not None and source_start == last.source_end and target_start == last.target_end:
            self.runs[-1] = Run(last.source_start, last.target_start, last.length + length)
            self.dirty_from = min(self.dirty_from, len(self.runs) - 1)
        else:
            self.runs.append(Run(source_start, target_start, length))
            self._starts.append(source_start)
            self._target_starts.append(target_start)
            self.dirty_from = min(self.dirty_from, len(self.runs) - 1)
        end = self.runs[-1]
        self.source_high = max(self.source_high or 0, end.source_end)
        self.target_high = max(self.target_high or 0, end.target_end)
        self.head_dirty = True

    def advance(self, source_high: int | None = None, target_high: int | None = None) -> None:
        """Move the accounted-for positions forward (never back) past gaps with no records."""
        if source_high is not None and (self.source_high is None or source_high > self.source_high):
            self.source_high = source_high
            self.head_dirty = True
        if target_high is not None and (self.target_high is None or target_high > self.target_high):
            self.target_high = target_high
            self.head_dirty = True

    def prune_below(self, source_log_start: int, target_log_start: int) -> int:
        """Drop the leading runs deleted on both clusters (see the module docstring); returns how many."""
        runs = self.runs
        drop = 0
        while (drop + 1 < len(runs) and runs[drop + 1].source_start <= source_log_start
               and runs[drop + 1].target_start <= target_log_start):
            drop += 1
        if not drop:
            return 0
        self.pruned.extend(r.source_start for r in runs[:drop])
        del runs[:drop]
        del self._starts[:drop]
        del self._target_starts[:drop]
        self.dirty_from = max(0, self.dirty_from - drop)
        return drop

    def mark_saved(self) -> None:
        self.dirty_from = len(self.runs)
        self.head_dirty = False
        self.pruned = []

    def dirty_runs(self) -> list[Run]:
        return self.runs[self.dirty_from:]

    # --- reading the map ---------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self.runs

    @property
    def next_target(self) -> int | None:
        return self.runs[-1].target_end if self.runs else None

    @property
    def record_count(self) -> int:
        return sum(r.length for r in self.runs)

    def first_gap_below(self, source_offset: int) -> int | None:
        """The first source offset below `source_offset` that is not a mirrored record, or None.

        Everything from there on holds the transaction markers and aborted records we skipped.
        """
        if self.source_low is None or source_offset <= self.source_low:
            return None
        if not self.runs or self.runs[0].source_start > self.source_low:
            return self.source_low
        gap = self.runs[0].source_end
        return gap if gap < source_offset else None

    def run_for_source(self, source_offset: int) -> int | None:
        """Index of the run holding source_offset, or None."""
        i = bisect.bisect_right(self._starts, source_offset) - 1
        if i >= 0 and source_offset < self.runs[i].source_end:
            return i
        return None

    def next_run_after_source(self, source_offset: int) -> int | None:
        """Index of the first run starting after source_offset, or None."""
        i = bisect.bisect_right(self._starts, source_offset)
        return i if i < len(self.runs) else None

    def run_for_target(self, target_offset: int) -> int | None:
        i = bisect.bisect_right(self._target_starts, target_offset) - 1
        if i >= 0 and target_offset < self.runs[i].target_end:
            return i
        return None

    def next_run_after_target(self, target_offset: int) -> int | None:
        i = bisect.bisect_right(self._target_starts, target_offset)
        return i if i < len(self.runs) else None

    def target_of(self, source_offset: int) -> int | None:
        """The target offset of a mirrored source record; None if that offset was not mirrored."""
        i = self.run_for_source(source_offset)
        if i is None:
            return None
        run = self.runs[i]
        return run.target_start + (source_offset - run.source_start)

    def source_of(self, target_offset: int) -> int | None:
        i = self.run_for_target(target_offset)
        if i is None:
            return None
        run = self.runs[i]
        return run.source_start + (target_offset - run.target_start)

    def __repr__(self) -> str:
        return (f"PartitionMap(runs={len(self.runs)}, records={self.record_count}, "
                f"source=[{self.source_low}, {self.source_high}), target_high={self.target_high})")
