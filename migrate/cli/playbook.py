"""`migrate playbook`: plan, run, resume, rehearse cutover and rollback playbooks; their history."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import click

from migrate import shutdown

from migrate.cli.common import AppContext, emit, emit_json, format_option, pass_app
from migrate.cli.metrics import batch_metrics_options, leaving_metrics
from migrate.errors import PlaybookFailed, UsageError
from migrate.metrics.batch import playbook_metrics
from migrate.playbooks.runner import RehearsalReport, RunOptions, RunOutcome, Runner, plan_rows
from migrate.playbooks.variables import load_vars_file, parse_var_overrides

STEP_COLUMNS = ["step", "name", "action", "status", "time", "result"]  # the table; json has every field
PLAN_COLUMNS = ["step", "name", "action", "with", "policy"]  # the table; --format json has every field
RUN_COLUMNS = ["id", "playbook", "mode", "status", "started_at", "duration_s", "steps"]



def var_option(f):
    f = click.option("--vars-file", "vars_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Variables from a YAML or TOML file (a flat mapping NAME: value); --var wins.")(f)
    return click.option("--var", "var_items", multiple=True, metavar="NAME=VALUE",
                        help="Set a playbook variable (repeatable); wins over --vars-file and the playbook's vars.")(f)


def variables(var_items: tuple[str, ...], vars_file: str | None) -> dict:
    """One set of variables for every playbook of the command: the vars file, then --var on top."""
    values = load_vars_file(vars_file) if vars_file else {}
    values.update(parse_var_overrides(var_items))
    return values
yes_option = click.option("--yes", "assume_yes", is_flag=True, help="Approve every approval gate.")


def resolve_file(name: str) -> Path:
    """A path, or the name of a shipped playbook (cutover, rollback)."""
    path = Path(name)
    if path.exists():
        return path
    shipped = resources.files("migrate.playbooks")
    for candidate in (name, f"{name}.yaml"):
        item = shipped / candidate
        if "/" not in candidate and item.is_file():
            return Path(str(item))
    raise UsageError(f"no playbook file {name}; pass a path or a shipped name (cutover, rollback)")


@click.group()
def playbook() -> None:
    """Cutover and rollback playbooks: plan, run, resume, rehearse, history.

    Example: migrate playbook rehearse cutover --with-rollback --var groups=billing
    """


@playbook.command()
@click.argument("file")
@var_option
@format_option()
@pass_app
def plan(app: AppContext, file: str, var_items: tuple[str, ...], vars_file: str | None, fmt: str) -> None:
    """Show the resolved steps in order, with their parameters (secrets redacted).

    Example: migrate playbook plan cutover --vars-file cutover-vars.yaml
    """
    runner = _runner(app)
    rows = plan_rows(runner.load(resolve_file(file), variables(var_items, vars_file)))
    if fmt == "table":
        emit([_plan_table_row(r) for r in rows], fmt, PLAN_COLUMNS, fit=True)
    else:
        emit(rows, fmt)


@playbook.command()
@click.argument("file")
@var_option
@yes_option
@format_option()
@batch_metrics_options
@pass_app
def run(app: AppContext, file: str, var_items: tuple[str, ...], vars_file: str | None, assume_yes: bool,
        fmt: str, metrics_file: str | None, pushgateway: str | None) -> None:
    """Run a playbook, journaling every step; Ctrl-C stops cleanly after the current step.

    Example: migrate playbook run cutover --vars-file cutover-vars.yaml
    """
    with _playbook_metrics(app, metrics_file, pushgateway, "run") as batch:
        runner = _runner(app, assume_yes)
        values = variables(var_items, vars_file)
        with _stop_on_signals(runner.options):
            outcome = runner.run(resolve_file(file), values)
        batch.metrics = playbook_metrics([outcome], "run")
        _finish(outcome, fmt)


@playbook.command()
@click.argument("run_id")
@yes_option
@format_option()
@pass_app
def resume(app: AppContext, run_id: str, assume_yes: bool, fmt: str) -> None:
    """Continue an interrupted, killed or failed run from the step that did not finish.

    Example: migrate playbook resume 20261127-051500-ab12
    """
    runner = _runner(app, assume_yes)
    with _stop_on_signals(runner.options):
        outcome = runner.resume(run_id)
    _finish(outcome, fmt)


@playbook.command()
@click.argument("file")
@var_option
@click.option("--with-rollback", is_flag=True, help="Then rehearse the rollback playbook in the same go.")
@click.option("--rollback", "rollback_file", metavar="FILE",
              help="The rollback playbook [default: rollback.yaml next to FILE, or the shipped one].")
@click.option("--keep-shadow", is_flag=True, help="Keep the shadow topics afterwards (for inspection).")
@format_option()
@batch_metrics_options
@pass_app
def rehearse(app: AppContext, file: str, var_items: tuple[str, ...], vars_file: str | None, with_rollback: bool,
             rollback_file: str | None, keep_shadow: bool, fmt: str, metrics_file: str | None,
             pushgateway: str | None) -> None:
    """Run the plan on the real clusters with shadow groups and topics; report timings and downtime.

    Example: migrate playbook rehearse cutover --with-rollback
    """
    with _playbook_metrics(app, metrics_file, pushgateway, "rehearse") as batch:
        runner = _runner(app, keep_shadow=keep_shadow)
        path = resolve_file(file)
        rollback = None
        if with_rollback or rollback_file:
            rollback = resolve_file(rollback_file) if rollback_file else _sibling_rollback(path)
        values = variables(var_items, vars_file)
        with _stop_on_signals(runner.options):
            report = runner.rehearse(path, values, rollback)
        batch.metrics = playbook_metrics(report.outcomes, "rehearse")
        _report(report, fmt)


@playbook.command()
@click.argument("run_id")
@pass_app
def cleanup(app: AppContext, run_id: str) -> None:
    """Remove what a killed rehearsal left: its mirrors, shadow topics and groups, on both clusters.

    Example: migrate playbook cleanup 20261127-051500-ab12
    """
    removed = _runner(app).cleanup(run_id)
    for item in removed:
        click.echo(f"removed {item}")
    click.echo(f"rehearsal {run_id}: removed {len(removed)} shadow topics and groups" if removed
               else f"rehearsal {run_id}: nothing left to remove")


@playbook.command()
@click.argument("run_id", required=False)
@format_option()
@pass_app
def history(app: AppContext, run_id: str | None, fmt: str) -> None:
    """Past runs as a table, or one run's steps.

    Example: migrate playbook history 20261127-051500-ab12
    """
    runner = _runner(app)
    if run_id:
        outcome = runner.outcome(run_id)
        if fmt == "json":
            emit_json(outcome)
            return
        emit(_step_rows(outcome), fmt, STEP_COLUMNS, fit=True)
        click.echo(_status_line(outcome))
        return
    rows = []
    for run in runner.journal.runs():
        steps = runner.journal.steps(run.id)
        done = sum(1 for s in steps if s.status in ("ok", "continued", "skipped"))
        outcome = runner.outcome(run.id)
        rows.append({"id": run.id, "playbook": run.playbook, "mode": run.mode,
                     "status": outcome.status, "started_at": run.started_at,
                     "duration_s": outcome.duration_s, "steps": f"{done}/{len(steps)}"})
    emit(rows, fmt, RUN_COLUMNS if fmt == "table" else None)


# --- helpers --------------------------------------------------------------------------------------


def _playbook_metrics(app: AppContext, metrics_file: str | None, pushgateway: str | None, mode: str):
    return leaving_metrics(app, metrics_file, pushgateway, "migrate_playbook", "migrate_playbook", {"mode": mode})


def _runner(app: AppContext, assume_yes: bool = False, keep_shadow: bool = False) -> Runner:
    approver = None
    if sys.stdin.isatty() and not assume_yes:
        approver = lambda message: click.confirm(message, default=False, err=True)  # noqa: E731
    options = RunOptions(assume_yes=assume_yes, approver=approver, on_event=_progress, keep_shadow=keep_shadow)
    return Runner(app.state, app.config, app.state.path, app.config_path, options)


def _progress(kind: str, step, info: dict) -> None:
    if kind == "playbook":  # a rehearsal moves on to the next playbook (cutover -> rollback)
        click.echo(f"== {info['mode']} of {info['playbook']} (run {info['run_id']})", err=True)
        return
    label = f"{step.phase + ' ' if step.phase != 'main' else ''}{step.index}/{info.get('total', '?')}"
    if kind == "start":
        click.echo(f"[{label}] {step.name} ({step.action}) ...", err=True)
    elif kind == "end":
        what = info.get("error") or ""
        click.echo(f"    {info['status']} in {info['duration']:.2f}s" + (f": {what}" if what else ""), err=True)
    elif kind == "log":
        click.echo(f"    {info['line']}", err=True)


@contextmanager
def _stop_on_signals(options: RunOptions):
    """First Ctrl-C (or SIGTERM): stop after the current step.  Half-way through the stop grace the
    step's waits are cancelled; at its end, or at a second signal, the run stops at once (resumable)."""
    def notice() -> None:  # runs inside the signal handler, between two bytecodes of any code
        options.stop_requested.set()
        # os.write, not click.echo: the main thread may be half-way through a write to stderr, and a
        # buffered write entered again from a signal handler raises RuntimeError (reentrant call).
        os.write(2, f"stopping after the current step (within {shutdown.grace():.0f}s; "
                    "Ctrl-C again to stop at once)\n".encode())

    shutdown.cooperate(on_request=notice)
    shutdown.escalate(shutdown.grace() / 2, options.cancel.set)
    shutdown.abandoning(lambda: "the playbook's current step (the run shows as killed; "
                                "resume it with migrate playbook resume RUN_ID)")
    yield


def _sibling_rollback(path: Path) -> Path:
    sibling = path.parent / "rollback.yaml"
    return sibling if sibling.exists() else resolve_file("rollback")


def _plan_table_row(row: dict) -> dict:
    """A plan row for people: phase and index in one cell, the failure policy in another."""
    policy = []
    if row["timeout"]:
        policy.append(f"timeout {row['timeout']:g}s")
    if row["retries"]:
        policy.append(f"retries {row['retries']}")
    if row["on_failure"] != "abort":
        policy.append(f"on failure {row['on_failure']}")
    if row["downtime"]:
        policy.append(f"downtime {row['downtime']}")
    step = str(row["step"]) if row["phase"] == "main" else f"{row['phase']} {row['step']}"
    return {"step": step, "name": row["name"], "action": row["action"], "with": row["with"],
            "policy": ", ".join(policy)}


def _step_rows(outcome: RunOutcome) -> list[dict]:
    """Journaled steps for the table: the whole result line (wrapped to the terminal, never cut)."""
    rows = []
    for s in outcome.steps:
        result = s.error or (s.output or "").strip().splitlines()[-1:] or [""]
        took = "" if s.duration_s is None else f"{s.duration_s:.2f}s"
        if s.attempts and s.attempts > 1:
            took += f", {s.attempts} tries"
        rows.append({"step": str(s.idx) if s.phase == "main" else f"{s.phase} {s.idx}", "name": s.name,
                     "action": s.action, "status": s.status, "time": took,
                     "result": result if isinstance(result, str) else result[0]})
    return rows


def _status_line(outcome: RunOutcome) -> str:
    line = f"run {outcome.run_id} ({outcome.playbook}, {outcome.mode}): {outcome.status}"
    if outcome.duration_s is not None:
        line += f" in {outcome.duration_s:.1f}s"
    if outcome.downtime_s is not None:
        line += f"; consumer downtime window {outcome.downtime_s:.2f}s"
    return line


def _finish(outcome: RunOutcome, fmt: str) -> None:
    if fmt == "json":
        emit_json(outcome)
    else:
        emit(_step_rows(outcome), fmt, STEP_COLUMNS, fit=True)
        click.echo(_status_line(outcome))
    if outcome.status == "interrupted":
        click.echo(f"interrupted; continue with: migrate playbook resume {outcome.run_id}", err=True)
        sys.exit(shutdown.exit_code())
    if not outcome.ok:
        raise PlaybookFailed(f"run {outcome.run_id} {outcome.status}: {outcome.error or 'see the journal'}; "
                             f"details: migrate playbook history {outcome.run_id}")


def _report(report: RehearsalReport, fmt: str) -> None:
    if fmt == "json":
        emit_json({"passed": report.passed, "downtime_s": report.downtime_s, "shadow_prefix": report.shadow_prefix,
                   "cleaned": list(report.cleaned), "runs": list(report.outcomes)})
    else:
        for outcome in report.outcomes:
            click.echo(f"== rehearsal of {outcome.playbook} (run {outcome.run_id})")
            emit(_step_rows(outcome), fmt, STEP_COLUMNS, fit=True)
            click.echo(_status_line(outcome))
        window = f"{report.downtime_s:.2f}s" if report.downtime_s is not None else "not measured"
        click.echo(f"rehearsal {'PASSED' if report.passed else 'FAILED'}: consumer downtime window {window}")
        click.echo(f"shadow prefix {report.shadow_prefix}; removed afterwards: {len(report.cleaned)} topics and groups")
    if not report.passed:
        failed = next(o for o in report.outcomes if not o.ok)
        raise PlaybookFailed(f"rehearsal failed in {failed.playbook}: {failed.error or failed.status}")
