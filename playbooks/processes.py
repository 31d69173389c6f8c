"""Background processes a playbook starts and later finds again: named mirrors.

A mirror started by `mirror.start` is a child `migrate mirror --follow` in its own session,
so it outlives the playbook process (a resumed run, even after a SIGKILL, finds it again).
Its pid, command line and log file are recorded in the state (`playbook_processes`).  A
recorded pid counts as "our mirror" only while /proc shows the same command line, so a
recycled pid is never signalled.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from migrate import shutdown
from migrate.local.platforms import pid_alive


@dataclass(frozen=True)
class ManagedProcess:
    key: str
    pid: int
    command: tuple[str, ...]
    log_path: str
    run_id: str


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def find(state, key: str) -> ManagedProcess | None:
    """The recorded process for key if it is still alive and still the same command."""
    row = state.db.execute("SELECT key, pid, command, log_path, run_id FROM playbook_processes WHERE key = ?",
                           [key]).fetchone()
    if not row:
        return None
    proc = ManagedProcess(row[0], row[1], tuple(row[2].split("\0")), row[3], row[4])
    if pid_alive(proc.pid) and _cmdline(proc.pid) == list(proc.command):
        return proc
    return None


def start(state, key: str, command: list[str], log_path: Path, run_id: str) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    with state.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO playbook_processes (key, pid, command, log_path, run_id, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [key, child.pid, "\0".join(command), str(log_path), run_id, _now()],
        )
    _CHILDREN[child.pid] = child
    if _TIED["on"]:
        shutdown.adopt(child.pid, own_group=True)
    return ManagedProcess(key, child.pid, tuple(command), str(log_path), run_id)


# Popen objects of children started by this process, so that they are reaped (no zombies).
_CHILDREN: dict[int, subprocess.Popen] = {}
_TIED = {"on": False}


def tie_to_owner(on: bool = True) -> None:
    """Children started from now on die with this process if its stop is abandoned (the demo).

    A playbook run leaves them free on purpose: a resumed run finds its mirrors again.
    """
    _TIED["on"] = on


def exited(proc: ManagedProcess) -> bool:
    child = _CHILDREN.get(proc.pid)
    if child is not None:
        return child.poll() is not None
    return not pid_alive(proc.pid)


def stop(state, key: str, grace: float = 30.0) -> bool:
    """Stop the recorded process gracefully (SIGTERM, then SIGKILL); False if none was running."""
    proc = find(state, key)
    stopped = False
    if proc is not None:
        stopped = True
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                break
            if _wait_gone(proc.pid, wait):
                break
    with state.transaction() as db:
        db.execute("DELETE FROM playbook_processes WHERE key = ?", [key])
    return stopped


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child = _CHILDREN.get(pid)
        if child is not None:
            if child.poll() is not None:
                return True
        elif not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def log_tail(proc: ManagedProcess | None, path: str | None = None, lines: int = 5) -> str:
    where = path or (proc.log_path if proc else None)
    if not where:
        return ""
    try:
        text = Path(where).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def all_for_run(state, run_id: str) -> list[str]:
    return [row[0] for row in state.db.execute(
        "SELECT key FROM playbook_processes WHERE run_id = ? ORDER BY key", [run_id]).fetchall()]
