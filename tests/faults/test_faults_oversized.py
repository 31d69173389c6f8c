"""A record larger than the target topic's max.message.bytes: retried and reported, never skipped.

noida-db enforces `max.message.bytes` (Tansu stores configs without applying them, deviation 5),
so the target here is noida-db.  The record is random bytes, so that the mirror's compression
cannot shrink it under the limit.  Documented behaviour: the partition's transaction fails with
MSG_SIZE_TOO_LARGE, is aborted (nothing of it is visible on the target), and is retried with a
warning naming the error; once an operator raises the target's limit the mirror goes on and the
copy is exact.  Nothing is ever skipped.
"""

from __future__ import annotations

import signal

import pytest

from fault_support import StreamTail, wait_for
from migrate.offset_maps.store import MapStore
from migrate.state import State
from mirror_support import make_oversized_topic, make_topic, mirror_process, raise_max_message_bytes, read_contents
from support import run_cli, unique

LIMIT = 4000


@pytest.fixture
def oversized(source_cluster, cluster_pool):
    """A source topic whose 6th record is larger than the (pre-created) target topic allows."""
    target = cluster_pool("target", "noida")
    topic = unique("big")
    make_oversized_topic(source_cluster.profile, target.profile, topic, LIMIT)
    return source_cluster, target, topic


raise_limit = raise_max_message_bytes


def exited_cleanly(worker, err: StreamTail) -> None:
    """A mirror stopped with SIGTERM: exit 0 and no traceback."""
    err.join()
    assert worker.returncode == 0, err.text()
    assert "Traceback" not in err.text()


def mapped_to(state_path, name, topic=None) -> int:
    with State(state_path) as state:
        rows = [r for r in MapStore(state, name).progress() if topic is None or r["topic"] == topic]
    return rows[0]["source_high"] or 0 if rows else 0


def test_an_oversized_record_is_retried_never_skipped_and_mirrored_once_the_target_accepts_it(oversized, tmp_path):
    source, target, topic = oversized
    state_path, name = tmp_path / "state.db", unique("m")
    worker = mirror_process(state_path, source.profile, target.profile, topic, name)
    err = StreamTail(worker.stderr)
    try:
        wait_for(lambda: len(err.matching("MSG_SIZE_TOO_LARGE")) >= 2, timeout=60,
                 message="the mirror to report the oversized record twice", tail=err)
        # Never skipped: nothing at or past the big record is mapped or visible on the target.
        assert mapped_to(state_path, name) <= 5
        assert len(read_contents(target.profile, topic)[0]) <= 5
        raise_limit(target.profile, topic)
        wait_for(lambda: mapped_to(state_path, name) >= 11, timeout=90,
                 message="the mirror to go on once the target accepts the record", tail=err)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    err.join()
    assert worker.returncode == 0, err.text()
    retries = err.matching("MSG_SIZE_TOO_LARGE")
    assert all("target write failed" in line and "retrying in" in line for line in retries), retries
    assert "Traceback" not in err.text()
    assert read_contents(target.profile, topic) == read_contents(source.profile, topic)


def test_retries_of_a_failing_partition_back_off(oversized, tmp_path):
    source, target, topic = oversized
    state_path, name = tmp_path / "state.db", unique("m")
    worker = mirror_process(state_path, source.profile, target.profile, topic, name)
    err = StreamTail(worker.stderr)
    try:
        wait_for(lambda: len(err.matching("MSG_SIZE_TOO_LARGE")) >= 3, timeout=60,
                 message="three retries", tail=err)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    delays = [line.rsplit("retrying in ", 1)[1] for line in err.matching("MSG_SIZE_TOO_LARGE")]
    assert delays[:3] == ["1s", "2s", "4s"], delays


def test_until_caught_up_stops_on_a_record_the_target_refuses(oversized, tmp_path):
    source, target, topic = oversized
    try:
        result = run_cli("--state", str(tmp_path / "state.db"), "mirror", "--source", source.bootstrap,
                         "--target", target.bootstrap, "--topics", topic, "--name", unique("m"),
                         "--until-caught-up", "--session-timeout-ms", "6000", timeout=20)
    except Exception as exc:  # subprocess.TimeoutExpired: still retrying
        pytest.fail(f"--until-caught-up did not finish: {type(exc).__name__}")
    assert result.returncode in (1, 2), result.stderr
    assert "max.message.bytes" in result.stderr or "too large" in result.stderr.lower()


def test_records_arriving_after_a_refused_one_in_the_same_transaction_do_not_stop_the_mirror(oversized, tmp_path):
    """Once the target refuses a record, the transactional producer refuses every later produce of
    the transaction (`_STATE`, an abortable error); records the source keeps delivering meanwhile
    must fail that transaction (retried), not the whole mirror.  Long transactions and a live
    producer make sure records arrive after the refusal is known.  (Found by the metrics tests.)"""
    from fault_support import ContinuousProducer

    source, target, topic = oversized
    state_path, name = tmp_path / "state.db", unique("m")
    worker = mirror_process(state_path, source.profile, target.profile, topic, name, "--commit-interval", "4")
    err = StreamTail(worker.stderr)
    live = ContinuousProducer(source.profile, topic, batch=5, pause=0.1)
    try:
        wait_for(lambda: err.matching("MSG_SIZE_TOO_LARGE"), timeout=60,
                 message="the oversized record to be refused", tail=err)
        assert worker.poll() is None, err.text()
        live.stop()
        raise_limit(target.profile, topic)
        total = 11 + live.sent

        def copied() -> bool:
            assert worker.poll() is None, f"the mirror stopped:\n{err.text()[-3000:]}"
            return mapped_to(state_path, name) >= total

        wait_for(copied, timeout=120, message="the mirror to go on once the target accepts the record", tail=err)
    finally:
        live.stop()
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    exited_cleanly(worker, err)
    assert read_contents(target.profile, topic) == read_contents(source.profile, topic)


@pytest.mark.parametrize("held", [[], ["--held-records", "1"]], ids=["default", "paused-while-committing"])
def test_a_refused_record_holds_back_only_its_own_partition_not_the_rest_of_its_slot(oversized, tmp_path, held):
    """With one write slot every partition shares the refused one's transactions: while the target
    refuses its record, a healthy topic's records written after it started must still arrive.

    With --held-records 1 the slot's partitions are paused whenever a commit is in flight, so the
    refusal (reported by the commit) finds them paused.  librdkafka keeps a partition's pause through
    an unassign and a later assign (measured), so the reopened slot must resume them: before that
    was done, the healthy topic was never read again (CI found it as a 2,000-partition mirror that
    hung after one failed commit)."""
    from fault_support import ContinuousProducer

    source, target, topic = oversized
    healthy = unique("healthy")
    make_topic(source.profile, healthy, 2)
    state_path, name = tmp_path / "state.db", unique("m")
    worker = mirror_process(state_path, source.profile, target.profile, f"{topic}|{healthy}", name, "--slots", "1", *held)
    err = StreamTail(worker.stderr)
    live = ContinuousProducer(source.profile, healthy, batch=5, pause=0.05)
    try:
        wait_for(lambda: len(err.matching("MSG_SIZE_TOO_LARGE")) >= 2, timeout=60,
                 message="the oversized record to be refused twice", tail=err)
        live.stop()
        assert live.sent > 0
        wait_for(lambda: read_contents(target.profile, healthy) == read_contents(source.profile, healthy),
                 timeout=60,
                 message="the healthy topic to be copied while the refused record still waits", tail=err)
        assert mapped_to(state_path, name, topic) <= 5, "the refused record was skipped"
        assert len(read_contents(target.profile, topic)[0]) <= 5
        raise_limit(target.profile, topic)
        wait_for(lambda: mapped_to(state_path, name, topic) >= 11, timeout=90,
                 message="the mirror to go on once the target accepts the record", tail=err)
    finally:
        live.stop()
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    exited_cleanly(worker, err)
    for name_ in (topic, healthy):
        assert read_contents(target.profile, name_) == read_contents(source.profile, name_)
