"""Running parity validation against two clusters, and remembering each run.

This package owns the Kafka side of `migrate validate`: it plans which partitions and offset
ranges to compare, streams each side with its own assign-only consumer (no group joins, no
commits on the user's clusters), feeds the pure comparers of `migrate.validators`, and records
the run and the incremental cursors in the state database.  One module per idea:

    spec          ValidateSpec: what to compare, and how
    times         parse_time, iso_ms: durations and ISO-8601 times
    reading       read_batches, read_partition: one partition in batches, assign-only consumers
    filters       which topics and records a run compares (time range, sample)
    runs          the runs and cursors in the state: history, run_summary, run_cursors
    map_mode      compare through the mirror's offset map (resolve_mirror)
    map_compare   one mapped partition, window by window; a job loop per pair of consumers
    workers       map jobs at once: threads, or forked processes for large runs
    key_mode      compare by record identity
    run           run_validation: check, compare, record

Memory stays bounded whatever the window size or volume: each side is read partition by
partition in batches from a small prefetch queue; map mode keeps two hash states per window
(re-reading a differing window through separate consumers to locate the divergence); key
mode spills digests to a temporary SQLite file.  Large map-mode runs compare partitions in
forked worker processes (`parallel`), small ones in threads.

The names below are the package's public ones, importable from `migrate.validation`.
"""

from migrate.validation.map_mode import PREFETCH_MAX, PREFETCH_TOTAL, resolve_mirror
from migrate.validation.reading import (NO_PROGRESS_TIMEOUT, READ_BATCH, READER_SETTINGS, REREAD_SETTINGS,
                                        read_batches, read_partition)
from migrate.validation.run import check_spec, resolve_mode, run_validation
from migrate.validation.runs import RunRecord, history, run_cursors, run_summary, scope_of
from migrate.validation.spec import ValidateSpec
from migrate.validation.times import iso_ms, parse_time

__all__ = [
    "NO_PROGRESS_TIMEOUT", "PREFETCH_MAX", "PREFETCH_TOTAL", "READER_SETTINGS", "READ_BATCH", "REREAD_SETTINGS",
    "RunRecord", "ValidateSpec", "check_spec", "history", "iso_ms", "parse_time", "read_batches",
    "read_partition", "resolve_mirror", "resolve_mode", "run_cursors", "run_summary", "run_validation", "scope_of",
]
