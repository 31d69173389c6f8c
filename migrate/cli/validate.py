"""`migrate validate`: content-level parity between source and target, and the run history.

Exit codes a nightly job can rely on: 0 parity, 1 divergence found, 2 could not run.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import click
from tabulate import tabulate

from migrate.cli.common import AppContext, emit, format_option, pass_app, source_option, target_option
from migrate.cli.metrics import batch_metrics_options, leaving_metrics
from migrate.config import redact_text
from migrate.errors import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, MigrateError, UsageError
from migrate.validators.digest import make_options
from migrate.validators.divergence import INFO, KINDS, ValidationResult

HISTORY_COLUMNS = ["id", "started_at", "mode", "topics", "range_from", "range_to", "records_compared",
                   "divergences", "change", "duration_s", "result"]


def write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its 0600 would stick to a report meant to be shared; 0666 less the umask does not
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def render_report(result: ValidationResult, path: Path, runs: list[dict]) -> str:
    from migrate.validators.report_html import render_html
    from migrate.validators.report_junit import render_junit

    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return render_html(result, runs)
    if suffix == ".xml":
        return render_junit(result)
    if suffix == ".json":
        return json.dumps(result.as_dict(), indent=2, default=str) + "\n"
    raise UsageError(f"--report {path}: use a .html, .xml (JUnit) or .json file name")


def _print_table(result: ValidationResult) -> None:
    what = f", mirror {result.mirror}" if result.mirror else ""
    click.echo(f"validation run {result.run_id} ({result.mode} mode, {result.range_from} -> {result.range_to}{what}): "
               f"{result.records_compared} records compared in {result.duration_s:.1f}s: {result.verdict}")
    rows = [[t.topic, t.target_topic, t.partitions, t.records_compared, *[t.counts.get(k, 0) for k in KINDS],
             *[t.info.get(k, 0) for k in INFO]] for t in result.topics]
    click.echo(tabulate(rows, headers=["topic", "target", "partitions", "compared", *KINDS, *INFO]))
    if result.examples:
        click.echo("\nexamples:")
        example_rows = [[d["kind"], d["topic"], d["partition"], d["source_offset"], d["target_offset"], d["key"],
                         d["field"] or "", d["detail"]] for d in (x.as_dict() for x in result.examples)]
        click.echo(tabulate(example_rows, headers=["kind", "topic", "partition", "source_offset", "target_offset",
                                                    "key", "field", "detail"]))
    for topic in result.one_sided:
        click.echo(f"topic {topic.topic} exists on the {topic.only_on} only "
                   f"({'target' if topic.only_on == 'source' else 'source'} has no {topic.target_topic}); not compared")
    for note in result.notes:
        click.echo(f"note: {note}")


@click.group(invoke_without_command=True)
@source_option
@target_option
@click.option("--topics", "topics", multiple=True, metavar="REGEX",
              help="Source topics to check (full-match regex; repeatable) [default: all mirrored / all non-internal].")
@click.option("--since", metavar="24h|ISO", help="Only records with a timestamp at or after this time.")
@click.option("--until", metavar="24h|ISO", help="Only records with a timestamp before this time.")
@click.option("--incremental", is_flag=True, help="Continue from where the previous run of the same scope ended.")
@click.option("--sample", type=float, default=1.0, show_default=True, metavar="RATE",
              help="Compare about this fraction of records (0 < RATE <= 1).")
@click.option("--match", type=click.Choice(["map", "key"]), default=None,
              help="Pair records through the mirror's offset map (default), or by key for dual writing.")
@click.option("--id-header", metavar="NAME", help="Key mode: pair by this event-id header instead of the key.")
@click.option("--name", "mirror", default=None,
              help="Mirror whose offset map to use [default: the only mirror recorded in the state].")
@click.option("--ignore-timestamp", is_flag=True, help="Leave timestamps out of the comparison.")
@click.option("--headers", default="all", show_default=True, metavar="none|all|LIST",
              help="Headers to compare: all, none, or a comma-separated list of names.")
@click.option("--window", type=int, default=10_000, show_default=True,
              help="Records per window digest (map mode); memory does not depend on it.")
@click.option("--parallel", type=click.IntRange(min=1, max=16), default=4, show_default=True,
              help="Map mode: partitions compared at once (each with its own pair of consumers).")
@click.option("--examples", "max_examples", type=click.IntRange(min=0), default=10, show_default=True,
              help="Examples kept per topic and kind.")
@format_option("table", "json", "junit")
@click.option("--report", "report", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a report: FILE.html (for people), FILE.xml (JUnit) or FILE.json.")
@batch_metrics_options
@click.pass_context
def validate(ctx: click.Context, source, target, topics, since, until, incremental, sample, match, id_header,
             mirror, ignore_timestamp, headers, window, parallel, max_examples, fmt, report, metrics_file,
             pushgateway) -> None:
    """Check that target records match source records, content and order; exit 1 on divergence.

    Example: migrate validate --source source --target target --since 24h --report parity.html
    """
    if ctx.invoked_subcommand is not None:
        return
    app: AppContext = ctx.obj
    with leaving_metrics(app, metrics_file, pushgateway, "migrate_validate", "migrate_validate",
                         {"mirror": mirror}) as batch:
        code = _validate(ctx, app, batch, source, target, topics, since, until, incremental, sample, match,
                         id_header, mirror, ignore_timestamp, headers, window, parallel, max_examples, fmt, report)
        batch.exit_code = code
    ctx.exit(code)


def _validate(ctx: click.Context, app: AppContext, batch, source, target, topics, since, until, incremental,
              sample, match, id_header, mirror, ignore_timestamp, headers, window, parallel, max_examples, fmt,
              report) -> int:
    try:
        result, runs = _run(app, source, target, topics, since, until, incremental, sample, match, id_header,
                            mirror, ignore_timestamp, headers, window, parallel, max_examples, report)
    except MigrateError:
        raise
    except click.exceptions.Exit:
        raise
    except Exception as exc:  # a bug must not look like "divergence found" (exit 1) to a nightly job
        click.echo(f"error: validation could not run: {redact_text(f'{type(exc).__name__}: {exc}')}", err=True)
        ctx.exit(EXIT_USAGE)
    from migrate.metrics.batch import validation_metrics
    from migrate.validation import run_cursors

    batch.metrics = validation_metrics(result, run_cursors(app.state, result.run_id), mirror)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    elif fmt == "junit":
        from migrate.validators.report_junit import render_junit

        click.echo(render_junit(result), nl=False)
    else:
        _print_table(result)
    if report:
        click.echo(f"report written to {report}", err=True)
    return EXIT_OK if result.parity else EXIT_CHECK_FAILED


def _run(app: AppContext, source, target, topics, since, until, incremental, sample, match, id_header, mirror,
         ignore_timestamp, headers, window, parallel, max_examples, report):
    from migrate.validation import ValidateSpec, history, parse_time, run_validation

    try:
        options = make_options(ignore_timestamp, headers)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report_path = Path(report) if report else None
    if report_path and report_path.suffix.lower() not in (".html", ".htm", ".xml", ".json"):
        raise UsageError(f"--report {report}: use a .html, .xml (JUnit) or .json file name")
    spec = ValidateSpec(
        source=app.cluster(source, "source"), target=app.cluster(target, "target"),
        source_spec=source, target_spec=target, topics=tuple(topics), match=match, mirror=mirror,
        since_ms=parse_time(since) if since else None, until_ms=parse_time(until) if until else None,
        incremental=incremental, sample=sample, options=options, id_header=id_header, window=window,
        parallel=parallel, max_examples=max_examples)
    state = app.state
    result = run_validation(spec, state)
    runs: list[dict] = []
    if report_path:
        scope = state.db.execute("SELECT scope FROM validation_runs WHERE id = ?", [result.run_id]).fetchone()[0]
        runs = [r.__dict__ for r in reversed(history(state, limit=30, scope=scope))]
        write_atomically(report_path, render_report(result, report_path, runs))
    return result, runs


@validate.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs to list.")
@click.option("--run", "run_id", type=int, help="Show one run's full result (counts, topics, examples).")
@format_option()
@pass_app
def history_command(app: AppContext, limit: int, run_id: int | None, fmt: str) -> None:
    """List past validation runs, newest first, with the change in divergences since the previous run.

    Example: migrate validate history --limit 10
    """
    from migrate.validation import history, run_summary

    if run_id is not None:
        summary = run_summary(app.state, run_id)
        if summary is None:
            raise UsageError(f"no finished validation run {run_id}; list runs with: migrate validate history")
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    rows = [{**r.__dict__, "duration_s": _seconds(r.duration_s, 2 if fmt == "table" else 3)}
            for r in history(app.state, limit=limit)]
    emit(rows, fmt, HISTORY_COLUMNS)


def _seconds(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
