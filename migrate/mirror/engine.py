"""The mirror loop: consume the source, write the target exactly once, keep the maps.

Coordination is Kafka's own consumer group on the source (group `migrate.mirror.<name>`):
several workers with the same name share the partitions, and a rebalance moves a partition
from one to another.  For each partition this worker is given it:

1. builds a writer (migrate.mirror.writer), whose transactional producer fences every
   earlier writer of the target partition;
2. loads the map (the longer of the local index and the durable map topic) and reconciles
   it with the target's tail (migrate.mirror.reconcile);
3. resumes the source right after the last verified pair.

Records are written in short per-partition transactions; after each commit the map grows
by the committed pairs and is saved.  A partition whose writer fails is paused, its map
reloaded and reconciled again after a backoff; a partition that diverged or lost data is
paused for good and reported, while the others go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, TopicPartition

from migrate import kafka
from migrate.errors import CheckFailed, DataLossDetected, KafkaOperationError, PartitionDiverged, UsageError
from migrate.metrics.hooks import NO_METRICS
from migrate.mirror import topics as topic_plans
from migrate.mirror.reconcile import raw_reader, reconcile, safe_read_start
from migrate.mirror.spec import MirrorSpec, validate_spec
from migrate.mirror.writer import PartitionWriter, WriterFailed
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.store import MapStore
from migrate.offset_maps.topic import ensure_map_topic, load_maps
from migrate.state import State

log = logging.getLogger("migrate.mirror")

Key = tuple[str, int]
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0
FAILED = ("diverged", "data-loss")


@dataclass
class PartitionFailure:
    topic: str
    partition: int
    kind: str  # "diverged" | "data-loss"
    message: str


@dataclass
class MirrorResult:
    name: str
    records: int = 0
    bytes: int = 0
    seconds: float = 0.0
    copy_seconds: float = 0.0  # from the first partition resumed to the end (start-up excluded)
    partitions: int = 0
    adopted: int = 0
    failures: list[PartitionFailure] = field(default_factory=list)
    caught_up: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Progress:
    records: int
    bytes: int
    seconds: float
    lag: dict[str, int]  # per source topic, for partitions this worker owns
    owned: int
    failed: int


class Mirror:
    def __init__(self, spec: MirrorSpec, state: State, stop: threading.Event | None = None,
                 on_progress=None, progress_interval: float = 1.0, group_sync=None, metrics=None):
        validate_spec(spec)
        self.spec = spec
        self.state = state
        self.stop = stop or threading.Event()
        self.on_progress = on_progress
        self.progress_interval = progress_interval
        self.group_sync = group_sync  # callable run every sync interval (offsets sync), or None
        self.worker = spec.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.store = MapStore(state, spec.name)
        self.writers: dict[Key, PartitionWriter] = {}
        self.positions: dict[Key, int] = {}  # source position seen (EOF) not yet applied to the map
        self.retry_at: dict[Key, float] = {}
        self.skip_below: dict[Key, int] = {}  # partitions re-reading already-mirrored records
        self.backoff: dict[Key, float] = {}
        self.failed: dict[Key, PartitionFailure] = {}
        self.mapping: dict[str, str] = {}
        self.durable: dict = {}
        self.goal: dict[Key, int] | None = None
        self.result = MirrorResult(spec.name)
        self.transactions = spec.transactions
        self.copy_started = 0.0
        self.fatal = None  # a fatal source-client error reported through error_cb
        self.started_at = ""  # ISO time of run(); progress rows older than it are stale
        # metrics: hooks at a few points, never per record (migrate.metrics.hooks); no-op when off
        self.metrics = metrics or NO_METRICS

    # --- setup ---------------------------------------------------------------------------------

    def _prepare_topics(self, required: bool) -> list[str]:
        spec = self.spec
        source_meta = kafka.list_topics(spec.source)
        self._check_vanished(source_meta)
        selected = topic_plans.select_topics(spec, source_meta)
        if not selected:
            if required:
                raise UsageError(
                    f'no topic on cluster "{spec.source.name}" matches --topics {" ".join(spec.topics)}'
                    + (f' (excluding {" ".join(spec.exclude)})' if spec.exclude else "")
                    + "; check the pattern (it must match the whole topic name)"
                )
            return []
        new = [t for t in selected if t not in self.mapping]
        if new:
            target_meta = kafka.list_topics(spec.target)
            plans = topic_plans.plan_topics(spec, new, source_meta, target_meta)
            plans = topic_plans.ensure_topics(spec, plans)
            topic_plans.record_mirror(self.state, spec, plans)
            for plan in plans:
                self.mapping[plan.source_topic] = plan.target_topic
        return selected

    def _check_vanished(self, source_meta: dict) -> None:
        """A source topic this mirror copied records from must still exist: if not, data was lost."""
        mirrored: dict[str, int] = {}
        for row in self.store.progress():
            if (row["source_high"] or 0) > (row["source_low"] or 0):
                mirrored[row["topic"]] = mirrored.get(row["topic"], 0) + row["source_high"] - (row["source_low"] or 0)
        gone = {t: n for t, n in mirrored.items() if t not in source_meta}
        wanted = set(topic_plans.select_topics(self.spec, {t: None for t in gone}))
        for topic in sorted(wanted):
            raise DataLossDetected(
                self.spec.source.name, topic, -1,
                f'source topic "{topic}" vanished from cluster "{self.spec.source.name}" after {gone[topic]} '
                "offsets were mirrored (the source restarted empty or the topic was deleted): data loss on "
                "the source; the target and the map are kept, nothing more is mirrored",
            )

    def _load_map(self, key: Key) -> PartitionMap:
        """The longer of the local index and the durable map topic (both are prefixes of the truth)."""
        local = self.store.load(*key)
        durable = self.durable.get(key)
        if durable is not None and (durable.pmap.source_high or 0) > (local.source_high or 0):
            self.store.replace(key[0], key[1], durable.pmap, self.mapping[key[0]])
            return self.store.load(*key)
        return local

    # --- partitions ----------------------------------------------------------------------------

    def _fenced_writer(self, key: Key, pmap: PartitionMap) -> PartitionWriter:
        """A writer for one partition that has fenced every earlier writer (runs in a thread: no state)."""
        spec = self.spec
        topic, partition = key
        writer = PartitionWriter(
            spec.name, spec.target, topic, self.mapping[topic], partition, pmap,
            compression=spec.compression, map_topic=self.map_topic, transactions=self.transactions,
        )
        try:
            writer.fence()
        except BaseException:
            writer.close()
            raise
        return writer

    def _open_all(self, consumer, keys: list[Key]) -> None:
        """Open partitions: fence their writers in parallel, read ends in bulk, then reconcile each."""
        keys = [k for k in keys if k not in self.failed and k[0] in self.mapping]
        if not keys:
            return
        fenced: dict[Key, PartitionWriter] = {}
        with ThreadPoolExecutor(max_workers=min(8, len(keys))) as pool:
            maps = {key: self._load_map(key) for key in keys}
            futures = {key: pool.submit(self._fenced_writer, key, maps[key]) for key in keys}
        for key, future in futures.items():
            try:
                fenced[key] = future.result()
            except (WriterFailed, KafkaOperationError) as exc:
                self._retry_later(key, str(exc))
        ends = self._bulk_ends(list(fenced))
        readers = [kafka.consumer(p, **{"enable.partition.eof": True, "fetch.wait.max.ms": 20})
                   for p in (self.spec.source, self.spec.target)]
        readers += [raw_reader(p) for p in (self.spec.source, self.spec.target)]
        try:
            for key, writer in fenced.items():
                self._start(consumer, key, writer, readers, ends)
        finally:
            for reader in readers:
                reader.close()

    def _bulk_ends(self, keys: list[Key]) -> dict:
        ends: dict = {}
        if not keys:
            return ends
        try:
            for key, end in kafka.partition_ends(self.spec.source, keys).items():
                ends[("source", key)] = end
            targets = [(self.mapping[t], p) for t, p in keys]
            for key, end in kafka.partition_ends(self.spec.target, targets).items():
                ends[("target", key)] = end
        except KafkaOperationError as exc:
            log.debug("bulk end lookup failed (%s); reading ends per partition", exc)
        return ends

    def _start(self, consumer, key: Key, writer: PartitionWriter, readers, ends: dict) -> None:
        """Reconcile a fenced partition and resume its source right after the last verified pair."""
        topic, partition = key
        try:
            done = reconcile(writer.pmap, self.spec.source, self.spec.target, topic, writer.target_topic,
                             partition, readers[0], readers[1], src_end=ends.get(("source", key)),
                             tgt_end=ends.get(("target", (writer.target_topic, partition))),
                             raw_readers=readers[2:])
        except (PartitionDiverged, DataLossDetected) as exc:
            writer.close()
            self._fail(key, exc)
            return
        except (WriterFailed, KafkaOperationError) as exc:
            writer.close()
            self._retry_later(key, str(exc))
            return
        self.result.adopted += done.adopted
        self._publish(key, writer.pmap, writer.map_changes())
        self.writers[key] = writer
        resume = done.resume_source
        read_from = safe_read_start(writer.pmap, resume)
        if read_from < resume:
            self.skip_below[key] = resume
        consumer.seek(TopicPartition(topic, partition, read_from))
        consumer.resume([TopicPartition(topic, partition)])
        self.retry_at.pop(key, None)
        self.copy_started = self.copy_started or time.monotonic()
        log.info("%s[%d]: mirroring from source offset %d", topic, partition, resume)

    def _fail(self, key: Key, exc: CheckFailed) -> None:
        kind = "diverged" if isinstance(exc, PartitionDiverged) else "data-loss"
        self.failed[key] = PartitionFailure(key[0], key[1], kind, str(exc))
        self.retry_at.pop(key, None)
        log.error("%s", exc)
        pmap = self.store.load(*key)
        self.store.save(key[0], key[1], pmap, self.mapping.get(key[0], key[0]), status=kind,
                        worker=self.worker, error=str(exc))

    def _retry_later(self, key: Key, reason: str) -> None:
        delay = min(BACKOFF_MAX, self.backoff.get(key, BACKOFF_START / 2) * 2)
        self.backoff[key] = delay
        self.retry_at[key] = time.monotonic() + delay
        self.metrics.retry(key, reason)  # metrics: retries by reason
        log.warning("%s[%d]: %s; retrying in %.0fs", key[0], key[1], reason, delay)

    def _close(self, key: Key, commit: bool) -> None:
        self.skip_below.pop(key, None)
        writer = self.writers.pop(key, None)
        if writer is None:
            return
        if commit:
            try:
                self._commit(key, writer)
            except WriterFailed as exc:
                log.warning("%s[%d]: could not commit while giving the partition up: %s", key[0], key[1], exc)
                writer.abort()
        else:
            writer.abort()
        writer.close()

    def _commit(self, key: Key, writer: PartitionWriter) -> None:
        self._after_commit(key, writer, writer.commit())

    def _after_commit(self, key: Key, writer: PartitionWriter, pending: list[tuple[bytes, bytes]]) -> None:
        self.backoff.pop(key, None)  # a commit went through: the next failure starts the backoff afresh
        position = self.positions.pop(key, None)
        if position is not None and position > (writer.pmap.source_high or 0):
            writer.pmap.advance(source_high=position)
            pending = writer.map_changes()
        self.result.records += writer.last_count
        self.result.bytes += writer.last_bytes
        self._publish(key, writer.pmap, pending)
        self.metrics.committed(key, writer)  # metrics: counters, commit duration, latency

    def _publish(self, key: Key, pmap: PartitionMap, pending: list[tuple[bytes, bytes]]) -> None:
        """Save the map locally and append its changes to the durable map topic."""
        for record_key, value in pending:
            self._produce_map(record_key, value)
        self.store.save(key[0], key[1], pmap, self.mapping[key[0]], status="mirroring", worker=self.worker)
        self._source_commits[key] = pmap.source_high

    def _produce_map(self, record_key: bytes, value: bytes) -> None:
        while True:
            try:
                self.map_producer.produce(self.map_topic, value, record_key, partition=0)
                return
            except BufferError:
                self.map_producer.poll(0.05)

    # --- rebalance callbacks ---------------------------------------------------------------

    def _on_assign(self, consumer, partitions) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        log.info("assigned %d partitions: %s", len(keys), ", ".join(f"{t}[{p}]" for t, p in keys[:12]))
        # Assign everything paused; each partition resumes once it is fenced and reconciled.
        consumer.assign([TopicPartition(t, p, 0) for t, p in keys])
        consumer.pause([TopicPartition(t, p) for t, p in keys])
        for key in keys:
            if key[0] not in self.mapping:
                self._retry_later(key, "topic not prepared yet")
        self._open_all(consumer, keys)

    def _on_revoke(self, consumer, partitions) -> None:
        for tp in partitions:
            self._close((tp.topic, tp.partition), commit=True)
            self.retry_at.pop((tp.topic, tp.partition), None)
        self._flush_side_effects(consumer)
        consumer.unassign()

    def _on_lost(self, consumer, partitions) -> None:
        for tp in partitions:
            self._close((tp.topic, tp.partition), commit=False)
            self.retry_at.pop((tp.topic, tp.partition), None)
        consumer.unassign()

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> MirrorResult:
        spec = self.spec
        started = time.monotonic()
        self.started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        kafka.check_reachable(spec.source)
        kafka.check_reachable(spec.target)
        selected = self._prepare_topics(required=spec.until_caught_up)
        if spec.transactions:
            self.transactions = self._target_transactions_trusted()
        log.debug("topics ready: %s", ", ".join(selected))
        self.map_topic = ensure_map_topic(spec.target, spec.name)
        self.durable = load_maps(spec.target, spec.name)
        log.debug("durable map read: %d partitions", len(self.durable))
        self.map_producer = kafka.producer(spec.target, **{"linger.ms": 20})
        self._source_commits: dict[Key, int] = {}
        if spec.until_caught_up:
            wanted = [(t, p) for t in selected for p in range(self._partition_count(t))]
            ends = kafka.partition_ends(spec.source, wanted)
            self.goal = {key: end.high for key, end in ends.items()}
            log.debug("goal: %d records in %d partitions", sum(self.goal.values()), len(self.goal))
        settings = {"group.instance.id": spec.worker_id} if spec.worker_id else {}
        consumer = kafka.consumer(spec.source, **settings, **{
            "group.id": spec.group_id,
            "enable.partition.eof": True,
            "auto.offset.reset": "error",
            "session.timeout.ms": spec.session_timeout_ms,
            "heartbeat.interval.ms": max(100, spec.session_timeout_ms // 10),
            "partition.assignment.strategy": "roundrobin",
            "fetch.wait.max.ms": 50,
            "error_cb": self._on_consumer_error,
        })
        self._subscribe(consumer, selected)
        self.metrics.attach(self, consumer)  # metrics: scrapes may now ask for snapshots
        last_refresh = last_progress = last_commit = last_sync = time.monotonic()
        try:
            while not self.stop.is_set():
                if self.fatal is not None:
                    self._raise_fatal(self.fatal)
                self._pump(consumer)
                self.metrics.tick()  # metrics: a snapshot for a waiting scrape, taken in this thread
                now = time.monotonic()
                for writer in self.writers.values():
                    writer.poll()
                if any(w.due(now, spec.commit_interval_s, spec.commit_max_records) for w in self.writers.values()):
                    self._commit_due(consumer, now)
                self._apply_idle_positions()
                due = [key for key, when in self.retry_at.items() if now >= when and key[0] in self.mapping]
                if due:
                    self._open_all(consumer, due)
                if now - last_commit >= 1.0:
                    self._flush_side_effects(consumer)
                    last_commit = now
                if not spec.until_caught_up and now - last_refresh >= spec.metadata_refresh_s:
                    selected = self._refresh(consumer, selected)
                    last_refresh = now
                if self.group_sync is not None and now - last_sync >= spec.sync_interval_s:
                    self._sync_groups()
                    last_sync = now
                if self.on_progress and now - last_progress >= self.progress_interval:
                    self.on_progress(self._progress(consumer, started))
                    last_progress = now
                if self.goal is not None and self._caught_up():
                    self.result.caught_up = True
                    break
        finally:
            for key in list(self.writers):
                self._close(key, commit=True)
            self._flush_side_effects(consumer)
            self.map_producer.flush(30)
            self.metrics.detach()  # metrics: no snapshot of a closed consumer
            consumer.close()
        self.result.seconds = time.monotonic() - started
        self.result.copy_seconds = time.monotonic() - (self.copy_started or started)
        self.result.failures = list(self.failed.values())
        self.result.partitions = len(self.goal or {}) or len(self.result.failures)
        return self.result

    def _target_transactions_trusted(self) -> bool:
        """--transactions only where `migrate probe` found the target's transactions sound."""
        from migrate.probe.requirements import TRANSACTION_CHECKS, check_requirements
        from migrate.probe.store import load_latest

        target = self.spec.target
        report = load_latest(self.state, target.name, target.bootstrap)
        if report is None:
            log.warning('--transactions: cluster "%s" was never probed; trusting its transactions '
                        "(run: migrate probe --cluster %s)", target.name, self.spec.target_spec or target.bootstrap)
            return True
        unmet = [u for u in check_requirements(report, TRANSACTION_CHECKS) if report.named(u.name)]
        if unmet:
            log.warning('--transactions: cluster "%s" fails the transaction checks (%s), so records and map '
                        "entries cannot commit atomically there; mirroring in the default mode, which stays "
                        "exactly-once through reconciliation", target.name, ", ".join(u.name for u in unmet))
            return False
        return True

    def _partition_count(self, topic: str) -> int:
        rows = self.state.db.execute(
            "SELECT partitions FROM topic_mappings WHERE mirror = ? AND source_topic = ?", [self.spec.name, topic]
        ).fetchone()
        return rows[0]

    def _subscribe(self, consumer, selected: list[str]) -> None:
        if selected:
            consumer.subscribe(selected, on_assign=self._on_assign, on_revoke=self._on_revoke,
                               on_lost=self._on_lost)
        self.subscribed = list(selected)

    def _refresh(self, consumer, selected: list[str]) -> list[str]:
        try:
            now_selected = self._prepare_topics(required=False)
        except KafkaOperationError as exc:
            log.warning("metadata refresh failed: %s", exc)
            return selected
        if now_selected and now_selected != self.subscribed:
            log.info("topics changed; now mirroring %s", ", ".join(now_selected))
            self._subscribe(consumer, now_selected)
        return now_selected or selected

    def _pump(self, consumer) -> None:
        messages = consumer.consume(5000, timeout=0.2)
        writers = self.writers
        skipping = self.skip_below
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_message_error(consumer, message, error)
                continue
            key = (message.topic(), message.partition())
            if skipping and key in skipping and self._reread(consumer, key, message):
                continue
            writer = writers.get(key)
            if writer is not None:
                writer.write(message)

    def _on_consumer_error(self, error) -> None:
        """librdkafka reports some fatal errors (a fenced static member) only here."""
        if error.fatal() or error.code() == KafkaError._FATAL:
            self.fatal = error
        else:
            log.debug("source client: %s", error.str())

    def _raise_fatal(self, error) -> None:
        raise KafkaOperationError(
            f'source consumer on cluster "{self.spec.source.name}" stopped: {error.str()} (this worker was '
            "fenced by another with the same --worker-id, or hit a fatal error); nothing is lost: restart it"
        )

    def _reread(self, consumer, key: Key, message) -> bool:
        """True for a record below the resume point: already mirrored, so it must be in the map."""
        offset = message.offset()
        if offset >= self.skip_below[key]:
            del self.skip_below[key]
            return False
        writer = self.writers.get(key)
        if writer is not None and writer.pmap.target_of(offset) is None:
            self._close(key, commit=False)
            consumer.pause([TopicPartition(*key)])
            self.skip_below.pop(key, None)
            self._fail(key, DataLossDetected(
                self.spec.source.name, key[0], key[1],
                f"{key[0]}[{key[1]}]: committed source record {offset} was hidden from an earlier read "
                "(the source's read_committed answer changed) and is not on the target; "
                "re-mirror this partition into a new target topic",
            ))
        return True

    def _on_message_error(self, consumer, message, error) -> None:
        key = (message.topic(), message.partition())
        code = error.code()
        if code == KafkaError._PARTITION_EOF:
            if key in self.writers:
                self.positions[key] = max(self.positions.get(key, 0), message.offset())
                self.metrics.reached_end(key)  # metrics: from here on the partition is following
            return
        if code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE) and key in self.writers:
            self._close(key, commit=True)
            consumer.pause([TopicPartition(*key)])
            self._fail(key, DataLossDetected(
                self.spec.source.name, key[0], key[1],
                f"{key[0]}[{key[1]}]: the source no longer holds the next record to mirror "
                f"({error.str()}): retention or data loss on the source",
            ))
            return
        if error.fatal() or code == KafkaError._FATAL:
            self._raise_fatal(error)
        log.warning("source: %s", error.str())

    def _commit_due(self, consumer, now: float) -> None:
        """Commit every writer that is due or half-way there, in parallel (each commit waits on I/O)."""
        spec = self.spec
        due = {key: w for key, w in self.writers.items()
               if w.due(now, spec.commit_interval_s / 2, spec.commit_max_records // 2)}
        with ThreadPoolExecutor(max_workers=min(8, len(due))) as pool:
            futures = {key: pool.submit(writer.commit) for key, writer in due.items()}
        for key, future in futures.items():
            writer = due[key]
            try:
                pending = future.result()
            except WriterFailed as exc:
                self.writers.pop(key, None)
                writer.abort()
                writer.close()
                consumer.pause([TopicPartition(*key)])
                self.positions.pop(key, None)
                if exc.refused and spec.until_caught_up:
                    self._fail(key, PartitionDiverged(
                        key[0], key[1],
                        f"{key[0]}[{key[1]}]: the target refuses a record of this partition as too large "
                        f"({exc}); raise max.message.bytes on target topic {writer.target_topic} (and the "
                        "broker's message.max.bytes), then run the mirror again: nothing was skipped",
                    ))
                else:
                    self._retry_later(key, f"target write failed: {exc}")
                continue
            self._after_commit(key, writer, pending)

    def _apply_idle_positions(self) -> None:
        """End-of-partition seen with no open transaction: the gap up to it is accounted for."""
        for key, position in list(self.positions.items()):
            writer = self.writers.get(key)
            if writer is None:
                self.positions.pop(key)
            elif not writer.open:
                self.positions.pop(key)
                if position > (writer.pmap.source_high or 0):
                    writer.pmap.advance(source_high=position)
                    self._publish(key, writer.pmap, writer.map_changes())

    def _flush_side_effects(self, consumer) -> None:
        self.map_producer.poll(0)
        if self._source_commits:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self._source_commits.items() if o is not None]
            self._source_commits = {}
            if offsets:
                try:
                    consumer.commit(offsets=offsets, asynchronous=True)
                except Exception as exc:  # informational only: lag tools read it
                    log.debug("source group commit skipped: %s", exc)

    def _caught_up(self) -> bool:
        assert self.goal is not None
        if any(w.open for w in self.writers.values()) or self.positions:
            return False
        progress = {(r["topic"], r["partition"]): r for r in self.store.progress()}
        for key, goal in self.goal.items():
            if key in self.failed:
                continue
            row = progress.get(key)
            if row is None:
                return False
            if row["status"] in FAILED:
                continue
            # Progress saved before this run started proves nothing about the target now:
            # a partition counts once it was reconciled (or mirrored) during this run.
            if row["updated_at"] < self.started_at or (row["source_high"] or 0) < goal:
                return False
        return True

    def _sync_groups(self) -> None:
        try:
            self.group_sync()
        except Exception as exc:  # a sync problem must not stop the mirror
            log.warning("group offset sync failed: %s", exc)

    def _progress(self, consumer, started: float) -> Progress:
        lag: dict[str, int] = {}
        for key, writer in self.writers.items():
            try:
                _low, high = consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
            except Exception:
                continue
            if high is not None and high >= 0:
                lag[key[0]] = lag.get(key[0], 0) + max(0, high - (writer.pmap.source_high or 0) - writer.count)
        records = self.result.records + sum(w.count for w in self.writers.values())
        nbytes = self.result.bytes + sum(w.bytes for w in self.writers.values())
        return Progress(records, nbytes, time.monotonic() - started, lag, len(self.writers), len(self.failed))


def run_mirror(spec: MirrorSpec, state: State, **kwargs) -> MirrorResult:
    return Mirror(spec, state, **kwargs).run()
