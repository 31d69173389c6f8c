"""The live commit policy (migrate.mirror.commits rule 2), over fake slots and a fake pool: no broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from migrate.config import ClusterProfile
from migrate.mirror import commits as commits_module
from migrate.mirror.commits import Commits
from migrate.mirror.spec import MirrorSpec
from migrate.mirror.writer import SlotWriter


@dataclass
class Slot:
    """The parts of a SlotWriter the policy reads."""

    slot: int
    open: bool = False
    committing: bool = False
    backfill: bool = False
    started_at: float = 0.0
    count: int = 0
    due = SlotWriter.due

    def opened(self, at: float, backfill: bool = False) -> Slot:
        self.open, self.started_at, self.count, self.backfill = True, at, 1, backfill
        return self

    def commit(self) -> dict:
        return {}


@dataclass
class Pool:
    submitted: list = field(default_factory=list)

    def submit(self, fn):
        self.submitted.append(fn.__self__.slot)
        return SimpleNamespace(done=lambda: False)


def policy(*slots: Slot, backfilling: bool = False, **spec) -> tuple[Commits, Pool]:
    cluster = ClusterProfile("c", {"bootstrap.servers": "127.0.0.1:1"})
    mirror_spec = MirrorSpec(name="m", source=cluster, target=cluster, topics=("t",), **spec)
    commits = Commits(mirror_spec, SimpleNamespace(slots={s.slot: s for s in slots}), None, None, None, None, None,
                      handle=lambda *_: None, failed=lambda *_: None)
    pool = Pool()
    commits.pool = pool  # type: ignore[assignment]
    commits.lanes = SimpleNamespace(backfilling={("t", 0)} if backfilling else set())  # type: ignore[assignment]
    return commits, pool


def test_no_live_slot_commits_before_the_oldest_has_been_open_an_interval():
    commits, pool = policy(Slot(0).opened(0.0), Slot(1).opened(0.01))
    commits.start(now=0.029)
    assert pool.submitted == []


def test_once_the_oldest_live_transaction_is_due_every_open_live_slot_commits_with_it():
    # Slot 1 opened 25 ms after slot 0: its record does not wait for a deadline of its own.
    commits, pool = policy(Slot(0).opened(0.0), Slot(1).opened(0.025), Slot(2))
    commits.start(now=0.031)
    assert pool.submitted == [0, 1]


def test_a_backfill_slot_keeps_its_own_longer_interval():
    commits, pool = policy(Slot(0).opened(0.0), Slot(1).opened(0.0, backfill=True))
    commits.start(now=0.031)
    assert pool.submitted == [0]
    commits.start(now=0.6)
    assert pool.submitted == [0, 1]


def test_the_live_interval_is_the_option_and_longer_while_backfilling():
    commits, pool = policy(Slot(0).opened(0.0), live_commit_interval_s=0.08)
    commits.start(now=0.05)
    assert pool.submitted == []
    commits.start(now=0.081)
    assert pool.submitted == [0]
    backfilling, _ = policy(backfilling=True, live_commit_interval_s=0.015)
    assert backfilling.live_interval() == commits_module.LIVE_COMMIT_BACKFILLING_S


def test_the_loop_waits_for_records_until_the_oldest_open_transaction_is_due():
    commits, _ = policy(Slot(0).opened(1.0), Slot(1).opened(1.02), Slot(2))
    assert commits.live_wait(now=1.01) == pytest.approx(0.02)
    assert commits.live_wait(now=1.5) == 0.0


def test_a_slot_still_holding_backfill_records_is_waited_for_at_its_own_interval():
    commits, _ = policy(Slot(0).opened(0.0, backfill=True))
    assert commits.live_wait(now=0.1) == pytest.approx(0.4)


def test_with_nothing_open_the_loop_waits_for_the_first_record_and_while_committing_only_briefly():
    idle, _ = policy(Slot(0), Slot(1))
    assert idle.live_wait(now=5.0) is None
    busy, _ = policy(Slot(0).opened(0.0))
    busy.in_flight[0] = SimpleNamespace()  # type: ignore[assignment]
    assert busy.live_wait(now=0.001) == commits_module.COMMIT_CHECK_S
