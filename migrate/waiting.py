"""Waiting on a condition: poll it until it holds, its time is up, or the wait is cancelled.

Every wait of the tool (a playbook step on a mirror's lag or a group's state, the demo on
its apps) has one shape, owned here: look at the condition, give up if the time is up or
someone cancelled, else sleep and look again.  The condition is looked at before the clock,
so a condition that already holds wins over a deadline that just passed or a cancel.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], timeout: float | None, interval: float,
               on_timeout: str | Callable[[], BaseException], *,
               cancel: threading.Event | None = None) -> T:
    """The first truthy value `condition()` returns, looking every `interval` seconds.

    Gives up once more than `timeout` seconds have passed (None: never) or `cancel` is set
    (a playbook's stop cancels its waits at half the stop grace), and raises: a string
    `on_timeout` as `TimeoutError(on_timeout)`; a callable's returned exception, built only
    then, so it can say what the condition last saw (and clean up first).  Whatever the
    condition raises goes through at once.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if (cancel is not None and cancel.is_set()) or (deadline is not None and time.monotonic() > deadline):
            raise TimeoutError(on_timeout) if isinstance(on_timeout, str) else on_timeout()
        time.sleep(interval)
