"""The mirror's metrics: counters fed by the engine's hooks, gauges computed at scrape time.

Counters and histograms (records, bytes, commits, commit duration, retries, replication
latency, group offset syncs) are fed by the engine's hooks once per commit or retry, never
per record.  Everything about where partitions stand (exact lag, freshness, map size,
partitions by state) is computed when Prometheus scrapes, by a custom collector:

- The collector asks the engine for a snapshot and the engine takes it on its next loop turn
  (`tick`), in its own thread, so that nothing of the engine is read while it changes and
  the engine pays one flag test per loop turn when nobody scrapes.  If the engine is busy
  (a rebalance, a slow commit) for longer than `snapshot_timeout`, the previous snapshot is
  served and `migrate_mirror_snapshot_age_seconds` says how old it is.
- **Exact lag** of a partition = its source end minus the map's `source_high` (every source
  offset below it is on the target, committed: a map grows only once its target transaction
  has committed, migrate.mirror.commits).  The source end is the high watermark (the
  last stable offset: the mirror reads read_committed) of the mirror consumer's latest
  Fetch response, never ListOffsets (wrong on some platforms).  A partition the consumer is
  not fetching (retrying, stopped, not fetched yet) is read at scrape time by
  `migrate.metrics.peek`, so its figure is as exact as the others.  A partition with no
  answer yet has no series (never a made-up 0).
- **Freshness** (lag in seconds) = now minus the CreateTime of the oldest source record not
  yet on the target, 0 when the lag is 0.  That record is the first record of the open
  transaction when there is one: the writer remembers that record's timestamp once per
  transaction (no per-record cost).  Otherwise (between transactions, while paused for a
  retry) it is read at scrape time with a bounded read of one record (`peek`), cached per
  offset.  We chose this over remembering the first record after each commit in the engine
  because that would cost a test per record and is lost whenever a writer is dropped, and
  over the last record written (an idle hour before a new record would read as an hour of
  staleness).  A snapshot waits up to `DEFER_S` for partitions between two transactions to
  open the next one, so reads at scrape time are rare while records flow; on platforms that
  ignore Fetch size limits (noida-db) such a read returns up to the partition's end, which is
  why they are avoided and counted (`migrate_mirror_scrape_reads_total`).
- **Replication latency**: once per committed transaction while following (the partition
  reached its end once since it was opened, and the transaction began after that), the
  target's commit acknowledgement time minus the CreateTime of the transaction's oldest
  record: an upper bound for every record of the transaction.  It compares two clocks
  (producer and mirror host): see docs/metrics.md for what clock drift does to it.

- **Config drift** (`migrate_mirror_config_drift`, 1 per topic and key): what the config sync
  (migrate.mirror.configsync) left different after its last round, with the reason as `state`;
  its changes are counted by `migrate_mirror_config_changes_total`, its rounds by
  `migrate_mirror_config_sync_rounds_total`.
- **Byte-rate limit** (--max-bytes-per-second, migrate.mirror.throttle): the limit, the bytes
  taken per lane, the seconds the backfill waited, and the bytes the clients really fetched.

Label sets: `mirror` and `worker` everywhere, `topic` on counters, `partition` only on the
lag, freshness and map-size gauges, and only with detail "partition" (detail "topic" serves
per-topic sums, and the maximum for freshness).  A worker reports only the partitions it
holds, so sums across a fleet of workers are exact.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from migrate.config import ClusterProfile
from migrate.errors import REFUSED_ERRORS
from migrate.metrics.hooks import NoMetrics
from migrate.metrics.peek import Peeker

from migrate.mirror.snapshot import STATES, PartitionView, Snapshot

if TYPE_CHECKING:
    from migrate.mirror.writer import PartitionWriter

Key = tuple[str, int]
MAX_PEEKS = 256  # partitions read per scrape at most (the rest keep no figure until a later scrape)
DEFER_S = 0.5  # how long a snapshot waits for partitions between two transactions to open the next one
COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def retry_reason(text: str) -> str:
    """A few stable reason names for the retries counter (the log line has the details)."""
    lowered = text.lower()
    if any(code.lower() in lowered for code in REFUSED_ERRORS):
        return "record-refused"
    if "not prepared" in lowered:
        return "topic-not-ready"
    if "initialising the transactional producer" in lowered:
        return "fencing"
    if "target write failed" in lowered:
        return "target-write"
    return "reconcile"


@dataclass(frozen=True)
class Figures:
    """What a scrape reports for one partition (None: no answer yet)."""

    lag: int | None
    freshness: float | None


class MirrorMetrics(NoMetrics):
    def __init__(self, registry: CollectorRegistry, source: ClusterProfile, detail: str = "partition",
                 snapshot_timeout: float = 2.0, peek_timeout: float = 2.0):
        self.registry = registry
        self.detail = detail
        self.snapshot_timeout = snapshot_timeout
        self.peek_timeout = peek_timeout
        self.peeker = Peeker(source)
        self.mirror = self.worker = ""
        self._take: Callable[[], Snapshot] | None = None  # the engine's snapshot, while it runs
        self._wanted = threading.Event()
        self._ready = threading.Event()
        self._scrape = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._asked_at = 0.0
        self._following: dict[Key, weakref.ref] = {}
        self._following_next: dict[Key, weakref.ref] = {}
        self._stamps: dict[Key, tuple[int, int | None]] = {}  # scrape side: offset -> its CreateTime
        topic = ["mirror", "worker", "topic"]
        self.records = Counter("migrate_mirror_records", "Records mirrored (committed on the target) by this "
                               "process", topic, registry=registry)
        self.bytes = Counter("migrate_mirror_bytes", "Bytes of record values mirrored by this process", topic,
                             registry=registry)
        self.commits = Counter("migrate_mirror_commits", "Target transactions committed", topic, registry=registry)
        self.commit_seconds = Histogram("migrate_mirror_commit_duration_seconds", "Flush and commit of one target "
                                        "transaction", ["mirror", "worker"], buckets=COMMIT_BUCKETS,
                                        registry=registry)
        self.retries = Counter("migrate_mirror_retries", "Partitions put back for a retry, by reason",
                               topic + ["reason"], registry=registry)
        self.latency = Histogram("migrate_mirror_replication_latency_seconds", "While following: target commit "
                                 "time minus the CreateTime of each committed transaction's oldest record",
                                 ["mirror", "worker"], buckets=LATENCY_BUCKETS, registry=registry)
        self.peeks = Counter("migrate_mirror_scrape_reads", "Partitions read from the source at scrape time "
                             "(not fetched by the mirror, or between two transactions)", ["mirror", "worker"],
                             registry=registry)
        self.group_syncs = Counter("migrate_mirror_group_offset_syncs", "Group offset syncs (--sync-groups): "
                                   "partition offsets committed, groups skipped as active, rounds failed",
                                   ["mirror", "worker", "outcome"], registry=registry)
        self.config_changes = Counter("migrate_mirror_config_changes", "Topic config changes the config sync made "
                                      "on the target (applied: changed on the source; restored: changed by hand on "
                                      "the target) or was refused", ["mirror", "worker", "topic", "key", "outcome"],
                                      registry=registry)
        self.config_rounds = Counter("migrate_mirror_config_sync_rounds", "Config sync rounds completed (one per "
                                     "metadata refresh while following)", ["mirror", "worker"], registry=registry)
        self._drift: tuple = ()  # migrate.mirror.configs.Drift after the config sync's last round
        self._throttle: Callable[[], object] | None = None  # under --max-bytes-per-second
        registry.register(_Collector(self))

    # --- engine hooks (engine thread) ------------------------------------------------------------

    def attach(self, mirror: str, worker: str, take: Callable[[], Snapshot]) -> None:
        self.mirror, self.worker = mirror, worker
        self._take = take
        for outcome in ("committed", "skipped", "failed"):
            self.group_syncs.labels(self.mirror, self.worker, outcome)
        self.peeks.labels(self.mirror, self.worker)
        self.config_rounds.labels(self.mirror, self.worker)

    def detach(self) -> None:
        self._take = None
        self._ready.set()  # a scrape waiting for a snapshot serves the last one
        with self._scrape:  # never close the peeker under a scrape that is using it
            self.peeker.close()

    def tick(self) -> None:
        if not self._wanted.is_set() or self._take is None:
            return
        snapshot = self._take()
        # A lagging partition between two transactions has its oldest unmirrored record in the
        # consumer's next batch, most likely: a loop turn later its transaction is open and the
        # record's CreateTime known, which spares a read from the source at scrape time.
        if time.monotonic() < self._asked_at + DEFER_S and any(_between_transactions(v) for v in snapshot.partitions):
            return
        self._wanted.clear()
        self._snapshot = snapshot
        self._ready.set()

    def committed(self, key: Key, writer: PartitionWriter) -> None:
        count = writer.last_count
        if not count:
            return
        labels = (self.mirror, self.worker, key[0])
        self.records.labels(*labels).inc(count)
        self.bytes.labels(*labels).inc(writer.last_bytes)
        self.commits.labels(*labels).inc()
        self.commit_seconds.labels(self.mirror, self.worker).observe(writer.last_commit_seconds)
        following = self._following.get(key)
        if following is not None and following() is writer and (first := writer.last_first_timestamp or 0) > 0:
            latency = writer.committed_at - first / 1000
            self.latency.labels(self.mirror, self.worker).observe(max(0.0, latency))
        upcoming = self._following_next.pop(key, None)
        if upcoming is not None and upcoming() is writer:
            self._following[key] = upcoming

    def retry(self, key: Key, reason: str) -> None:
        self.retries.labels(self.mirror, self.worker, key[0], retry_reason(reason)).inc()

    def reached_end(self, key: Key, writer: PartitionWriter) -> None:
        following = self._following.get(key)
        if following is not None and following() is writer:
            return
        # The open transaction may still hold backlog: only the next one counts as following.
        (self._following_next if writer.open else self._following)[key] = weakref.ref(writer)

    def throttling(self, figures: Callable[[], object]) -> None:
        self._throttle = figures

    def config_changed(self, topic: str, key: str, outcome: str) -> None:
        self.config_changes.labels(self.mirror, self.worker, topic, key, outcome).inc()

    def config_drift(self, drift: tuple) -> None:
        self._drift = drift  # one reference replaced: a scrape reads either the old tuple or the new
        self.config_rounds.labels(self.mirror, self.worker).inc()

    def group_synced(self, outcome: str, count: int = 1) -> None:
        if count:
            self.group_syncs.labels(self.mirror, self.worker, outcome).inc(count)

    # --- scrape side (HTTP server thread) ----------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        """A fresh snapshot from the engine's loop, or the last one if the loop is busy."""
        if self._take is not None:
            self._ready.clear()
            self._asked_at = time.monotonic()
            self._wanted.set()
            self._ready.wait(self.snapshot_timeout)
        return self._snapshot

    def figures(self, views: tuple[PartitionView, ...], now: float) -> dict[Key, Figures]:
        """Exact lag and freshness per partition; partitions not fetching are read here."""
        need: dict[Key, int] = {}
        for v in views:
            key = (v.topic, v.partition)
            if v.mirrored_to is None:
                continue
            if v.source_end is None:
                need[key] = v.mirrored_to
            elif v.source_end > v.mirrored_to and v.oldest_pending is None and self._stamp(key, v.mirrored_to) is None:
                need[key] = v.mirrored_to
        if self._take is None:  # the mirror has stopped: serve what the last snapshot knew
            need = {}
        by_key = {(v.topic, v.partition): v for v in views}
        stopped_first = sorted(need, key=lambda k: by_key[k].source_end is not None)
        peeked = self.peeker.peek({k: need[k] for k in stopped_first[:MAX_PEEKS]}, self.peek_timeout)
        if peeked:
            self.peeks.labels(self.mirror, self.worker).inc(len(peeked))
        for key, answer in peeked.items():
            self._stamps[key] = (need[key], answer.first_timestamp)
        out: dict[Key, Figures] = {}
        for v in views:
            key = (v.topic, v.partition)
            end = v.source_end if v.source_end is not None else getattr(peeked.get(key), "end", None)
            if v.mirrored_to is None or end is None:
                out[key] = Figures(None, None)
                continue
            lag = max(0, end - v.mirrored_to)
            stamp = v.oldest_pending or self._stamp(key, v.mirrored_to)
            freshness = 0.0 if lag == 0 else (max(0.0, now - stamp / 1000) if stamp else None)
            out[key] = Figures(lag, freshness)
        return out

    def _stamp(self, key: Key, offset: int) -> int | None:
        cached = self._stamps.get(key)
        return cached[1] if cached is not None and cached[0] == offset else None


class _Collector:
    """Computes the partition gauges when Prometheus scrapes."""

    def __init__(self, metrics: MirrorMetrics):
        self.metrics = metrics

    def describe(self):
        return []  # computed at scrape time: no fixed set to check at registration

    def collect(self):
        m = self.metrics
        with m._scrape:
            snapshot = m.snapshot()
            views = snapshot.partitions if snapshot else ()
            now = time.time()
            figures = m.figures(views, now) if views else {}
        base = [m.mirror, m.worker]
        states = GaugeMetricFamily("migrate_mirror_partitions", "Partitions this worker holds, by state",
                                   labels=["mirror", "worker", "state"])
        for state in STATES:
            states.add_metric(base + [state], sum(1 for v in views if v.state == state))
        yield states
        per_partition = m.detail == "partition"
        labels = ["mirror", "worker", "topic"] + (["partition"] if per_partition else [])
        lag = GaugeMetricFamily("migrate_mirror_lag_records", "Exact lag: source end (Fetch high watermark) "
                                "minus the offset map's mirrored-up-to", labels=labels)
        fresh = GaugeMetricFamily("migrate_mirror_lag_seconds", "Freshness: age of the oldest source record not "
                                  "yet on the target (0 when caught up)", labels=labels)
        runs = GaugeMetricFamily("migrate_mirror_map_runs", "Offset-map size: runs of contiguous offsets",
                                 labels=labels)
        if per_partition:
            for v in views:
                f = figures.get((v.topic, v.partition))
                where = base + [v.topic, str(v.partition)]
                runs.add_metric(where, v.runs)
                if f is not None and f.lag is not None:
                    lag.add_metric(where, f.lag)
                if f is not None and f.freshness is not None:
                    fresh.add_metric(where, f.freshness)
        else:
            for topic, (lag_sum, worst, run_sum) in _per_topic(views, figures).items():
                runs.add_metric(base + [topic], run_sum)
                if lag_sum is not None:
                    lag.add_metric(base + [topic], lag_sum)
                if worst is not None:
                    fresh.add_metric(base + [topic], worst)
        yield lag
        yield fresh
        yield runs
        drift = GaugeMetricFamily("migrate_mirror_config_drift", "Topic configs whose target value differs from the "
                                  "source's after the config sync's last round (1 per topic and key; state: "
                                  "reported, left by --config-drift report, or refused by the target)",
                                  labels=["mirror", "worker", "topic", "key", "state"])
        for d in m._drift:
            drift.add_metric(base + [d.topic, d.key, d.state], 1)
        yield drift
        if m._throttle is not None:
            yield from _throttle_families(base, m._throttle())
        if snapshot is not None:
            age = GaugeMetricFamily("migrate_mirror_snapshot_age_seconds", "Age of the engine snapshot this "
                                    "scrape reports (large: the engine loop was busy)", labels=["mirror", "worker"])
            age.add_metric(base, max(0.0, now - snapshot.taken))
            yield age


def _throttle_families(base: list[str], f):
    """The byte-rate limit (--max-bytes-per-second): its setting, what each lane took, the waits, the fetches."""
    limit = GaugeMetricFamily("migrate_mirror_max_bytes_per_second", "The byte-rate limit of this worker "
                              "(source key and value bytes per second)", labels=["mirror", "worker"])
    limit.add_metric(base, f.limit)
    yield limit
    taken = CounterMetricFamily("migrate_mirror_source_bytes", "Source key and value bytes taken under the limit, "
                                "by lane (live is served first)", labels=["mirror", "worker", "lane"])
    taken.add_metric(base + ["live"], f.live_bytes)
    taken.add_metric(base + ["backfill"], f.backfill_bytes)
    yield taken
    waited = CounterMetricFamily("migrate_mirror_throttled_seconds", "Seconds the backfill lane waited for the "
                                 "byte-rate limit", labels=["mirror", "worker"])
    waited.add_metric(base, f.waited_s)
    yield waited
    fetched = CounterMetricFamily("migrate_mirror_source_fetched_bytes", "Bytes the mirror's source clients "
                                  "fetched (librdkafka statistics; above the bytes taken where a platform ignores "
                                  "Fetch size limits)", labels=["mirror", "worker"])
    fetched.add_metric(base, f.fetched_bytes)
    yield fetched


def _between_transactions(v: PartitionView) -> bool:
    return (v.state == "mirroring" and v.source_end is not None and v.mirrored_to is not None
            and v.source_end > v.mirrored_to and v.oldest_pending is None)


def _per_topic(views, figures) -> dict[str, tuple[int | None, float | None, int]]:
    """Per topic: the lag summed over partitions with an answer, the worst freshness, the runs."""
    out: dict[str, tuple[int | None, float | None, int]] = {}
    for v in views:
        f = figures.get((v.topic, v.partition))
        lag_sum, worst, run_sum = out.get(v.topic, (None, None, 0))
        if f is not None and f.lag is not None:
            lag_sum = (lag_sum or 0) + f.lag
        if f is not None and f.freshness is not None:
            worst = max(worst or 0.0, f.freshness)
        out[v.topic] = (lag_sum, worst, run_sum + v.runs)
    return out
