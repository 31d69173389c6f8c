"""Opening a source partition of a fenced slot: its map, its reconciliation, where it is read from.

For each partition of a slot this worker has fenced (migrate.mirror.ownership):
1. its map is loaded: the longer of the local index and the durable map topic (the registry's
   one rule), kept in the local index;
2. the map is reconciled with the target's tail (migrate.mirror.reconcile), which adopts
   what an earlier holder wrote and committed, and stops a partition that diverged or lost
   data;
3. it is assigned in a lane right after its last verified pair, never below the source's log
   start (`read_from`); records between a gap in the map and its end are read again and
   dropped (they are mirrored already).
Ends and reconciliation reads are done in bulk for all the partitions opened together: one
pass per cluster, not two reads per partition.

Real sources (measured on noida-db; Kafka behaves the same): a partition's log usually starts
above 0 (retention), and records deleted before they were mirrored (the log start overtook the
mirror) cannot be mirrored by anyone: the map skips them and they are reported as vanished
(state, status, exit line), never waited for.  A fetch that went out of range leaves
librdkafka's partition in a state that seek() refuses (KafkaError _STATE, measured): such a
partition is unassigned and assigned again at its new start (`reopen_moved`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import TopicPartition

from migrate import kafka
from migrate.errors import CheckFailed, DataLossDetected, KafkaOperationError, PartitionDiverged, WriterFailed
from migrate.mirror import registry
from migrate.mirror.lanes import Lanes
from migrate.mirror.ownership import SlotOwnership
from migrate.mirror.partitions import Partitions, PartitionState
from migrate.mirror.publisher import Publisher
from migrate.mirror.reconcile import Prefetched, raw_reader, reconcile, safe_read_start, skip_vanished
from migrate.mirror.results import MirrorResult, Vanished
from migrate.mirror.retries import Retries
from migrate.mirror.spec import MirrorSpec
from migrate.mirror.topicset import TopicSet
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.store import MapStore
from migrate.offset_maps.topic import MapTopicReader

log = logging.getLogger("migrate.mirror")

Key = tuple[str, int]


class Opener:
    def __init__(self, spec: MirrorSpec, store: MapStore, topics: TopicSet, partitions: Partitions,
                 ownership: SlotOwnership, retries: Retries, publisher: Publisher, result: MirrorResult,
                 fail: Callable[..., None], retry_later: Callable[[Key, str], None],
                 stop: Callable[[Key, CheckFailed], None]):
        self.spec = spec
        self.store = store
        self.topics = topics
        self.partitions = partitions
        self.ownership = ownership
        self.retries = retries
        self.publisher = publisher
        self.result = result
        self._fail = fail  # (key, error[, kind]): a partition never opened that cannot be mirrored
        self._retry_later = retry_later
        self._stop = stop  # an open partition stopped for good
        self.durable: MapTopicReader | None = None  # from the start of the run on
        self.lanes: Lanes | None = None
        self.copy_started = 0.0  # when the first partition was assigned

    def start(self, durable: MapTopicReader, lanes: Lanes) -> None:
        self.durable, self.lanes = durable, lanes

    # --- opening ---------------------------------------------------------------------------------

    def open(self, keys: list[Key]) -> None:
        """Open partitions of fenced slots: read ends in bulk, then reconcile and assign each."""
        now = time.monotonic()
        keys = [k for k in keys if self.partitions.get(k) is None and k[0] in self.topics.mapping
                and self.ownership.slot_of(k) is not None
                and not self.retries.waiting(k, now)]  # a partition waiting for its retry waits on
        for key in [k for k in keys if not self.topics.writable(k)]:
            self._fail(key, PartitionDiverged(key[0], key[1], self.topics.refused(key[0])), "blocked")
            keys.remove(key)
        if not keys:
            return
        ends = self._bulk_ends(keys)
        maps = {key: self._load_map(key) for key in keys}
        prefetched = self._prefetch(maps, ends)
        readers = [kafka.consumer(p, **{"enable.partition.eof": True, "fetch.wait.max.ms": 20})
                   for p in (self.spec.source, self.spec.target)]
        readers += [raw_reader(p) for p in (self.spec.source, self.spec.target)]
        started: list[TopicPartition] = []
        try:
            for key in keys:
                begin = self._open_one(key, maps[key], readers, ends, prefetched.get(key))
                if begin is not None:
                    started.append(begin)
        finally:
            for reader in readers:
                reader.close()
            if started:
                assert self.lanes is not None  # start() ran
                self.lanes.assign(started, ends)
                self.copy_started = self.copy_started or time.monotonic()

    def _load_map(self, key: Key) -> PartitionMap:
        """The map by the registry's one rule, kept in the local index."""
        local = self.store.load(*key)
        durable = self.durable.get(key) if self.durable is not None else None
        if registry.longer(local, durable.pmap if durable else None) is not local:
            assert durable is not None  # longer() chose the durable map
            self.store.replace(key[0], key[1], durable.pmap, self.topics.mapping[key[0]])
            return self.store.load(*key)
        return local

    def _bulk_ends(self, keys: list[Key]) -> dict:
        ends: dict = {}
        targets = [(self.topics.mapping[t], p) for t, p in keys]
        try:  # both clusters at once: each read mostly waits for answers
            source_ends, target_ends = kafka.at_once([lambda: kafka.partition_ends(self.spec.source, keys),
                                                      lambda: kafka.partition_ends(self.spec.target, targets)], 2)
            ends = {**{("source", key): end for key, end in source_ends.items()},
                    **{("target", key): end for key, end in target_ends.items()}}
        except KafkaOperationError as exc:
            log.debug("bulk end lookup failed (%s); reading ends per partition", exc)
        return ends

    def _prefetch(self, maps: dict[Key, PartitionMap], ends: dict) -> dict[Key, Prefetched]:
        """Read what reconciliation checks for every partition at once (one pass per cluster, not
        two reads per partition): the records of each last mapped pair and each target tail."""
        last_source, last_target, tails = {}, {}, {}
        for (topic, partition), pmap in maps.items():
            target_key = (self.topics.mapping[topic], partition)
            src_end, tgt_end = ends.get(("source", (topic, partition))), ends.get(("target", target_key))
            if src_end is None or tgt_end is None or pmap.source_low is None:
                continue
            if not pmap.empty:
                run = pmap.runs[-1]
                # Only pairs both clusters still hold: a range past a partition's end is never read
                # to its end (read_ranges waited 60 s per slot for a target restarted empty), and
                # reconciliation reports such a partition from its ends alone, reading nothing.
                if (tgt_end.low <= run.target_end - 1 < tgt_end.high
                        and src_end.low <= run.source_end - 1 < src_end.high):
                    last_source[(topic, partition)] = (run.source_end - 1, run.source_end)
                    last_target[target_key] = (run.target_end - 1, run.target_end)
            tails[target_key] = (max(pmap.target_high or 0, tgt_end.low), tgt_end.high)
        try:  # the three reads at once: each mostly waits for answers
            found_source, found_target, found_tails = kafka.at_once([
                lambda: kafka.read_ranges(self.spec.source, last_source, "read_uncommitted"),
                lambda: kafka.read_ranges(self.spec.target, last_target, "read_uncommitted"),
                lambda: kafka.read_ranges(self.spec.target, tails, "read_committed"),
            ], 3)
        except KafkaOperationError as exc:
            log.debug("bulk reconciliation read failed (%s); reading per partition", exc)
            return {}
        out = {}
        for key in maps:
            target_key = (self.topics.mapping[key[0]], key[1])
            last = None
            if key in last_source:
                last = tuple(_exactly(found, span[0]) for found, span in (
                    (found_source[key], last_source[key]), (found_target[target_key], last_target[target_key])))
            tail = found_tails.get(target_key) if target_key in tails else None
            out[key] = Prefetched(last, tail)
        return out

    def _open_one(self, key: Key, pmap: PartitionMap, readers, ends: dict,
                  prefetched: Prefetched | None = None) -> TopicPartition | None:
        """Reconcile a partition of a fenced slot; returns where its source is to be read from."""
        topic, partition = key
        slot = self.ownership.slot_of(key)
        assert slot is not None  # open() keeps only partitions of fenced slots
        target_topic = self.topics.mapping[topic]
        try:
            done = reconcile(pmap, self.spec.source, self.spec.target, topic, target_topic,
                             partition, readers[0], readers[1], src_end=ends.get(("source", key)),
                             tgt_end=ends.get(("target", (target_topic, partition))),
                             raw_readers=readers[2:], prefetched=prefetched)
        except (PartitionDiverged, DataLossDetected) as exc:
            self._fail(key, exc)
            return None
        except (WriterFailed, KafkaOperationError) as exc:
            self._retry_later(key, str(exc))
            return None
        self.result.adopted += done.adopted
        if done.vanished is not None:
            self.vanished(key, *done.vanished)
        writer = slot.add(topic, target_topic, partition, pmap)
        state = self.partitions.open(key, writer, log_start=done.source_low)
        self.publisher.publish(writer, writer.map_changes())
        self.publisher.save()
        self.retries.opened(key)
        log.info("%s[%d]: mirroring from source offset %d", topic, partition, done.resume_source)
        return self.read_from(state)

    def read_from(self, state: PartitionState) -> TopicPartition:
        """Where to read a partition's source: right after its map, never below its log start."""
        assert state.writer is not None
        pmap = state.writer.pmap
        resume = pmap.source_high or 0
        return self.partitions.read_from(state, safe_read_start(pmap, resume, state.log_start), resume)

    def vanished(self, key: Key, first: int, end: int) -> None:
        gone = Vanished(key[0], key[1], first, end)
        self.result.vanished.append(gone)
        self.store.record_vanished(key[0], key[1], first, end)
        log.warning("%s: %d source offsets were deleted before they were mirrored (retention, DeleteRecords "
                    "or data loss on the source); mirroring goes on from offset %d", gone.describe(), gone.count,
                    end)

    # --- partitions whose fetch fell below the log start -------------------------------------------

    def reopen_moved(self) -> None:
        """Partitions whose next offset fell below the source's log start: skip what vanished, read on.

        Each waits until its slot has committed what it wrote, so its map ends exactly where the
        fetch stopped; the offsets from there to the new log start are reported as vanished.
        """
        ready = [s for s in self.partitions.moved()
                 if s.writer is not None and not (s.writer.open or s.writer.slot.committing)]
        if not ready:
            return
        ends = kafka.partition_ends(self.spec.source, [s.key for s in ready])
        restart = []
        for state in ready:
            writer, key, end = state.writer, state.key, ends[state.key]
            assert writer is not None
            if end.high < (writer.pmap.source_high or 0):
                self.partitions.clear_moved(key)
                self._stop(key, DataLossDetected(
                    self.spec.source.name, key[0], key[1],
                    f"{key[0]}[{key[1]}]: source offsets went backwards: the source partition ends at {end.high} "
                    f"but {writer.pmap.source_high} were already mirrored (source restarted empty or lost data)"))
                continue
            self.partitions.moved_back(state, log_start=end.low)
            skipped = skip_vanished(writer.pmap, end.low)
            if skipped is not None:
                self.vanished(key, *skipped)
                self.publisher.publish(writer, writer.map_changes())
            restart.append(self.read_from(state))
        self.publisher.save()
        if restart:
            assert self.lanes is not None
            self.lanes.assign(restart, {("source", k): e for k, e in ends.items()})


def _exactly(messages: list, offset: int):
    return messages[0] if messages and messages[0].offset() == offset else None
