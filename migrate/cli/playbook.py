"""`migrate playbook`: plan, run, resume, rehearse cutover and rollback playbooks; their history."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import click

from migrate.cli.common import AppContext, emit, emit_json, format_option, pass_app
from migrate.cli.metrics import batch_metrics_options, leaving_metrics
from migrate.errors import CheckFailed, UsageError
from migrate.metrics.batch import playbook_metrics
from migrate.playbooks.loader import parse_var_overrides
from migrate.playbooks.runner import RehearsalReport, RunOptions, RunOutcome, Runner, plan_rows

STEP_COLUMNS = ["phase", "step", "name", "action", "status", "attempts", "duration_s", "result"]
PLAN_COLUMNS = ["phase", "step", "name", "action", "with", "timeout", "retries", "on_failure", "downtime"]
RUN_COLUMNS = ["id", "playbook", "mode", "status", "started_at", "duration_s", "steps"]

var_option = click.option("--var", "var_items", multiple=True, metavar="NAME=VALUE",
                          help="Set a playbook variable (repeatable); wins over the file's vars.")
yes_option = click.option("--yes", "assume_yes", is_flag=True, help="Approve every approval gate.")


class PlaybookFailed(CheckFailed):
    """The run ended without success; the journal says where."""


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
def plan(app: AppContext, file: str, var_items: tuple[str, ...], fmt: str) -> None:
    """Show the resolved steps in order, with their parameters (secrets redacted).

    Example: migrate playbook plan cutover --var source=prod-a --var target=prod-b
    """
    runner = _runner(app)
    emit(plan_rows(runner.load(resolve_file(file), parse_var_overrides(var_items))), fmt,
         PLAN_COLUMNS if fmt == "table" else None)


@playbook.command()
@click.argument("file")
@var_option
@yes_option
@format_option()
@batch_metrics_options
@pass_app
def run(app: AppContext, file: str, var_items: tuple[str, ...], assume_yes: bool, fmt: str,
        metrics_file: str | None, pushgateway: str | None) -> None:
    """Run a playbook, journaling every step; Ctrl-C stops cleanly after the current step.

    Example: migrate playbook run cutover --var groups=billing,audit
    """
    with _playbook_metrics(app, metrics_file, pushgateway, "run") as batch:
        runner = _runner(app, assume_yes)
        with _stop_on_signals(runner.options):
            outcome = runner.run(resolve_file(file), parse_var_overrides(var_items))
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
def rehearse(app: AppContext, file: str, var_items: tuple[str, ...], with_rollback: bool,
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
        with _stop_on_signals(runner.options):
            report = runner.rehearse(path, parse_var_overrides(var_items), rollback)
        batch.metrics = playbook_metrics(report.outcomes, "rehearse")
        _report(report, fmt)


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
        emit(_step_rows(outcome), fmt, STEP_COLUMNS)
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
    """First Ctrl-C (or SIGTERM): stop after the current step. Second: give up waiting now."""
    def handler(signum, _frame):
        if not options.stop_requested.is_set():
            options.stop_requested.set()
            click.echo("stopping after the current step (Ctrl-C again to cancel waits)", err=True)
        elif not options.cancel.is_set():
            options.cancel.set()
            click.echo("cancelling the current step's waits", err=True)
        else:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _sibling_rollback(path: Path) -> Path:
    sibling = path.parent / "rollback.yaml"
    return sibling if sibling.exists() else resolve_file("rollback")


def _step_rows(outcome: RunOutcome) -> list[dict]:
    rows = []
    for s in outcome.steps:
        result = s.error or (s.output or "").strip().splitlines()[-1:] or [""]
        rows.append({"phase": s.phase, "step": s.idx, "name": s.name, "action": s.action, "status": s.status,
                     "attempts": s.attempts, "duration_s": s.duration_s,
                     "result": (result if isinstance(result, str) else result[0])[:100]})
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
        emit(_step_rows(outcome), fmt, STEP_COLUMNS)
        click.echo(_status_line(outcome))
    if outcome.status == "interrupted":
        click.echo(f"interrupted; continue with: migrate playbook resume {outcome.run_id}", err=True)
        sys.exit(130)
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
            emit(_step_rows(outcome), fmt, STEP_COLUMNS)
            click.echo(_status_line(outcome))
        window = f"{report.downtime_s:.2f}s" if report.downtime_s is not None else "not measured"
        click.echo(f"rehearsal {'PASSED' if report.passed else 'FAILED'}: consumer downtime window {window}; "
                   f"shadow prefix {report.shadow_prefix}")
    if not report.passed:
        failed = next(o for o in report.outcomes if not o.ok)
        raise PlaybookFailed(f"rehearsal failed in {failed.playbook}: {failed.error or failed.status}")
