"""Reconciliation: make a partition's offset map agree with what the target really holds.

Run on every start and every partition assignment, after the partition's writer has fenced
any previous writer and before anything new is written.  The map is a prefix of the truth
(it is written after the records it describes), so the target may hold mirrored records
beyond it: records a crashed or fenced worker wrote but did not map.  We read the target
from the end of the map, pair each record found with the next source records by content
digest, extend the map with each verified pair, and resume the source after them.

Anything else stops the partition with a clear error rather than guessing:
- the target holds a record that is not the next source record (another writer, a
  recreated topic): PartitionDiverged;
- the target ends before what the map says it holds, or the topic vanished, or the source
  went backwards: DataLossDetected.

A source whose log start moved past the end of the map (retention or DeleteRecords deleted
records before they were mirrored) is not stopped: those offsets cannot be mirrored by anyone,
so the map skips them, reconciliation reports them as `vanished`, and the mirror goes on from
the source's real start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import DataLossDetected, KafkaOperationError, PartitionDiverged
from migrate.offset_maps.runs import PartitionMap
from migrate.records import from_message
from migrate.validators.digest import record_digest

log = logging.getLogger("migrate.mirror")


@dataclass(frozen=True)
class Prefetched:
    """What a bulk read over many partitions already found for one partition (None: not read).

    `last`: the records at the last mapped pair's offsets (source, target), each None when absent;
    `tail`: the committed target records beyond the map.
    """

    last: tuple | None = None
    tail: list | None = None


@dataclass(frozen=True)
class Reconciled:
    resume_source: int  # the source offset to read next
    adopted: int  # records found on the target beyond the map and verified
    source_low: int = 0  # the source partition's log start, as read
    vanished: tuple[int, int] | None = None  # [first, end) source offsets deleted before they were mirrored


def reconcile(pmap: PartitionMap, source: ClusterProfile, target: ClusterProfile,
              source_topic: str, target_topic: str, partition: int,
              source_reader, target_reader, src_end=None, tgt_end=None, raw_readers=None,
              prefetched: Prefetched | None = None) -> Reconciled:
    """Extend pmap with the verified target tail; `src_end`/`tgt_end` may be read beforehand in bulk."""
    where = f"{source_topic}[{partition}] -> {target_topic}[{partition}]"
    if src_end is None:
        src_end = kafka.partition_ends(source, [(source_topic, partition)])[(source_topic, partition)]
    try:
        if tgt_end is None:
            tgt_end = kafka.partition_ends(target, [(target_topic, partition)])[(target_topic, partition)]
    except KafkaOperationError as exc:
        if pmap.empty:
            raise
        raise DataLossDetected(target.name, target_topic, partition,
                               f"target {target_topic}[{partition}] cannot be read although the map says it holds "
                               f"mirrored records up to offset {pmap.next_target} (topic vanished?): {exc}") from exc
    if pmap.source_low is None:
        pmap.start_at(src_end.low, tgt_end.low if tgt_end.high > tgt_end.low else tgt_end.high)
    _check_source(pmap, source, source_topic, partition, src_end, where)
    vanished = skip_vanished(pmap, src_end.low)
    _check_target(pmap, target, target_topic, partition, tgt_end, where)
    _check_last_pair(pmap, source, target, source_topic, target_topic, partition, src_end, tgt_end, where,
                     raw_readers, prefetched.last if prefetched else None)

    target_from = max(pmap.target_high or 0, tgt_end.low)
    assert pmap.source_high is not None  # a started map (start_at above) always has a source_high
    source_from = pmap.source_high
    adopted = 0
    tail_known_empty = prefetched is not None and prefetched.tail is not None and not prefetched.tail
    if tgt_end.high > target_from and not tail_known_empty:
        read_from = safe_read_start(pmap, source_from, src_end.low)
        source_iter = (m for m in kafka.iter_partition(source_reader, source, source_topic, partition, read_from,
                                                       src_end.high) if m.offset() >= source_from)
        for tmsg in kafka.iter_partition(target_reader, target, target_topic, partition, target_from, tgt_end.high):
            smsg = next(source_iter, None)
            if smsg is None:
                raise PartitionDiverged(
                    target_topic, partition,
                    f"{where}: target offset {tmsg.offset()} holds a record the source does not have "
                    f"(the source ends at {src_end.high}); another writer on the target partition? "
                    "stop it, then delete or recreate the target topic",
                )
            trec, srec = from_message(tmsg), from_message(smsg)
            if record_digest(trec) != record_digest(srec):
                raise PartitionDiverged(
                    target_topic, partition,
                    f"{where}: target offset {trec.offset} does not match source offset {srec.offset} "
                    f"({_difference(srec, trec)}); another writer on the target partition? "
                    "the partition is stopped, the others go on",
                )
            pmap.append(srec.offset, trec.offset)
            adopted += 1
    pmap.advance(target_high=tgt_end.high)
    if adopted:
        log.info("%s: adopted %d records found on the target beyond the map", where, adopted)
    return Reconciled(pmap.source_high, adopted, src_end.low, vanished)


def skip_vanished(pmap: PartitionMap, log_start: int) -> tuple[int, int] | None:
    """Move the map past source offsets that were deleted before they were mirrored.

    Returns the skipped range [first, end), or None.  An empty map that starts at the log
    start skips nothing: records deleted before the mirror first saw the partition were
    never part of what it was asked to copy.
    """
    if pmap.source_high is None or log_start <= pmap.source_high:
        return None
    skipped = (pmap.source_high, log_start)
    pmap.advance(source_high=log_start)
    return skipped


def safe_read_start(pmap: PartitionMap, resume: int, log_start: int = 0) -> int:
    """Where a read_committed read must start to see every committed record at or after `resume`.

    A reader that starts after an aborted transaction's marker depends on the broker to list
    only the aborted transactions that overlap the fetched range.  Some platforms list older
    ones too (noida-db 0.2.3, measured), and the client then hides every later record of that
    producer.  Starting at the first gap below `resume` (the first skipped offset: every abort
    lies at or after it) lets the client see each abort marker in order; records below
    `resume` are read again and dropped.
    Never below the log start: what lies there is gone (and cannot be fetched).
    """
    gap = pmap.first_gap_below(resume)
    return resume if gap is None else min(resume, max(gap, log_start))


def _check_source(pmap, source, topic, partition, ends, where) -> None:
    if pmap.source_high is not None and ends.high < pmap.source_high:
        raise DataLossDetected(
            source.name, topic, partition,
            f"{where}: source offsets went backwards: the source partition ends at {ends.high} but "
            f"{pmap.source_high} were already mirrored (source restarted empty or lost data)",
        )


def _check_last_pair(pmap, source, target, source_topic, target_topic, partition, src_end, tgt_end,
                     where, raw_readers=None, prefetched_last=None) -> None:
    """The last mapped pair must still hold the same record on both sides.

    Offsets alone cannot tell a partition that restarted empty and was refilled past its old
    end from the one we mirrored; the content of the last mapped record can.
    """
    if pmap.empty:
        return
    last = pmap.runs[-1]
    source_offset, target_offset = last.source_end - 1, last.target_end - 1
    if source_offset < src_end.low or target_offset < tgt_end.low:
        return  # retention removed it; the other checks cover the ends
    # read_uncommitted: the record at a mapped offset is committed, and a read_committed read
    # starting mid-partition is exactly what some platforms get wrong (see safe_read_start).
    found = []
    sides = ((source, source_topic, source_offset), (target, target_topic, target_offset))
    for index, (profile, topic, offset) in enumerate(sides):
        if prefetched_last is not None:
            message = prefetched_last[index]
        else:
            shared = raw_readers[index] if raw_readers else None
            reader = shared or raw_reader(profile)
            try:
                message = next(kafka.iter_partition(reader, profile, topic, partition, offset, offset + 1), None)
            finally:
                if shared is None:
                    reader.close()
        found.append(record_digest(from_message(message)) if message is not None and message.offset() == offset
                     else None)
    if None in found or found[0] != found[1]:
        raise DataLossDetected(
            source.name, source_topic, partition,
            f"{where}: the last mirrored pair no longer matches (source offset {source_offset}, target offset "
            f"{target_offset}): the source or the target partition was replaced (restarted empty and "
            "refilled, or the topic was recreated); the map no longer describes it, so nothing more is mirrored",
        )


def raw_reader(profile):
    """A read_uncommitted reader: it returns exactly the record at an offset, committed or not."""
    return kafka.consumer(profile, **{"isolation.level": "read_uncommitted", "enable.partition.eof": True,
                                      "fetch.wait.max.ms": 20})


def _check_target(pmap, target, topic, partition, ends, where) -> None:
    held = pmap.next_target
    if held is not None and ends.high < held:
        raise DataLossDetected(
            target.name, topic, partition,
            f"{where}: target offsets went backwards: the target partition ends at {ends.high} but the map "
            f"says it holds mirrored records up to {held - 1} (target restarted empty or lost data)",
        )
    if held is not None and ends.low > held:
        raise DataLossDetected(
            target.name, topic, partition,
            f"{where}: target records below {ends.low} are gone (the map holds records up to {held - 1})",
        )


def _difference(a, b) -> str:
    for field in ("key", "value", "headers", "timestamp"):
        if getattr(a, field) != getattr(b, field):
            return f"{field} differs"
    return "content differs"
