"""The byte-rate limit (--max-bytes-per-second): how many source bytes a worker reads per second.

What is counted: the key and value bytes of every record the loop takes from either lane
(headers and protocol overhead are left out: they are small beside the payload and would cost
a look at every record).  The budget is a token bucket filled at the limit, holding at most
BURST_S seconds of it and starting empty, so over any t seconds a worker takes at most
limit * (t + BURST_S) bytes.

Live partitions first, within the limit (migrate.mirror.intake): the backfill lane is read only
while the budget is positive, and only as many records as it covers (by the records' mean size
so far); the live lane may take the budget into debt down to one burst, so a live record is not
held behind a throttled backlog, but live traffic alone above the limit is limited too.  While
the backfill waits for its budget the loop waits on the live lane, never longer than the
budget takes to refill, and never idles with a record to take.

What the source sees: the client fetches ahead of what the loop takes.  With a limit the lanes'
prefetch is bounded to about half a second of it (`lane_settings`), so on Kafka and on Tansu,
which honour Fetch size limits, the bytes fetched follow the limit closely.  noida-db ignores
Fetch size limits (measured: asked for 1 MB per fetch, it answered a 20 MB partition in one
response), so there one Fetch brings a partition's whole backlog: the limit then paces what the
mirror reads from its client and writes to the target, and when the next fetch happens, but not
the size of a fetch.  The bytes really fetched are read from librdkafka's statistics (one search
from the end of the statistics text per second, only when a limit is set) and served as
`migrate_mirror_source_fetched_bytes_total`, so the difference shows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

BURST_S = 0.25  # the bucket holds this many seconds of the limit
LIVE_DEBT_S = BURST_S  # how far the live lane may take the budget below zero
STATS_INTERVAL_MS = 1000
_RX_BYTES = re.compile(r'"rx_bytes":\s*(\d+)')


@dataclass(frozen=True)
class Figures:
    """What the limit did so far, for the metrics."""

    limit: int  # bytes per second
    live_bytes: int  # taken from the live lane
    backfill_bytes: int  # taken from the backfill lane
    waited_s: float  # the backfill lane waited for its budget this long
    fetched_bytes: int  # fetched by the lanes' clients (librdkafka statistics)


class ByteBudget:
    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.capacity = limit * BURST_S
        self.clock = clock
        self.tokens = 0.0
        self.at = clock()
        self.mean_size = 1000.0  # bytes per record, learnt from what was taken
        self.waited = 0.0  # seconds the backfill lane waited for budget (metrics)
        self.taken = {"live": 0, "backfill": 0}  # bytes taken per lane (metrics)

    def refill(self) -> float:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.limit)
        self.at = now
        return self.tokens

    @property
    def live_open(self) -> bool:
        """The live lane may be read (its debt is within one burst)."""
        return self.tokens > -self.limit * LIVE_DEBT_S

    def backfill_records(self, most: int) -> int:
        """How many backfill records the budget covers now (0: wait)."""
        if self.tokens <= 0:
            return 0
        return max(1, min(most, int(self.tokens / self.mean_size)))

    def wait_s(self) -> float:
        """Seconds until the budget is positive again."""
        return max(0.0, -self.tokens / self.limit) if self.tokens <= 0 else 0.0

    def charge(self, messages: list, lane: str) -> None:
        if not messages:
            return
        size = 0
        for message in messages:
            if message.error() is None:  # an event (end of partition) carries its text as its value
                size += len(message.value() or b"") + len(message.key() or b"")
        self.tokens -= size
        self.taken[lane] += size
        self.mean_size = 0.8 * self.mean_size + 0.2 * max(1.0, size / len(messages))


class FetchedBytes:
    """Bytes a lane's client fetched from the source, from librdkafka's statistics (its `stats_cb`)."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, stats: str) -> None:
        # The client's total, a top-level field written after the per-broker and per-partition
        # sections (which spell theirs "rxbytes"): looked for from the end, not parsed as JSON,
        # since the text grows with the partitions (megabytes at 2,000).
        at = stats.rfind('"rx_bytes"')
        found = _RX_BYTES.match(stats, at) if at >= 0 else None
        if found:
            self.total = max(self.total, int(found.group(1)))


def lane_settings(limit: int, fetched: FetchedBytes | None = None) -> dict[str, object]:
    """Client settings of a lane under a limit: prefetch bounded to about half a second of it."""
    if not limit:
        return {}
    half = max(64 * 1024, min(limit // 2, 64 * 1024 * 1024))
    settings: dict[str, object] = {
        "queued.max.messages.kbytes": max(64, half // 1024),
        "queued.min.messages": 1000,
        "fetch.max.bytes": max(half, 1_048_588),  # librdkafka wants at least message.max.bytes
        "max.partition.fetch.bytes": min(half, 1_048_576),
    }
    if fetched is not None:
        settings.update({"statistics.interval.ms": STATS_INTERVAL_MS, "stats_cb": fetched})
    return settings
