"""Bounded shutdown: a signalled command ends within a stated grace, whatever the brokers do.

The guarantee, for every command (`mirror`, `validate`, `offsets sync`, `playbook run|rehearse`,
`demo`, `probe` …):

1. The first SIGINT or SIGTERM asks the command to stop.  A command that polls `requested`
   (the mirror, a playbook run) stops at its next safe point and commits what it can; any
   other command gets a KeyboardInterrupt in its main thread, as Ctrl-C always did.
2. A watchdog starts with the first signal.  If the process is still there `grace` seconds
   later (a frozen broker, a librdkafka client whose close() never returns: both measured),
   it prints one line saying what it abandons, kills the child processes this process
   adopted, and ends the process at once with exit code 128 + the signal number.  What was
   abandoned is safe to abandon: the next start reconciles (mirror) or resumes (playbook).
3. A second signal does the same at once.

Only the main thread installs the handlers (`install`, from the CLI's entry point); the
library itself never touches signals, so it can be embedded.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable

DEFAULT_GRACE = 30.0

_requested = threading.Event()
_state: dict = {"grace": DEFAULT_GRACE, "signum": None, "cooperative": False, "installed": False}
_on_request: list[Callable[[], None]] = []
_abandoning: list[Callable[[], str]] = []
_escalations: list[tuple[float, Callable[[], None]]] = []
_adopted: dict[int, bool] = {}  # pid -> whether it leads its own process group
_lock = threading.Lock()


def requested() -> threading.Event:
    """Set once a stop was asked for (by a signal, or by `request()`)."""
    return _requested


def install(grace: float = DEFAULT_GRACE) -> None:
    """Handle SIGINT and SIGTERM in this process (main thread only)."""
    _state["grace"] = grace
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    _state["installed"] = True


def grace() -> float:
    return float(_state["grace"])


def cooperate(on_request: Callable[[], None] | None = None) -> threading.Event:
    """The calling command polls `requested` itself: the first signal raises nothing.

    `on_request` runs in the main thread when the first signal arrives (e.g. to say so).
    """
    _state["cooperative"] = True
    if on_request is not None:
        _on_request.append(on_request)
    return _requested


def abandoning(describe: Callable[[], str]) -> None:
    """Register what would be abandoned if the grace runs out (said in the last line)."""
    _abandoning.append(describe)


def escalate(after: float, action: Callable[[], None]) -> None:
    """Run `action` (in the watchdog thread) `after` seconds into the grace, e.g. cancel waits."""
    _escalations.append((after, action))


def adopt(pid: int, own_group: bool) -> None:
    """A child process that must not outlive this one if the grace runs out."""
    with _lock:
        _adopted[pid] = own_group


def release(pid: int) -> None:
    with _lock:
        _adopted.pop(pid, None)


def _on_signal(signum: int, _frame) -> None:
    if _state["signum"] is not None:
        _abandon(signum, "a second signal came")
    _state["signum"] = signum
    _requested.set()
    threading.Thread(target=_watchdog, args=(signum,), name="migrate-stop-watchdog", daemon=True).start()
    if not _state["cooperative"]:
        raise KeyboardInterrupt
    for action in _on_request:
        action()


def exit_code(default: int = 128 + signal.SIGINT) -> int:
    """128 + the signal that stopped the command (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + _state["signum"] if _state["signum"] is not None else default


def _watchdog(signum: int) -> None:
    started = time.monotonic()
    for after, action in sorted(_escalations, key=lambda e: e[0]):
        time.sleep(max(0.0, started + after - time.monotonic()))
        try:
            action()
        except Exception:  # noqa: BLE001 - an escalation must never stop the watchdog
            pass
    time.sleep(max(0.0, started + grace() - time.monotonic()))
    _abandon(signum, f"still not stopped {grace():.0f}s after the signal (--stop-grace)")


def _describe() -> str:
    parts = []
    for describe in _abandoning:
        try:
            text = describe()
        except Exception:  # noqa: BLE001
            text = ""
        if text:
            parts.append(text)
    return "; ".join(parts) or "the command's unfinished work"


def _abandon(signum: int, why: str) -> None:
    """Say what is abandoned, kill adopted children, end the process now."""
    try:
        line = f"error: stopping now: {why}; abandoned: {_describe()}\n"
        os.write(2, line.encode("utf-8", "replace"))
    finally:
        with _lock:
            children = dict(_adopted)
        for pid, own_group in children.items():
            try:
                if own_group:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(128 + signum)
