"""The mirror engine's decisions on plain data: retries and backoff, lanes, read starts, slots.

A Mirror is built against clusters nobody listens on and never runs: each test calls one
decision and looks at what it chose.  The lanes are fakes that record what was assigned.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from migrate.config import ClusterProfile
from migrate.errors import DataLossDetected
from migrate.kafka import PartitionEnds
from migrate.mirror import retries
from migrate.mirror.engine import Mirror
from migrate.mirror.lanes import LIVE_LAG, Lanes
from migrate.mirror import reconcile
from migrate.mirror.reconcile import safe_read_start
from migrate.mirror.slots import slot_of, slot_partitions
from migrate.mirror.spec import MirrorSpec
from migrate.offset_maps.runs import PartitionMap, Run
from migrate.state import State


@pytest.fixture
def mirror(tmp_path):
    spec = MirrorSpec(name="m", source=ClusterProfile(name="source", settings={"bootstrap.servers": "127.0.0.1:1"}),
                      target=ClusterProfile(name="target", settings={"bootstrap.servers": "127.0.0.1:2"}),
                      topics=("t",))
    with State(tmp_path / "state.db") as state:
        yield Mirror(spec, state)


class Lane:
    """A consumer standing in for a lane: remembers what it was given."""

    def __init__(self):
        self.assigned: list[tuple[str, int, int]] = []

    def incremental_assign(self, tps):
        self.assigned.extend((tp.topic, tp.partition, tp.offset) for tp in tps)


class Message:
    def __init__(self, offset: int):
        self._offset = offset

    def offset(self) -> int:
        return self._offset


# --- backoff ---------------------------------------------------------------------------------


def test_a_failing_partition_waits_twice_as_long_each_time_up_to_the_cap(mirror):
    key = ("t", 0)
    delays = []
    for _ in range(8):
        before = time.monotonic()
        mirror.setbacks.retry_later(key, "target write failed")
        delays.append(mirror.retries.backoff[key])
        assert before + delays[-1] <= mirror.retries.at[key] <= time.monotonic() + delays[-1]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert retries.BACKOFF_START == delays[0] and retries.BACKOFF_MAX == delays[-1]


def test_each_partition_and_slot_has_its_own_backoff(mirror):
    mirror.topics.counts = {"t": 4}
    for _ in range(3):
        mirror.setbacks.retry_later(("t", 0), "x")
    mirror.setbacks.retry_later(("t", 1), "x")
    mirror.setbacks.retry_later(2, "slot fenced")  # a slot number: the whole slot is retried
    assert mirror.retries.backoff == {("t", 0): 4.0, ("t", 1): 1.0, 2: 1.0}
    assert set(mirror.retries.at) == {("t", 0), ("t", 1), 2}


def test_only_a_commit_starts_a_backoff_afresh_opening_again_does_not():
    plan = retries.Retries()
    plan.later(("t", 0))
    plan.later(("t", 0))
    plan.opened(("t", 0))  # fenced and reconciled again: proves nothing about writing
    assert plan.later(("t", 0)) == 4.0
    plan.succeeded(("t", 0))
    assert plan.later(("t", 0)) == retries.BACKOFF_START


def test_a_slot_reopened_at_once_keeps_its_partition_waiting_and_its_own_backoff():
    plan = retries.Retries()
    plan.later(3)
    plan.later(("t", 0))  # the refused partition
    plan.at_once(3)  # its slot goes on without it
    now = time.monotonic()
    assert plan.due(now) == [3]
    assert plan.waiting(("t", 0), now) and not plan.waiting(3, now) and not plan.waiting(("t", 1), now)
    assert plan.backoff[3] == retries.BACKOFF_START


def test_a_due_retry_stays_due_until_it_is_opened_or_forgotten():
    plan = retries.Retries()
    plan.at_once(("t", 0))
    plan.at_once(("t", 1))
    later = time.monotonic() + 1
    assert plan.due(later) == [("t", 0), ("t", 1)] == plan.due(later)
    plan.opened(("t", 0))
    plan.forget(("t", 1))
    assert plan.due(later) == [] and not plan.scheduled(("t", 0))


# --- lanes -----------------------------------------------------------------------------------


def test_a_partition_further_behind_than_live_lag_starts_in_the_backfill_lane():
    lanes = Lanes(Lane(), Lane())
    end = 100_000
    starts = [TopicPartition("t", 0, end - LIVE_LAG),  # exactly LIVE_LAG behind: live
              TopicPartition("t", 1, end - LIVE_LAG - 1),  # one more: backfill
              TopicPartition("t", 2, 0),
              TopicPartition("t", 3, 0)]  # end unknown: live (nothing says it is far behind)
    ends = {("source", ("t", p)): PartitionEnds(0, end) for p in range(3)}
    lanes.assign(starts, ends)
    assert lanes.live.assigned == [("t", 0, end - LIVE_LAG), ("t", 3, 0)]
    assert lanes.backfill.assigned == [("t", 1, end - LIVE_LAG - 1), ("t", 2, 0)]
    assert lanes.backfilling == {("t", 1), ("t", 2)}
    behind, live = lanes.by_lane([TopicPartition("t", p) for p in range(4)])
    assert [tp.partition for tp in behind] == [1, 2] and [tp.partition for tp in live] == [0, 3]


# --- where a partition's source is read from --------------------------------------------------


def opened(mirror, pmap: PartitionMap, log_start: int = 0):
    """Partition t[0] opened with `pmap`; its writer is a stand-in of which only the map is read."""
    return mirror.partitions.open(("t", 0), SimpleNamespace(pmap=pmap), log_start)


def test_a_contiguous_map_is_read_right_after_its_end_and_nothing_is_skipped(mirror):
    state = opened(mirror, PartitionMap([Run(0, 0, 100)]))
    state.skip_below = 50  # left over from an earlier opening
    tp = mirror.opener.read_from(state)
    assert (tp.topic, tp.partition, tp.offset) == ("t", 0, 100)
    assert state.skip_below is None


def test_a_map_with_a_gap_is_read_again_from_the_gap_and_the_reread_records_are_dropped(mirror):
    # 100..104 held an aborted transaction: its abort marker must be seen again in order
    state = opened(mirror, PartitionMap([Run(0, 0, 100), Run(105, 100, 95)]))
    tp = mirror.opener.read_from(state)
    assert tp.offset == 100 and state.skip_below == 200
    assert mirror.intake.reread(state, Message(150)) is True  # below the resume point: dropped
    assert mirror.intake.reread(state, Message(200)) is False  # the first new record: written
    assert state.skip_below is None  # and the partition reads normally from then on


def test_the_reread_never_starts_below_the_source_log_start(mirror):
    pmap = PartitionMap([Run(0, 0, 100), Run(105, 100, 95)])
    state = opened(mirror, pmap, log_start=103)  # retention removed the start of the gap
    assert mirror.opener.read_from(state).offset == 103
    state = opened(mirror, pmap, log_start=500)  # everything mirrored is gone from the source
    assert mirror.opener.read_from(state).offset == 200 and state.skip_below is None


def test_a_pruned_map_is_read_again_from_the_log_start_and_never_below_it(mirror):
    pmap = PartitionMap([Run(n, 2 * n, 1) for n in range(10)], source_low=0)  # one record per commit
    pmap.prune_below(6, 12)
    state = opened(mirror, pmap, log_start=6)
    tp = mirror.opener.read_from(state)
    assert tp.offset == 6 and state.skip_below == 10
    assert mirror.intake.reread(state, Message(6)) is True  # mapped still: dropped
    assert not getattr(state.writer, "retired", False)  # and nothing stopped the partition

def test_a_map_that_began_after_a_gap_at_its_low_end_rereads_from_its_low_end():
    # mirroring began at 10; 10..11 were markers, the first record mirrored is 12
    pmap = PartitionMap([Run(12, 0, 8)], source_low=10, source_high=20, target_high=8)
    assert safe_read_start(pmap, 20) == 10
    assert safe_read_start(pmap, 10) == 10  # resuming at the low end: nothing below it to re-read
    empty = PartitionMap()
    assert safe_read_start(empty, 0) == 0 and safe_read_start(empty, 7, log_start=3) == 7


# --- what reconciliation refuses before reading anything ---------------------------------------

SOURCE, TARGET = ClusterProfile(name="source", settings={}), ClusterProfile(name="target", settings={})


@pytest.mark.parametrize("low, high, fine", [
    (0, 100, True),  # holds exactly what the map says
    (0, 130, True),  # and more (a fenced writer's tail, for reconciliation to adopt)
    (100, 130, True),  # retention removed mirrored records: the map still describes what is left
    (0, 99, False),  # ends before the last mapped record: restarted empty or lost data
    (101, 130, False),  # records the map says it holds are gone below the log start
])
def test_a_target_that_lost_mapped_records_stops_the_partition(low, high, fine):
    pmap, ends = PartitionMap([Run(0, 0, 100)]), PartitionEnds(low, high)
    if fine:
        reconcile._check_target(pmap, TARGET, "t", 0, ends, "t[0]")
        return
    with pytest.raises(DataLossDetected) as raised:
        reconcile._check_target(pmap, TARGET, "t", 0, ends, "t[0]")
    assert raised.value.cluster == "target" and (raised.value.topic, raised.value.partition) == ("t", 0)


def test_a_source_that_went_backwards_stops_the_partition():
    pmap = PartitionMap([Run(0, 0, 100)], source_high=105)
    reconcile._check_source(pmap, SOURCE, "t", 0, PartitionEnds(0, 105), "t[0]")
    with pytest.raises(DataLossDetected, match="went backwards.*ends at 104 but 105"):
        reconcile._check_source(pmap, SOURCE, "t", 0, PartitionEnds(0, 104), "t[0]")
    reconcile._check_source(PartitionMap(), SOURCE, "t", 0, PartitionEnds(0, 0), "t[0]")  # nothing mirrored yet


# --- slots -----------------------------------------------------------------------------------


def test_slot_of_is_pinned_so_that_workers_of_different_versions_agree():
    # Changing the function moves partitions between slots: two versions in one fleet would both
    # write a partition under different transactional.ids, and neither would fence the other.
    assert [slot_of("orders", p, 8) for p in range(10)] == [6, 7, 0, 1, 2, 3, 4, 5, 6, 7]
    assert slot_of("payments", 0, 256) == 50 and slot_of("wf.1", 299, 16) == 8


def test_slot_partitions_lists_exactly_the_partitions_slot_of_puts_in_the_slot():
    counts = {"orders": 10, "payments": 3, "empty": 0}
    assert slot_partitions(counts, 3, 8) == [("orders", 5), ("payments", 1)]
    assert slot_partitions(counts, 0, 1) == [("orders", p) for p in range(10)] + [("payments", p) for p in range(3)]
    for slot in range(8):
        assert all(slot_of(t, p, 8) == slot for t, p in slot_partitions(counts, slot, 8))


def test_a_map_producer_failing_with_the_fatal_code_is_replaced_and_other_errors_are_raised(mirror):
    # After its fatal error a client raises code _FATAL with the fatal flag unset (an idempotent map
    # producer whose target restarted empty, seen in a full run): that too is a producer to replace.
    mirror.publisher.producer = None
    mirror.publisher.producer_failed(KafkaException(KafkaError(KafkaError._FATAL, "Unable to produce message")))
    assert mirror.publisher.producer is not None
    mirror.publisher.producer_failed(KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True)))
    with pytest.raises(KafkaException):
        mirror.publisher.producer_failed(KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out")))


class _RefusingProducer:
    """A producer whose transaction already failed: librdkafka refuses every later produce with _STATE."""

    def produce(self, *args, **kwargs):
        raise KafkaException(KafkaError(KafkaError._STATE, "Unable to produce message"))


class _Message:
    def __init__(self, offset: int):
        self._offset = offset

    def offset(self):
        return self._offset

    def timestamp(self):
        return (1, 1_700_000_000_000)

    def value(self):
        return b"v"

    def key(self):
        return b"k"

    def headers(self):
        return None


def test_a_record_refused_by_a_failed_transaction_keeps_its_partition_open_until_the_slot_aborts():
    # An end-of-partition read after such records is applied to the map only once nothing of the
    # partition is open: counted as not written, they let the map advance past them unmapped.
    from migrate.mirror.writer import PartitionWriter

    slot = SimpleNamespace(producer=_RefusingProducer(), open=True, count=0, produce_errors=[])
    writer = PartitionWriter(slot, "t", "t", 0, PartitionMap([], 0, 0, 0))
    for offset in range(5):
        writer.write(_Message(offset))
    assert writer.open and slot.count == 5
    assert [name for _, name, _ in slot.produce_errors] == ["_STATE"] * 5


class _FullThenRefusingProducer(_RefusingProducer):
    """The queue is full, and while the writer waits for room the transaction fails."""

    def __init__(self):
        self.calls = 0

    def produce(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise BufferError("Local: Queue full")
        super().produce()

    def poll(self, timeout):
        return 0


def test_a_transaction_that_fails_while_the_writer_waits_for_queue_room_is_reported_by_the_commit_not_raised():
    from migrate.mirror.writer import PartitionWriter

    slot = SimpleNamespace(producer=_FullThenRefusingProducer(), open=True, count=0, produce_errors=[])
    writer = PartitionWriter(slot, "t", "t", 0, PartitionMap([], 0, 0, 0))
    writer.write(_Message(0))
    assert writer.open and [name for _, name, _ in slot.produce_errors] == ["_STATE"]


class _FencedProducer:
    """A slot producer another worker fenced: librdkafka raises the fatal error from poll and begin."""

    def _fenced(self, *args):
        raise KafkaException(KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True))

    poll = begin_transaction = produce = _fenced


def test_a_slot_whose_client_fails_when_polled_is_given_up_like_a_failed_commit_and_the_others_are_still_polled():
    # Measured (the fleet's paused-worker test): a worker resumed after its slots were taken
    # raised _FENCED out of poll and ended with a stack trace.
    from migrate.mirror.commits import Commits
    from migrate.mirror.writer import SlotWriter

    fenced = SimpleNamespace(slot=1, committing=False, producer=_FencedProducer())
    fenced.poll = lambda: SlotWriter.poll(fenced)
    polled = []
    healthy = SimpleNamespace(slot=2, committing=False, poll=lambda: polled.append(2))
    failed = []
    commits = Commits(None, SimpleNamespace(slots={1: fenced, 2: healthy}), None, None, None, None, None,
                      handle=lambda messages, backfill: None, failed=lambda slot, exc: failed.append((slot.slot, exc)))
    commits.poll_slots()
    assert [number for number, _ in failed] == [1] and polled == [2]
    assert failed[0][1].error_names == ("_FENCED",) and not failed[0][1].refused


def test_a_fenced_slot_that_cannot_begin_a_transaction_fails_the_slot_instead_of_raising_a_client_error():
    from migrate.errors import WriterFailed
    from migrate.mirror.writer import PartitionWriter, SlotWriter

    slot = SimpleNamespace(slot=1, producer=_FencedProducer(), open=False, count=0, produce_errors=[])
    slot.begin = lambda: SlotWriter.begin(slot)
    writer = PartitionWriter(slot, "t", "t", 0, PartitionMap([], 0, 0, 0))
    with pytest.raises(WriterFailed, match="beginning a transaction of slot 1"):
        writer.write(_Message(0))
    assert not slot.open and slot.count == 0


def test_a_pruning_pass_drops_at_most_its_budget_per_turn_and_skips_partitions_that_moved(monkeypatch):
    import threading

    from migrate.mirror import pruning
    from migrate.mirror.partitions import Partitions

    monkeypatch.setattr(pruning, "PRUNE_BUDGET", 9)
    partitions = Partitions()
    writers = []
    for partition in range(4):  # 10 runs each, one record per commit
        pmap = PartitionMap([Run(n, 2 * n, 1) for n in range(10)], source_low=0)
        writer = SimpleNamespace(source_topic="t", partition=partition, pmap=pmap, map_changes=list,
                                 slot=SimpleNamespace(committing=partition == 3))
        partitions.open(("t", partition), writer, 0)
        writers.append(writer)
    partitions.give_up([("t", 2)])  # given up since the read began: another worker may hold it now
    saves = []
    publisher = SimpleNamespace(publish=lambda *_: None, save=lambda: saves.append(1))
    cluster = ClusterProfile("c", {"bootstrap.servers": "127.0.0.1:1"})
    pruner = pruning.Pruner(MirrorSpec(name="m", source=cluster, target=cluster, topics=("t",)), partitions, publisher)
    done = threading.Event()
    done.set()
    pruner._reading = SimpleNamespace(done=done, failed="", writers=writers,
                                      starts={("t", p): (100, 100) for p in range(4)})
    assert pruner.prune(0.0) == 9  # one partition's 9 of 10 runs (the last stays): the budget is spent
    assert pruner._applying  # the rest waits for the next turn
    assert pruner.prune(0.0) == 9 and not pruner._applying
    assert pruner.prune(0.0) == 0  # the pass is over; the next is an interval away
    assert [len(w.pmap.runs) for w in writers] == [1, 1, 10, 10] and len(saves) == 2
