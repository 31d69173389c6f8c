"""The mirror's progress for people: one line that fits the terminal, or an INFO log line.

On a terminal the line is rewritten in place and never wider than the terminal (a wrapped
line cannot be rewritten, and every update would become a new line); fields are dropped,
least useful first, until it fits.  Before the first partition is assigned and reconciled it
says what it is waiting for ("starting: ..."), since that can take seconds.  Without a
terminal, routine progress is logged at INFO every `log_every` seconds: WARNING is kept for
what needs attention.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Callable, Protocol, TextIO, cast

from migrate.cli.common import terminal_width

log = logging.getLogger("migrate.mirror")


class Printer(Protocol):
    """What `printer` returns: the progress callback, and `start()` for the line before the first progress."""

    def __call__(self, progress: Any) -> None: ...

    def start(self) -> None: ...


def starting_text(group: str, progress=None) -> str:
    """What the mirror does before it copies: join its group, then reconcile each assigned partition."""
    if progress is None or not progress.owned:
        return f"starting: joining group {group}"
    return f"starting: joining group {group}, reconciling {progress.owned} partitions"


def progress_fields(progress, rate: float) -> list[str]:
    """The fields of a progress line, most important first."""
    lag = sum(progress.lag.values())
    eta = f"{lag / rate:.0f}s" if rate > 0 and lag else "-"
    fields = [f"{progress.records:,} records", f"lag {lag:,}", f"{rate:,.0f} rec/s", f"ETA {eta}",
              f"partitions {progress.owned}" + (f" ({progress.failed} stopped)" if progress.failed else ""),
              f"{progress.bytes / max(progress.seconds, 1e-6) / 1e6:.1f} MB/s"]
    return fields


def fit_line(fields: list[str], width: int) -> str:
    """As many fields as fit in `width - 1` columns (the last column stays free: no auto-wrap)."""
    kept = list(fields)
    while len(kept) > 1 and len("  ".join(kept)) > width - 1:
        kept.pop()
    return "  ".join(kept)[: width - 1]


def printer(group: str, terminal: bool, stream: TextIO | None = None, log_every: float = 10.0,
            width: Callable[[], int] = terminal_width) -> Printer:
    """A progress callback for `Mirror(on_progress=...)`; call `.start()` on it before the mirror runs."""
    state = {"last_log": 0.0, "last_records": 0, "last_seconds": 0.0, "started": False}

    def write(text: str) -> None:
        out = stream or sys.stderr
        out.write("\r" + fit_line([text], width()) + "\x1b[K")
        out.flush()

    def show(progress) -> None:
        seconds = max(progress.seconds - state["last_seconds"], 1e-6)
        rate = (progress.records - state["last_records"]) / seconds
        starting = not state["started"] and not progress.records and not progress.lag
        if progress.records or progress.lag:
            state["started"] = True
        if terminal:
            write(starting_text(group, progress) if starting else fit_line(progress_fields(progress, rate), width()))
        elif progress.seconds - state["last_log"] >= log_every:
            log.info("progress %s", json.dumps({"records": progress.records, "rate": round(rate),
                                                "lag": progress.lag, "partitions": progress.owned,
                                                "stopped": progress.failed}))
            state["last_log"] = progress.seconds
        state["last_records"], state["last_seconds"] = progress.records, progress.seconds

    def start() -> None:
        if terminal:
            write(starting_text(group))
        else:
            log.info(starting_text(group))

    show.start = start  # type: ignore[attr-defined]
    return cast(Printer, show)
