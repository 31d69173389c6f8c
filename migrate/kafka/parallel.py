"""Concurrent calls: `at_once` runs independent Kafka requests from a few threads.

Most requests the tool makes mostly wait for a broker's answer, so a few are sent at once.
Invariants: answers come back in call order, whatever order the calls end in; every call
has ended before anything is raised, and the exception raised is the first in call order.
"""

from __future__ import annotations

import concurrent.futures
from typing import Callable, TypeVar

T = TypeVar("T")


def at_once(calls: list[Callable[[], T]], parallel: int) -> list[T]:
    """The calls' answers, in call order, from up to `parallel` threads at a time; the first
    exception raised (in call order) is raised here, once every call has ended."""
    if len(calls) <= 1 or parallel <= 1:
        return [call() for call in calls]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(parallel, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
    return [future.result() for future in futures]
