"""Running parity validation against two clusters, and remembering each run.

This module owns the Kafka side of `migrate validate`: it plans which partitions and offset
ranges to compare, streams each side with its own assign-only consumer (no group joins, no
commits on the user's clusters), feeds the pure comparers of `migrate.validators`, and records
the run and the incremental cursors in the state database.

Memory stays bounded whatever the window size or volume: each side is read partition by
partition in batches from a small prefetch queue; map mode keeps two hash states per window
(re-reading a differing window through separate consumers to locate the divergence); key
mode spills digests to a temporary SQLite file.  Large map-mode runs compare partitions in
forked worker processes (`parallel`), small ones in threads.

Ranges by time (`--since/--until`) are applied client-side, by filtering on each record's
own timestamp while streaming: some platforms answer ListOffsets-by-time from batch write
times rather than record timestamps (Tansu deviation 2), so the broker's answer is not used.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import gc
import json
import multiprocessing
import queue
import re
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

import xxhash
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from migrate import kafka
from migrate.config import ClusterProfile, redact_text
from migrate.errors import KafkaOperationError, MigrateError, UsageError
from migrate.mirror.spec import DEFAULT_NAME as DEFAULT_MIRROR
from migrate.mirror.registry import choose_mirror, recorded_mirrors
from migrate.offset_maps.runs import PartitionMap
from migrate.mirror import registry
from migrate.offset_maps.topic import map_topic_name
from migrate.records import from_message
from migrate.state import State
from migrate.validators import windows
from migrate.validators.digest import DEFAULT, DigestOptions, encode
from migrate.validators.divergence import Tally, ValidationResult
from migrate.validators.keyed import SOURCE, TARGET, KeyedComparer, identity_of

READ_BATCH = 2000
# Map mode: partitions with at most this many records on each side are read in bulk, many per
# consumer assignment, up to PREFETCH_TOTAL records held at once (bounded memory).
PREFETCH_MAX, PREFETCH_TOTAL = 5_000, 500_000
NO_PROGRESS_TIMEOUT = 60.0
# Small prefetch queues keep memory flat; a window re-read needs even less.  Some platforms
# (noida-db 0.2.3, measured) ignore the Fetch size limits and answer with everything from the
# fetch offset to the end of the partition, which librdkafka refuses above
# receive.message.max.bytes: allow the largest response rather than stall (memory then follows
# that platform's response size, not ours).
READER_SETTINGS = {"enable.partition.eof": True, "auto.offset.reset": "earliest",
                   "queued.max.messages.kbytes": 16384, "fetch.max.bytes": 8 << 20,
                   "max.partition.fetch.bytes": 4 << 20, "fetch.wait.max.ms": 50,
                   "receive.message.max.bytes": 2_147_483_647,
                   # noida-db also ignores the Fetch max wait: a consumer whose fetcher is at the
                   # end of a partition sends empty fetches in a busy loop (measured: 0.17 CPU-s per
                   # second in the client, more in the broker).  Backing off while enough is queued
                   # stops that loop for all but the last few thousand records of a partition.
                   "queued.min.messages": 20000, "fetch.queue.backoff.ms": 20}
REREAD_SETTINGS = {**READER_SETTINGS, "queued.max.messages.kbytes": 2048, "max.partition.fetch.bytes": 1 << 20,
                   "fetch.max.bytes": 1 << 20}


@dataclass(frozen=True)
class ValidateSpec:
    """What to validate and how; `source_spec`/`target_spec` are what the user typed (for history)."""

    source: ClusterProfile
    target: ClusterProfile
    source_spec: str
    target_spec: str
    topics: tuple[str, ...] = ()
    match: str | None = None  # "map" (also None) or "key"; key mode only when asked for
    mirror: str | None = None  # map mode: None means the only mirror the state knows
    since_ms: int | None = None
    until_ms: int | None = None
    incremental: bool = False
    sample: float = 1.0
    options: DigestOptions = DEFAULT
    id_header: str | None = None
    window: int = 10_000
    max_examples: int = 10
    parallel: int = 4  # map mode: partitions compared at once, each with its own pair of consumers
    processes_from: int = 200_000  # map mode: records at which the workers are processes, not threads


@dataclass(frozen=True)
class RunRecord:
    """One past run as `migrate validate history` lists it."""

    id: int
    started_at: str
    mode: str
    topics: str
    range_from: str | None
    range_to: str | None
    records_compared: int
    divergences: int
    duration_s: float | None
    result: str
    scope: str
    change: str | None = None  # divergences compared with the previous run of the same scope


# --- parsing -----------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: float | None = None) -> int:
    """`24h`, `30m`, `7d` (that long before now) or an ISO-8601 time; milliseconds since the epoch."""
    now = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        return int((now - float(match.group(1)) * _UNITS[match.group(2).lower()]) * 1000)
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f'cannot read time "{text}"; use a duration like 24h, 30m, 7d or an ISO time '
                         "like 2026-11-20T00:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


def iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _topic_filter(patterns: Sequence[str]) -> Callable[[str], bool]:
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as exc:
        raise UsageError(f"--topics: invalid regular expression ({exc})") from exc
    if not compiled:
        return lambda name: not name.startswith("__")
    return lambda name: any(c.fullmatch(name) for c in compiled)


# --- reading -------------------------------------------------------------------------------------


def read_batches(client: Consumer, profile: ClusterProfile, topic: str, partition: int, lo: int,
                 hi: int | None, batch: int = READ_BATCH) -> Iterator[list]:
    """Lists of messages of one partition with offsets in [lo, hi) (hi None: up to the current end).

    Ends early at end-of-partition: a partition that shrank since its end was read (a broker
    that lost data) yields what it still has, and the comparers report the rest as missing.
    """
    if hi is not None and lo >= hi:
        return
    client.assign([TopicPartition(topic, partition, lo)])
    try:
        yield from _batches(client, profile, topic, partition, hi, batch)
    finally:
        # A consumer left assigned at the end of a partition keeps fetching (busily, on a
        # platform that ignores the Fetch max wait): stop it as soon as the range is read.
        try:
            client.unassign()
        except (KafkaException, RuntimeError):
            pass


def _batches(client: Consumer, profile: ClusterProfile, topic: str, partition: int, hi: int | None,
             batch: int) -> Iterator[list]:
    last_progress = time.monotonic()
    while True:
        try:
            # A short wait: consume() waits out its whole timeout unless the batch fills, and most
            # partitions of an estate hold less than a batch (0.5 s here cost 80 s at 200 partitions).
            messages = client.consume(batch, timeout=0.05)
        except KafkaException as exc:
            raise kafka.fail(profile, f"reading {topic}[{partition}]", exc) from exc
        if messages:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > NO_PROGRESS_TIMEOUT:
            raise KafkaOperationError(f'reading {topic}[{partition}] on cluster "{profile.name}" made no '
                                      f"progress for {NO_PROGRESS_TIMEOUT:.0f}s")
        good = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if message.partition() == partition and message.topic() == topic:
                        if good:
                            yield good
                        return
                    continue
                if error.fatal() or not error.retriable():
                    raise KafkaOperationError(f'reading {topic}[{partition}] on cluster "{profile.name}" '
                                              f"failed: {redact_text(error.str())}")
                continue
            offset = message.offset()
            if hi is not None and offset >= hi:
                if good:
                    yield good
                return
            good.append(message)
            if hi is not None and offset + 1 >= hi:
                yield good
                return
        if good:
            yield good


def read_partition(client: Consumer, profile: ClusterProfile, topic: str, partition: int, lo: int,
                   hi: int | None, batch: int = READ_BATCH) -> Iterator:
    """Messages of one partition with offsets in [lo, hi); see read_batches."""
    for messages in read_batches(client, profile, topic, partition, lo, hi, batch):
        yield from messages


def _items(batches: Iterator[list], options: DigestOptions, with_records: bool, digest_if=None) -> Iterator[tuple]:
    """Messages as comparer items: (offset, digest, timestamp, key, record or None)."""
    digest = xxhash.xxh3_128_digest
    if digest_if is None and not with_records:  # the hot path of a validation: kept flat
        for messages in batches:
            for m in messages:
                ts = m.timestamp()[1]
                key = m.key()
                yield (m.offset(), digest(encode(key, m.value(), m.headers() or (), ts, options)), ts, key, None)
        return
    for messages in batches:
        for m in messages:
            ts = m.timestamp()[1]
            key = m.key()
            offset = m.offset()
            if digest_if is None or digest_if(offset, ts):
                d = digest(encode(key, m.value(), m.headers() or (), ts, options))
            else:
                d = b""
            yield (offset, d, ts, key, from_message(m) if with_records else None)


class _Readers:
    """The consumers of one run, created on first use and closed together."""

    def __init__(self, spec: ValidateSpec):
        self.spec = spec
        self._clients: dict[tuple[str, str], Consumer] = {}

    def get(self, side: str, purpose: str = "main") -> Consumer:
        key = (side, purpose)
        if key not in self._clients:
            profile = self.spec.source if side == "source" else self.spec.target
            settings = READER_SETTINGS if purpose == "main" else REREAD_SETTINGS
            self._clients[key] = kafka.consumer(profile, **settings, **{"isolation.level": "read_committed"})
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            try:
                client.close()
            except (KafkaException, RuntimeError):
                pass
        self._clients.clear()


# --- filters ---------------------------------------------------------------------------------------


def _threshold(rate: float) -> int:
    return min(1 << 64, int(rate * (1 << 64)))


def _include(spec: ValidateSpec, partition: int) -> Callable[[int, int], bool]:
    """Which records (by offset and timestamp) this run compares: time range, then sample."""
    since, until = spec.since_ms, spec.until_ms
    limit = _threshold(spec.sample)
    sampled = spec.sample < 1.0

    if since is None and until is None and not sampled:
        return windows._everything

    def include(offset: int, ts: int) -> bool:
        if since is not None and ts < since:
            return False
        if until is not None and ts >= until:
            return False
        if sampled and xxhash.xxh64_intdigest(offset.to_bytes(8, "big"), seed=partition) >= limit:
            return False
        return True

    return include


# --- cursors and history -----------------------------------------------------------------------------


def scope_of(spec: ValidateSpec, mode: str) -> str:
    if mode == "map":
        return f"map:{spec.mirror}"
    return f"key:{spec.source_spec}->{spec.target_spec}" + (f"#{spec.id_header}" if spec.id_header else "")


def _cursors(state: State, scope: str) -> dict[tuple[str, int], tuple[int, int]]:
    rows = state.db.execute("SELECT topic, partition, source_next, target_next FROM validation_cursors "
                            "WHERE scope = ?", [scope]).fetchall()
    return {(t, p): (s, g) for t, p, s, g in rows}


def run_cursors(state: State, run_id: int) -> dict[tuple[str, int], tuple[int, int]]:
    """The incremental cursors of the scope a run belongs to (where the next run starts)."""
    row = state.db.execute("SELECT scope FROM validation_runs WHERE id = ?", [run_id]).fetchone()
    return _cursors(state, row[0]) if row else {}


def _save_cursors(state: State, scope: str, cursors: dict[tuple[str, int], tuple[int, int]]) -> None:
    now = _now_iso()
    with state.transaction() as db:
        db.conn.executemany(
            "INSERT INTO validation_cursors (scope, topic, partition, source_next, target_next, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, topic, partition) DO UPDATE SET "
            "source_next = excluded.source_next, target_next = excluded.target_next, updated_at = excluded.updated_at",
            [(scope, t, p, s, g, now) for (t, p), (s, g) in cursors.items()])


def _moves_cursors(spec: ValidateSpec) -> bool:
    """Incremental runs move the cursors, and so does a full run (it checked everything so far)."""
    return spec.incremental or (spec.since_ms is None and spec.until_ms is None and spec.sample >= 1.0)


def _start_run(state: State, spec: ValidateSpec, mode: str, scope: str, started: str) -> int:
    with state.transaction() as db:
        cursor = db.execute(
            "INSERT INTO validation_runs (started_at, source, target, topics, mode, range_from, range_to, "
            "result, scope, incremental) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            [started, redact_text(spec.source_spec), redact_text(spec.target_spec), json.dumps(list(spec.topics)),
             mode, _range_from(spec), _range_to(spec, started), scope, int(spec.incremental)])
        return int(cursor.lastrowid)


def _range_from(spec: ValidateSpec) -> str:
    if spec.incremental:
        return "last run"
    return iso_ms(spec.since_ms) or "beginning"


def _range_to(spec: ValidateSpec, started: str) -> str:
    return iso_ms(spec.until_ms) or started


def _finish_run(state: State, run_id: int, result: ValidationResult | None, error: str | None,
                duration: float) -> None:
    with state.transaction() as db:
        if result is None:
            db.execute("UPDATE validation_runs SET finished_at = ?, duration_s = ?, result = 'error', error = ? "
                       "WHERE id = ?", [_now_iso(), duration, error, run_id])
            return
        db.execute(
            "UPDATE validation_runs SET finished_at = ?, records_compared = ?, divergences = ?, duration_s = ?, "
            "result = ?, counts = ?, summary = ? WHERE id = ?",
            [_now_iso(), result.records_compared, result.divergences, duration,
             "parity" if result.parity else "divergence", json.dumps(result.counts),
             json.dumps(result.as_dict(), default=str), run_id])


def history(state: State, limit: int = 50, scope: str | None = None) -> list[RunRecord]:
    """Past runs, newest first, each with its change in divergences against the previous run of its scope."""
    where, args = ("WHERE scope = ?", [scope]) if scope else ("", [])
    rows = state.db.execute(
        f"SELECT id, started_at, mode, topics, range_from, range_to, records_compared, divergences, "
        f"duration_s, result, scope FROM validation_runs {where} ORDER BY id DESC LIMIT ?", [*args, limit + 1]
    ).fetchall()
    records = [RunRecord(*row[:3], ",".join(json.loads(row[3])) or "(all)", *row[4:]) for row in rows]
    out = []
    for run in records[:limit]:
        previous = state.db.execute(
            "SELECT divergences FROM validation_runs WHERE scope = ? AND id < ? AND result IN ('parity', 'divergence') "
            "ORDER BY id DESC LIMIT 1", [run.scope, run.id]).fetchone()
        change = None
        if previous is not None and run.result in ("parity", "divergence"):
            delta = run.divergences - previous[0]
            change = "same" if delta == 0 else f"{delta:+d}"
        out.append(RunRecord(**{**run.__dict__, "change": change}))
    return out


def run_summary(state: State, run_id: int) -> dict | None:
    row = state.db.execute("SELECT summary FROM validation_runs WHERE id = ?", [run_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else None


# --- map mode ------------------------------------------------------------------------------------------


@dataclass
class _MapPartition:
    topic: str
    partition: int
    target_topic: str
    pmap: PartitionMap


def _load_partition_maps(spec: ValidateSpec, state: State) -> list[_MapPartition]:
    maps = registry.open_maps(state, spec.mirror, spec.target)
    return [_MapPartition(t, p, target_topic or t, pmap) for (t, p), (pmap, target_topic) in sorted(maps.items())]


def _has_map(spec: ValidateSpec, state: State) -> bool:
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


@dataclass
class _MapJob:
    part: _MapPartition
    source_lo: int
    source_hi: int
    target_lo: int
    target_hi: int
    prefetched: tuple[list, list] | None = None  # (source, target) messages read in bulk


def _small(job: _MapJob) -> bool:
    return max(job.source_hi - job.source_lo, job.target_hi - job.target_lo) <= PREFETCH_MAX


def _prefetch_batches(jobs: list[_MapJob]) -> Iterator[list[_MapJob]]:
    """Small jobs in groups of at most PREFETCH_TOTAL records held at once."""
    group, held = [], 0
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


def _run_in_threads(spec: ValidateSpec, jobs: list[_MapJob], workers: int) -> list[tuple[Tally, dict, dict]]:
    """Small runs: threads (no start-up cost); a thread waiting on a fetch holds no GIL."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    failures: list[BaseException] = []
    outcomes: list[tuple[Tally, dict, dict]] = []

    def next_job() -> _MapJob | None:
        if failures:
            return None
        try:
            return todo.get_nowait()
        except queue.Empty:
            return None

    def work() -> None:
        try:
            outcomes.append(_run_jobs(spec, next_job))
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=work, name=f"validate-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return outcomes


def _portable(profile: ClusterProfile) -> ClusterProfile:
    return ClusterProfile(profile.name, dict(profile.settings), {k: dict(v) for k, v in profile.role_overrides.items()})


def _process_job(spec: ValidateSpec, job: _MapJob) -> tuple[Tally, dict, dict]:
    remaining = [job]
    return _run_jobs(spec, lambda: remaining.pop() if remaining else None)


def _run_in_processes(spec: ValidateSpec, jobs: list[_MapJob], workers: int) -> list[tuple[Tally, dict, dict]]:
    """Large runs: worker processes, so that hashing and comparing use every core (no shared GIL).

    Forked, not spawned: a spawned child would re-run the command's entry module.  No Kafka
    client of this process is alive at this point (each was closed), so the children start
    clean and make their own consumers.
    """
    gc.collect()  # destroy any client object still waiting for collection before forking
    portable = replace(spec, source=_portable(spec.source), target=_portable(spec.target))
    outcomes = []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_process_job, portable, job) for job in jobs]
        try:
            for future in concurrent.futures.as_completed(futures):
                outcomes.append(future.result())
        except MigrateError as exc:
            for future in futures:
                future.cancel()
            raise type(exc)(redact_text(str(exc))) if type(exc) in (KafkaOperationError, UsageError) else exc
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise KafkaOperationError(f"a validation worker process died ({exc}); rerun with --parallel 1") from None
    return outcomes


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


# --- key mode ------------------------------------------------------------------------------------------


def _key_topics(spec: ValidateSpec, state: State) -> list[tuple[str, str]]:
    wanted = _topic_filter(spec.topics)
    renames = {s: t for s, (t, _n) in registry.topics(state, spec.mirror).items()} if spec.mirror else {}
    names = sorted(t for t in kafka.list_topics(spec.source) if wanted(t))
    if not names:
        raise UsageError("no source topic matches --topics; list them with a Kafka tool or check the pattern")
    return [(name, renames.get(name, name)) for name in names]


def _key_include(spec: ValidateSpec) -> Callable[[object], bool]:
    since, until = spec.since_ms, spec.until_ms
    limit = _threshold(spec.sample)
    sampled = spec.sample < 1.0
    id_header = spec.id_header

    def include(record) -> bool:
        if since is not None and record.timestamp < since:
            return False
        if until is not None and record.timestamp >= until:
            return False
        if sampled:  # sample whole identities, so each sampled sequence is complete
            ident = identity_of(record, id_header)
            if xxhash.xxh64_intdigest(ident or b"") >= limit:
                return False
        return True

    return include


def _validate_key(spec: ValidateSpec, state: State, tally: Tally, scope: str) -> dict:
    pairs = _key_topics(spec, state)
    source_topics = kafka.list_topics(spec.source)
    target_topics = kafka.list_topics(spec.target)
    cursors = _cursors(state, scope) if spec.incremental else {}
    new_cursors: dict[tuple[str, int], tuple[int, int]] = {}
    include = _key_include(spec)
    readers = _Readers(spec)
    stats = {"partitions": 0}
    try:
        with KeyedComparer(tally, spec.options, spec.id_header) as comparer:
            for source_topic, target_topic in pairs:
                tally.topic(source_topic, target_topic)
                if target_topic not in target_topics:  # one topic missing, not every record of it
                    tally.one_sided(source_topic, target_topic, "source")
                    continue
                src_parts = [(source_topic, p) for p in range(source_topics[source_topic].partitions)]
                tgt_parts = ([(target_topic, p) for p in range(target_topics[target_topic].partitions)]
                             if target_topic in target_topics else [])
                src_ends = kafka.partition_ends(spec.source, src_parts)
                tgt_ends = kafka.partition_ends(spec.target, tgt_parts)
                for side, ends, profile, topic in ((SOURCE, src_ends, spec.source, source_topic),
                                                   (TARGET, tgt_ends, spec.target, target_topic)):
                    client = readers.get("source" if side == SOURCE else "target")
                    for (_, partition), end in sorted(ends.items()):
                        previous = cursors.get((source_topic, partition), (-1, -1))[side]
                        lo = max(end.low, previous)
                        messages = read_partition(client, profile, topic, partition, lo, end.high)
                        records = (r for r in map(from_message, messages) if include(r))
                        comparer.add(side, source_topic, records)
                        now = new_cursors.get((source_topic, partition), (-1, -1))
                        new_cursors[(source_topic, partition)] = ((end.high, now[1]) if side == SOURCE
                                                                  else (now[0], end.high))
                        stats["partitions"] += 1
                comparer.compare(source_topic, target_topic)
    finally:
        readers.close()
    if _moves_cursors(spec):
        _save_cursors(state, scope, new_cursors)
    return stats


# --- the run -------------------------------------------------------------------------------------------


def resolve_mode(spec: ValidateSpec) -> str:
    if spec.match in (None, "map"):
        return "map"
    if spec.match == "key":
        return "key"
    raise UsageError(f'--match must be map or key, not "{spec.match}"')


def _cluster_text(profile: ClusterProfile) -> str:
    return f"{profile.name} ({redact_text(profile.bootstrap)})"


def check_spec(spec: ValidateSpec) -> None:
    if spec.incremental and (spec.since_ms is not None or spec.until_ms is not None):
        raise UsageError("--incremental continues from the previous run; it cannot be combined with --since/--until")
    if not 0.0 < spec.sample <= 1.0:
        raise UsageError("--sample must be a rate in (0, 1], e.g. 0.1 to compare one record in ten")
    if spec.since_ms is not None and spec.until_ms is not None and spec.since_ms >= spec.until_ms:
        raise UsageError("--since must be earlier than --until")
    if spec.window < 1:
        raise UsageError("--window must be at least 1")


def run_validation(spec: ValidateSpec, state: State) -> ValidationResult:
    """Validate, record the run in the state, and return its result (never raises on divergence)."""
    check_spec(spec)
    kafka.check_reachable(spec.source)
    kafka.check_reachable(spec.target)
    mode = resolve_mode(spec)
    if mode == "map":
        spec = resolve_mirror(spec, state)
    scope = scope_of(spec, mode)
    started_at = _now_iso()
    run_id = _start_run(state, spec, mode, scope, started_at)
    began = time.monotonic()
    tally = Tally(spec.max_examples)
    try:
        if mode == "map":
            stats = _validate_map(spec, state, tally, scope)
        else:
            stats = _validate_key(spec, state, tally, scope)
    except BaseException as exc:
        _finish_run(state, run_id, None, redact_text(str(exc)) or type(exc).__name__, time.monotonic() - began)
        raise
    duration = time.monotonic() - began
    if spec.sample < 1.0:
        tally.note(f"sampled: about {spec.sample:.0%} of records compared")
    if stats.get("windows_differing"):
        tally.note(f"{stats['windows_differing']} of {stats['windows']} windows differed and were narrowed down")
    result = tally.result(mode, range_from=_range_from(spec), range_to=_range_to(spec, started_at),
                          duration_s=duration, run_id=run_id, started_at=started_at,
                          mirror=spec.mirror if mode == "map" else None,
                          source=_cluster_text(spec.source), target=_cluster_text(spec.target))
    _finish_run(state, run_id, result, None, duration)
    return result
