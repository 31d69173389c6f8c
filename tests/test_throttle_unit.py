"""The byte budget of --max-bytes-per-second over a fake clock (migrate.mirror.throttle)."""

from __future__ import annotations

import pytest

from migrate.mirror.throttle import BURST_S, ByteBudget, FetchedBytes, lane_settings


class Record:
    def __init__(self, size: int):
        self._value = b"v" * (size - 4)

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"key!"

    def error(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_over_any_interval_the_backfill_takes_at_most_the_limit_plus_one_burst():
    clock, limit = Clock(), 1_000_000
    budget = ByteBudget(limit, clock)
    taken = []  # (time, bytes)
    for _turn in range(2000):  # a loop turn every 5 ms, 10 s in all, backfill always wanting more
        clock.now += 0.005
        budget.refill()
        wanted = budget.backfill_records(10_000)
        if wanted:
            batch = [Record(1000)] * wanted
            budget.charge(batch, "backfill")
            taken.append((clock.now, 1000 * wanted))
    total = sum(size for _t, size in taken)
    assert total == budget.taken["backfill"]
    assert 0.97 <= total / (limit * 10) <= 1.0 + BURST_S / 10
    for start in range(0, len(taken), 50):
        t0 = taken[start][0]
        window = [(t, s) for t, s in taken if t0 <= t <= t0 + 1.0]
        assert sum(s for _t, s in window) <= limit * (1.0 + BURST_S) + 1000


def test_the_backfill_waits_while_the_budget_is_spent_and_live_may_run_one_burst_into_debt():
    clock = Clock()
    budget = ByteBudget(100_000, clock)
    assert budget.backfill_records(10) == 0 and budget.wait_s() == 0.0  # starts empty: no first burst
    clock.now += 0.5
    budget.refill()
    assert budget.tokens == 25_000  # never more than one burst (0.25 s of the limit)
    assert budget.backfill_records(10_000) == 25  # records of 1,000 bytes so far
    budget.charge([Record(1000)] * 45, "live")  # live takes more than the budget holds
    assert budget.live_open and budget.backfill_records(10) == 0
    assert budget.wait_s() == pytest.approx(0.2)
    budget.charge([Record(1000)] * 5, "live")
    assert not budget.live_open  # one burst of debt: live traffic above the limit is limited too
    assert budget.taken == {"live": 50_000, "backfill": 0}


def test_the_mean_record_size_is_learnt():
    budget = ByteBudget(1_000_000, Clock())
    for _ in range(30):
        budget.charge([Record(200)] * 10, "backfill")
    assert budget.mean_size == pytest.approx(200, rel=0.01)


def test_lane_prefetch_is_bounded_to_half_a_second_of_the_limit_and_statistics_are_read():
    assert lane_settings(0) == {}
    fetched = FetchedBytes()
    settings = lane_settings(8_000_000, fetched)
    assert settings["queued.max.messages.kbytes"] == 3906 and settings["max.partition.fetch.bytes"] == 1_048_576
    assert settings["stats_cb"] is fetched and settings["statistics.interval.ms"] == 1000
    fetched('{"name": "c", "brokers": {"b": {"rxbytes": 999999999}}, "rx": 10, "rx_bytes": 123456, "rxmsgs": 1}')
    assert fetched.total == 123456


def test_max_bytes_per_second_accepts_units():
    from migrate.cli.mirror import ByteSize

    size = ByteSize()
    assert [size.convert(v, None, None) for v in ("0", "500000", "500KB", "20MB", "1.5MB", "1GiB")] == [
        0, 500_000, 500_000, 20_000_000, 1_500_000, 1024**3]
    for bad in ("fast", "-1", "MB", "5KMB"):
        with pytest.raises(Exception, match="is not a byte count"):
            size.convert(bad, None, None)
