"""When a partition or a write slot that failed is opened again: one growing backoff each.

A retry is scheduled for a partition (a `(topic, partition)` key) or for a whole write slot
(its number).  The rules:

1. The first failure waits BACKOFF_START; each further failure of the same key doubles the
   wait, up to BACKOFF_MAX.
2. Every partition and every slot has its own backoff: a partition whose record the target
   refuses waits on while its slot is reopened at once without it (`at_once`).
3. Only a commit that went through starts a key's backoff afresh (`succeeded`): opening again
   proves nothing (a slot that fences but cannot write would otherwise retry every second).
4. A scheduled key is due from its time on, and stays due until it is opened (`opened`),
   failed for good (`forget`), or scheduled again (rule 1).
"""

from __future__ import annotations

import time

BACKOFF_START, BACKOFF_MAX = 1.0, 30.0

What = tuple[str, int] | int  # a partition or a write slot


class Retries:
    def __init__(self) -> None:
        self.at: dict[What, float] = {}  # key or slot -> monotonic time it is due
        self.backoff: dict[What, float] = {}  # key or slot -> its last wait

    def later(self, what: What) -> float:
        """Schedule `what` after its next wait (rules 1 and 2); returns the wait."""
        delay = min(BACKOFF_MAX, self.backoff.get(what, BACKOFF_START / 2) * 2)
        self.backoff[what] = delay
        self.at[what] = time.monotonic() + delay
        return delay

    def at_once(self, what: What) -> None:
        """Due now, its backoff untouched (rule 2)."""
        self.at[what] = time.monotonic()

    def scheduled(self, what: What) -> bool:
        return what in self.at

    def waiting(self, what: What, now: float) -> bool:
        """Scheduled, and its time has not come."""
        return self.at.get(what, now) > now

    def due(self, now: float) -> list[What]:
        return [what for what, when in self.at.items() if now >= when]

    def opened(self, what: What) -> None:
        """Opened again: no longer scheduled; the backoff stays until a commit (rule 3)."""
        self.at.pop(what, None)

    forget = opened  # failed for good, or given up: nothing is scheduled for it

    def succeeded(self, what: What) -> None:
        """A commit went through: the next failure starts from BACKOFF_START (rule 3)."""
        self.backoff.pop(what, None)
