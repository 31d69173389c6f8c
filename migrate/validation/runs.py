"""The validation runs and incremental cursors kept in the state database, and their history."""

from __future__ import annotations

import json
from dataclasses import dataclass

from migrate.config import redact_text
from migrate.state import State
from migrate.validation.spec import ValidateSpec
from migrate.validation.times import _now_iso, iso_ms
from migrate.validators.divergence import ValidationResult


@dataclass(frozen=True)
class RunRecord:
    """One past run as `migrate validate history` lists it."""

    id: int
    started_at: str
    mode: str
    topics: str
    range_from: str | None
    range_to: str | None
    records_compared: int
    divergences: int
    duration_s: float | None
    result: str
    scope: str
    change: str | None = None  # divergences compared with the previous run of the same scope


def scope_of(spec: ValidateSpec, mode: str) -> str:
    if mode == "map":
        return f"map:{spec.mirror}"
    return f"key:{spec.source_spec}->{spec.target_spec}" + (f"#{spec.id_header}" if spec.id_header else "")


def _cursors(state: State, scope: str) -> dict[tuple[str, int], tuple[int, int]]:
    rows = state.db.execute("SELECT topic, partition, source_next, target_next FROM validation_cursors "
                            "WHERE scope = ?", [scope]).fetchall()
    return {(t, p): (s, g) for t, p, s, g in rows}


def run_cursors(state: State, run_id: int) -> dict[tuple[str, int], tuple[int, int]]:
    """The incremental cursors of the scope a run belongs to (where the next run starts)."""
    row = state.db.execute("SELECT scope FROM validation_runs WHERE id = ?", [run_id]).fetchone()
    return _cursors(state, row[0]) if row else {}


def _save_cursors(state: State, scope: str, cursors: dict[tuple[str, int], tuple[int, int]]) -> None:
    now = _now_iso()
    with state.transaction() as db:
        db.conn.executemany(
            "INSERT INTO validation_cursors (scope, topic, partition, source_next, target_next, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, topic, partition) DO UPDATE SET "
            "source_next = excluded.source_next, target_next = excluded.target_next, updated_at = excluded.updated_at",
            [(scope, t, p, s, g, now) for (t, p), (s, g) in cursors.items()])


def _moves_cursors(spec: ValidateSpec) -> bool:
    """Incremental runs move the cursors, and so does a full run (it checked everything so far)."""
    return spec.incremental or (spec.since_ms is None and spec.until_ms is None and spec.sample >= 1.0)


def _start_run(state: State, spec: ValidateSpec, mode: str, scope: str, started: str) -> int:
    with state.transaction() as db:
        cursor = db.execute(
            "INSERT INTO validation_runs (started_at, source, target, topics, mode, range_from, range_to, "
            "result, scope, incremental) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            [started, redact_text(spec.source_spec), redact_text(spec.target_spec), json.dumps(list(spec.topics)),
             mode, _range_from(spec), _range_to(spec, started), scope, int(spec.incremental)])
        run_id = cursor.lastrowid
        assert run_id is not None  # set by the INSERT just executed
        return int(run_id)


def _range_from(spec: ValidateSpec) -> str:
    if spec.incremental:
        return "last run"
    return iso_ms(spec.since_ms) or "beginning"


def _range_to(spec: ValidateSpec, started: str) -> str:
    return iso_ms(spec.until_ms) or started


def _finish_run(state: State, run_id: int, result: ValidationResult | None, error: str | None,
                duration: float) -> None:
    with state.transaction() as db:
        if result is None:
            db.execute("UPDATE validation_runs SET finished_at = ?, duration_s = ?, result = 'error', error = ? "
                       "WHERE id = ?", [_now_iso(), duration, error, run_id])
            return
        db.execute(
            "UPDATE validation_runs SET finished_at = ?, records_compared = ?, divergences = ?, duration_s = ?, "
            "result = ?, counts = ?, summary = ? WHERE id = ?",
            [_now_iso(), result.records_compared, result.divergences, duration,
             "parity" if result.parity else "divergence", json.dumps(result.counts),
             json.dumps(result.as_dict(), default=str), run_id])


def history(state: State, limit: int = 50, scope: str | None = None) -> list[RunRecord]:
    """Past runs, newest first, each with its change in divergences against the previous run of its scope."""
    where, args = ("WHERE scope = ?", [scope]) if scope else ("", [])
    rows = state.db.execute(
        f"SELECT id, started_at, mode, topics, range_from, range_to, records_compared, divergences, "
        f"duration_s, result, scope FROM validation_runs {where} ORDER BY id DESC LIMIT ?", [*args, limit + 1]
    ).fetchall()
    # the star-args' lengths are unknown to mypy, which then counts the topics as one too many (mypy#14648)
    records = [RunRecord(*row[:3], ",".join(json.loads(row[3])) or "(all)", *row[4:])  # type: ignore[call-arg]
               for row in rows]
    out = []
    for run in records[:limit]:
        previous = state.db.execute(
            "SELECT divergences FROM validation_runs WHERE scope = ? AND id < ? AND result IN ('parity', 'divergence') "
            "ORDER BY id DESC LIMIT 1", [run.scope, run.id]).fetchone()
        change = None
        if previous is not None and run.result in ("parity", "divergence"):
            delta = run.divergences - previous[0]
            change = "same" if delta == 0 else f"{delta:+d}"
        out.append(RunRecord(**{**run.__dict__, "change": change}))
    return out


def run_summary(state: State, run_id: int) -> dict | None:
    row = state.db.execute("SELECT summary FROM validation_runs WHERE id = ?", [run_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else None
