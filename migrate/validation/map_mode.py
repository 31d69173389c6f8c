"""Map mode: compare each mirrored partition with its target through the mirror's offset map.

Small partitions are read in bulk, many per consumer assignment, with bounded memory; big
ones partition by partition, in worker processes once there is enough to hash (`parallel`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from migrate import kafka
from migrate.errors import UsageError
from migrate.mirror import registry
from migrate.mirror.registry import choose_mirror, recorded_mirrors
from migrate.mirror.spec import DEFAULT_NAME as DEFAULT_MIRROR
from migrate.offset_maps.topic import map_topic_name
from migrate.state import State
from migrate.validation.filters import _topic_filter
from migrate.validation.map_compare import _MapJob, _MapPartition
from migrate.validation.reading import NO_PROGRESS_TIMEOUT, READER_SETTINGS
from migrate.validation.runs import _cursors, _moves_cursors, _save_cursors
from migrate.validation.spec import ValidateSpec
from migrate.validation.workers import _run_in_processes, _run_in_threads
from migrate.validators.divergence import Tally

# Map mode: partitions with at most this many records on each side are read in bulk, many per
# consumer assignment, up to PREFETCH_TOTAL records held at once (bounded memory).
PREFETCH_MAX, PREFETCH_TOTAL = 5_000, 500_000


def _load_partition_maps(spec: ValidateSpec, state: State) -> list[_MapPartition]:
    assert spec.mirror is not None  # map mode runs on a spec resolve_mirror has named the mirror of
    maps = registry.open_maps(state, spec.mirror, spec.target)
    return [_MapPartition(t, p, target_topic or t, pmap) for (t, p), (pmap, target_topic) in sorted(maps.items())]


def _has_map(spec: ValidateSpec, state: State) -> bool:
    assert spec.mirror is not None  # resolve_mirror asks about a named mirror only
    if registry.local_progress(state, spec.mirror):
        return True
    return map_topic_name(spec.mirror) in kafka.list_topics(spec.target)


def resolve_mirror(spec: ValidateSpec, state: State) -> ValidateSpec:
    """Map mode needs a mirror that exists: named, or the only one recorded; never a silent key-mode fallback."""
    if spec.mirror is None:
        if not recorded_mirrors(state) and _has_map(replace(spec, mirror=DEFAULT_MIRROR), state):
            return replace(spec, mirror=DEFAULT_MIRROR)  # a state that never ran it: the map on the target
        return replace(spec, mirror=choose_mirror(state, None))
    if spec.mirror in recorded_mirrors(state) or _has_map(spec, state):
        return spec
    return replace(spec, mirror=choose_mirror(state, spec.mirror))  # raises, naming the mirrors that exist


def _validate_map(spec: ValidateSpec, state: State, tally: Tally, scope: str) -> dict:
    wanted = _topic_filter(spec.topics)
    parts = [p for p in _load_partition_maps(spec, state) if wanted(p.topic)]
    if not parts:
        raise UsageError(f'mirror "{spec.mirror}" has no offset map for the selected topics; '
                         "run migrate mirror first, pass --name, or use --match key")
    target_topics = kafka.list_topics(spec.target)
    source_ends = kafka.partition_ends(spec.source, [(p.topic, p.partition) for p in parts])
    present = [(p.target_topic, p.partition) for p in parts
               if p.target_topic in target_topics and p.partition < target_topics[p.target_topic].partitions]
    target_ends = kafka.partition_ends(spec.target, present)
    cursors = _cursors(state, scope) if spec.incremental else {}
    jobs = []
    for part in parts:
        tally.topic(part.topic, part.target_topic, part.partition)
        src_end = source_ends[(part.topic, part.partition)]
        tgt_end = target_ends.get((part.target_topic, part.partition))
        pmap = part.pmap
        s_lo = max(src_end.low, pmap.source_low if pmap.source_low is not None else src_end.low)
        t_lo = tgt_end.low if tgt_end else 0
        cursor = cursors.get((part.topic, part.partition))
        if cursor is not None:
            s_lo, t_lo = max(s_lo, cursor[0]), max(t_lo, cursor[1])
        t_hi = tgt_end.high if tgt_end else t_lo
        jobs.append(_MapJob(part, s_lo, src_end.high, t_lo, t_hi))
    jobs.sort(key=lambda j: j.source_hi - j.source_lo, reverse=True)  # biggest first: workers finish together
    workers = max(1, min(spec.parallel, len(jobs)))
    # Small partitions are read in bulk, in threads (reading dominates); big ones per partition,
    # in worker processes once there is enough to hash that every core helps.
    small = [j for j in jobs if _small(j)]
    big = [j for j in jobs if not _small(j)]
    outcomes = []
    big_volume = sum(max(0, j.source_hi - j.source_lo) for j in big)
    if big and workers > 1 and big_volume >= spec.processes_from:
        outcomes += _run_in_processes(spec, big, min(workers, len(big)))
    elif big:
        outcomes += _run_in_threads(spec, big, min(workers, len(big)))
    for batch in _prefetch_batches(small):
        _prefetch(spec, batch)
        outcomes += _run_in_threads(spec, batch, max(1, min(spec.parallel, len(batch))))
    stats = {"partitions": 0, "windows": 0, "windows_differing": 0}
    new_cursors: dict[tuple[str, int], tuple[int, int]] = {}
    for own, own_stats, own_cursors in outcomes:
        tally.merge(own)
        for key in stats:
            stats[key] += own_stats[key]
        new_cursors.update(own_cursors)
    if _moves_cursors(spec):
        _save_cursors(state, scope, new_cursors)
    return stats


def _small(job: _MapJob) -> bool:
    return max(job.source_hi - job.source_lo, job.target_hi - job.target_lo) <= PREFETCH_MAX


def _prefetch_batches(jobs: list[_MapJob]) -> Iterator[list[_MapJob]]:
    """Small jobs in groups of at most PREFETCH_TOTAL records held at once."""
    group: list[_MapJob] = []
    held = 0
    for job in jobs:
        size = max(0, job.source_hi - job.source_lo) + max(0, job.target_hi - job.target_lo)
        if group and held + size > PREFETCH_TOTAL:
            yield group
            group, held = [], 0
        group.append(job)
        held += size
    if group:
        yield group


def _prefetch(spec: ValidateSpec, small: list[_MapJob]) -> None:
    if len(small) < 2:
        return
    source = kafka.read_ranges(spec.source, {(j.part.topic, j.part.partition): (j.source_lo, j.source_hi)
                                             for j in small}, timeout=NO_PROGRESS_TIMEOUT, eof_ends=True,
                               settings=READER_SETTINGS)
    target = kafka.read_ranges(spec.target, {(j.part.target_topic, j.part.partition): (j.target_lo, j.target_hi)
                                             for j in small}, timeout=NO_PROGRESS_TIMEOUT, eof_ends=True,
                               settings=READER_SETTINGS)
    for job in small:
        job.prefetched = (source[(job.part.topic, job.part.partition)],
                          target[(job.part.target_topic, job.part.partition)])
