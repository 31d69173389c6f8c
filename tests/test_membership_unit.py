"""The slots-group identity and the fleet watch's rules, without a broker (migrate.mirror.membership,
migrate.mirror.vacancies); what they do on real brokers is in tests/faults/test_restarts.py and
tests/test_mirror_fleet.py."""

from __future__ import annotations

import datetime as dt

import pytest

from migrate.config import ClusterProfile
from migrate.mirror import fleet
from migrate.mirror.membership import WorkerClaim, WorkerRunning, derived_instance_id
from migrate.mirror.vacancies import Vacancies, remove_after, warn_after


def test_the_derived_id_is_stable_for_a_state_file_and_differs_for_any_other(tmp_path):
    one, other = tmp_path / "a" / "state.db", tmp_path / "b" / "state.db"
    assert derived_instance_id("m", one) == derived_instance_id("m", one)
    assert derived_instance_id("m", one) != derived_instance_id("m", other)
    assert derived_instance_id("m", one) != derived_instance_id("n", one)
    assert derived_instance_id("m", one).startswith("migrate-m-")


def test_a_second_worker_on_the_same_state_file_and_mirror_is_refused_in_one_line(tmp_path):
    state = tmp_path / "state.db"
    first = WorkerClaim(state, "m")
    first.take()
    try:
        with pytest.raises(WorkerRunning) as refused:
            WorkerClaim(state, "m").take()
        assert str(state) in str(refused.value) and "--worker-id" in str(refused.value)
        assert "\n" not in str(refused.value)
        WorkerClaim(state, "other-mirror").take()  # another mirror on the same state file is fine
    finally:
        first.release()
    WorkerClaim(state, "m").take()  # free again once released


def worker(seen_at: dt.datetime, name: str = "w1") -> fleet.WorkerStatus:
    return fleet.WorkerStatus(name, "host", 1, (0, 1), 4, seen_at.isoformat(), "running", "member-1", "inst-1")


def watcher() -> Vacancies:
    profile = ClusterProfile("c", {"bootstrap.servers": "127.0.0.1:1"})
    return Vacancies(profile, profile, "m", "migrate.mirror.m", "me", 6000, idle=lambda: False)


def test_a_heartbeat_that_keeps_changing_is_never_silent_whatever_its_clock_says():
    vacancies, now = watcher(), 1000.0
    skewed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)  # its clock is 10 minutes behind
    for beat in range(30):
        assert vacancies.silence(worker(skewed + dt.timedelta(seconds=2 * beat)), now + 2 * beat) < 3 * fleet.HEARTBEAT_S


def test_an_unchanged_heartbeat_counts_its_age_only_after_three_beats_of_watching():
    vacancies, now = watcher(), 1000.0
    old = worker(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=120))
    assert vacancies.silence(old, now) == 0
    assert vacancies.silence(old, now + 3 * fleet.HEARTBEAT_S - 0.1) < 3 * fleet.HEARTBEAT_S
    assert vacancies.silence(old, now + 3 * fleet.HEARTBEAT_S) >= 120  # dead since before this watcher started


def test_the_bounds_follow_the_session_timeout():
    assert remove_after(6000) == 3 * fleet.ALIVE_AFTER_S  # at least 30 s
    assert remove_after(45_000) == 135
    assert warn_after(6000) == 16 and warn_after(45_000) == 90
