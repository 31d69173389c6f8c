"""Comparing mapped partitions, job after job, with one pair of consumers per worker.

Two hash states per window; a differing window is re-read through separate consumers to
locate the divergence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from migrate.offset_maps.runs import PartitionMap
from migrate.validation.filters import _include
from migrate.validation.reading import _items, _Readers, read_batches
from migrate.validation.spec import ValidateSpec
from migrate.validators import windows
from migrate.validators.divergence import Tally


@dataclass
class _MapPartition:
    topic: str
    partition: int
    target_topic: str
    pmap: PartitionMap


@dataclass
class _MapJob:
    part: _MapPartition
    source_lo: int
    source_hi: int
    target_lo: int
    target_hi: int
    prefetched: tuple[list, list] | None = None  # (source, target) messages read in bulk


def _run_jobs(spec: ValidateSpec, next_job: Callable[[], "_MapJob | None"]) -> tuple[Tally, dict, dict]:
    """Validate jobs until there are none left, with one pair of consumers; (tally, stats, cursors)."""
    tally = Tally(spec.max_examples)
    stats = {"partitions": 0, "windows": 0, "windows_differing": 0}
    cursors: dict[tuple[str, int], tuple[int, int]] = {}
    readers = _Readers(spec)
    try:
        while (job := next_job()) is not None:
            part = job.part
            comparer = _compare_map_partition(spec, readers, tally, part, job.source_lo, job.source_hi,
                                              job.target_lo, job.target_hi, job.prefetched)
            job.prefetched = None  # compared: let the messages go
            covered = part.pmap.source_high if part.pmap.source_high is not None else job.source_lo
            source_next = min(job.source_hi, max(job.source_lo, covered))
            target_next = (comparer.first_tail_target if comparer.first_tail_target is not None
                           else max(job.target_lo, job.target_hi))
            stats["partitions"] += 1
            stats["windows"] += comparer.windows
            stats["windows_differing"] += comparer.windows_differing
            cursors[(part.topic, part.partition)] = (source_next, target_next)
    finally:
        readers.close()
    return tally, stats, cursors


def _compare_map_partition(spec: ValidateSpec, readers: _Readers, tally: Tally, part: _MapPartition,
                           s_lo: int, s_hi: int, t_lo: int, t_hi: int,
                           prefetched: tuple[list, list] | None = None) -> windows.WindowComparer:
    include = _include(spec, part.partition)
    pmap = part.pmap
    covered = pmap.source_high if pmap.source_high is not None else -1
    every = include is windows._everything

    def digest_if(offset: int, ts: int) -> bool:  # the unmapped tail is matched by content
        return offset >= covered or include(offset, ts)

    options = spec.options
    if prefetched is not None:
        source_batches, target_batches = iter([prefetched[0]]), iter([prefetched[1]])
    else:
        source_batches = read_batches(readers.get("source"), spec.source, part.topic, part.partition, s_lo, s_hi)
        target_batches = read_batches(readers.get("target"), spec.target, part.target_topic, part.partition,
                                      t_lo, t_hi)
    source = _items(source_batches, options, False, None if every else digest_if)
    target = _items(target_batches, options, False)

    def read_source(lo: int, hi: int | None):
        hi = s_hi if hi is None else min(hi, s_hi)
        return _items(read_batches(readers.get("source", "reread"), spec.source, part.topic, part.partition,
                                   max(lo, s_lo), hi, batch=500), options, True)

    def read_target(lo: int, hi: int | None):
        hi = t_hi if hi is None else min(hi, t_hi)
        return _items(read_batches(readers.get("target", "reread"), spec.target, part.target_topic,
                                   part.partition, max(lo, t_lo), hi, batch=500), options, True)

    reread = windows.make_reread(read_source, read_target, pmap, include, include)
    return windows.compare_partition(part.topic, part.partition, source, target, pmap, tally, reread,
                                     spec.window, options, include, include)
