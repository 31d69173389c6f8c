"""The CPU seconds of this process (every thread), sampled, to tell start-up from the copy itself."""

from __future__ import annotations

import threading
import time


class CpuClock:
    """Samples the process's CPU seconds every 20 ms from creation until `at` is first asked."""

    def __init__(self) -> None:
        self.samples = [(time.monotonic(), time.process_time())]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.samples.append((time.monotonic(), time.process_time()))

    def at(self, moment: float) -> float:
        """CPU seconds used by `moment` (a time.monotonic() value): the last sample not after it."""
        self._done.set()
        self._thread.join()
        return max(cpu for when, cpu in self.samples if when <= moment)
