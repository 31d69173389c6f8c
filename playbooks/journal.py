"""The playbook journal: runs and their steps in the state database.

A run row holds the resolved plan (secrets redacted), so `resume` repeats exactly what was
planned.  A step row is written when the step starts (status `running`) and again when it
ends (`ok`, `failed`, `continued`, `skipped`), each in its own short transaction, so a run
killed at any moment shows which step did not finish.

Run statuses: running, succeeded, failed, interrupted, rolled-back, rollback-failed.
A `running` run whose pid is gone was killed: `resume` continues it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass

from migrate.config import redact_text
from migrate.errors import UsageError
from migrate.local.platforms import pid_alive
from migrate.playbooks.model import Playbook, Step

FINISHED_OK = ("ok", "continued", "skipped")


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class RunRow:
    id: str
    playbook: str
    path: str
    mode: str
    status: str
    pid: int | None
    started_at: str
    finished_at: str | None
    shadow_tag: str | None
    parent: str | None
    error: str | None


@dataclass(frozen=True)
class StepRow:
    run_id: str
    phase: str
    idx: int
    name: str
    action: str
    status: str
    attempts: int
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    output: str | None
    error: str | None
    data: dict


def plan_json(playbook: Playbook) -> str:
    return redact_text(json.dumps(asdict(playbook), default=str))


def playbook_from_json(text: str) -> Playbook:
    data = json.loads(text)
    steps = tuple(Step(**s) for s in data.pop("steps"))
    rollback = tuple(Step(**s) for s in data.pop("rollback_steps"))
    data["secret_values"] = ()
    return Playbook(steps=steps, rollback_steps=rollback, **data)


class Journal:
    def __init__(self, state):
        self.state = state

    def create_run(self, run_id: str, playbook: Playbook, mode: str, shadow_tag: str | None = None,
                   parent: str | None = None, overrides: dict | None = None) -> None:
        """`vars` keeps the --var overrides (redacted), so that a resume can reload the file."""
        with self.state.transaction() as db:
            db.execute(
                "INSERT INTO playbook_runs (id, playbook, path, mode, vars, status, pid, started_at, plan, "
                "digest, shadow_tag, parent) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                [run_id, playbook.name, playbook.path, mode, redact_text(json.dumps(dict(overrides or {}))),
                 os.getpid(), now_iso(), plan_json(playbook), playbook.digest, shadow_tag, parent],
            )

    def claim(self, run_id: str) -> None:
        """Take over a run for resuming: refuse when another live process still runs it."""
        run = self.run(run_id)
        if run.status == "running" and run.pid and run.pid != os.getpid() and pid_alive(run.pid):
            raise UsageError(f"run {run_id} is still running in process {run.pid}; wait for it or stop it first")
        with self.state.transaction() as db:
            db.execute("UPDATE playbook_runs SET status = 'running', pid = ?, finished_at = NULL, error = NULL "
                       "WHERE id = ?", [os.getpid(), run_id])

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        with self.state.transaction() as db:
            db.execute("UPDATE playbook_runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                       [status, now_iso(), redact_text(error) if error else None, run_id])

    def step_started(self, run_id: str, step: Step, attempt: int) -> None:
        with self.state.transaction() as db:
            db.execute(
                "INSERT INTO playbook_steps (run_id, phase, idx, name, action, status, attempts, started_at) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?) ON CONFLICT (run_id, phase, idx) DO UPDATE SET "
                "status = 'running', attempts = excluded.attempts, started_at = excluded.started_at, "
                "finished_at = NULL, duration_s = NULL, error = NULL",
                [run_id, step.phase, step.index, step.name, step.action, attempt, now_iso()],
            )

    def step_attempt(self, run_id: str, step: Step, attempt: int) -> None:
        with self.state.transaction() as db:
            db.execute("UPDATE playbook_steps SET attempts = ? WHERE run_id = ? AND phase = ? AND idx = ?",
                       [attempt, run_id, step.phase, step.index])

    def step_finished(self, run_id: str, step: Step, status: str, duration: float, output: str = "",
                      error: str | None = None, data: dict | None = None) -> None:
        with self.state.transaction() as db:
            db.execute(
                "UPDATE playbook_steps SET status = ?, finished_at = ?, duration_s = ?, output = ?, error = ?, "
                "data = ? WHERE run_id = ? AND phase = ? AND idx = ?",
                [status, now_iso(), round(duration, 3), redact_text(output or ""),
                 redact_text(error) if error else None, redact_text(json.dumps(data or {}, default=str)),
                 run_id, step.phase, step.index],
            )

    # --- reading ---------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRow:
        row = self.state.db.execute(
            "SELECT id, playbook, path, mode, status, pid, started_at, finished_at, shadow_tag, parent, error "
            "FROM playbook_runs WHERE id = ?", [run_id]).fetchone()
        if row is None:
            raise UsageError(f"no playbook run {run_id}; see: migrate playbook history")
        return RunRow(*row)

    def plan(self, run_id: str) -> Playbook:
        row = self.state.db.execute("SELECT plan FROM playbook_runs WHERE id = ?", [run_id]).fetchone()
        if row is None:
            raise UsageError(f"no playbook run {run_id}; see: migrate playbook history")
        return playbook_from_json(row[0])

    def overrides(self, run_id: str) -> dict[str, str]:
        row = self.state.db.execute("SELECT vars FROM playbook_runs WHERE id = ?", [run_id]).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    def has_run(self, run_id: str) -> bool:
        return self.state.db.execute("SELECT 1 FROM playbook_runs WHERE id = ?", [run_id]).fetchone() is not None

    def runs(self, limit: int = 50) -> list[RunRow]:
        rows = self.state.db.execute(
            "SELECT id, playbook, path, mode, status, pid, started_at, finished_at, shadow_tag, parent, error "
            "FROM playbook_runs ORDER BY started_at DESC, id DESC LIMIT ?", [limit]).fetchall()
        return [RunRow(*row) for row in rows]

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self.state.db.execute(
            "SELECT run_id, phase, idx, name, action, status, attempts, started_at, finished_at, duration_s, "
            "output, error, data FROM playbook_steps WHERE run_id = ? "
            "ORDER BY CASE phase WHEN 'main' THEN 0 ELSE 1 END, idx", [run_id]).fetchall()
        # the star-arg's length is unknown to mypy, which then counts `data` as one too many (mypy#14648)
        return [StepRow(*row[:-1], json.loads(row[-1]) if row[-1] else {}) for row in rows]  # type: ignore[call-arg]

    def step_status(self, run_id: str) -> dict[tuple[str, int], str]:
        return {(s.phase, s.idx): s.status for s in self.steps(run_id)}

    def effective_status(self, run: RunRow) -> str:
        """`running` for a run whose process is gone reads as `killed`."""
        if run.status == "running" and not (run.pid and pid_alive(run.pid)):
            return "killed"
        return run.status


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text).timestamp()

