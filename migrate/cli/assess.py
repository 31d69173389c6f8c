"""`migrate assess`: inventory, readiness against the target, and the migration plan."""

from __future__ import annotations

import json
from pathlib import Path

import click

from migrate.cli.common import AppContext, _plain, pass_app, source_option, table_text, target_option, wide_option, wrapped
from migrate.errors import EXIT_CHECK_FAILED, ConfigError, UsageError


def _duration(ctx, param, value: str | None) -> float | None:
    from migrate.playbooks.param_types import parse_duration

    if value is None:
        return None
    seconds = parse_duration(value)
    if not seconds:
        raise click.BadParameter(f"must be a duration like 90m or 2h, not {value!r}")
    return seconds


def _write(path: str, text: str) -> None:
    from migrate.cli.validate import write_atomically

    try:
        write_atomically(Path(path), text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


def render_table(assessment, wide: bool = False) -> str:
    """The report for a terminal: readiness (problems first, a shared cause said once), topics, groups, plan.

    Every table fits the terminal width; evidence goes below the readiness table.  `wide`: every
    column of the topics and groups and one readiness row per subject.
    """
    from migrate.assess import summary

    parts = []
    prefix = "" if wide else summary.shared_prefix(assessment)
    under = f" (names under {prefix})" if prefix else ""
    r = assessment.readiness
    if r is not None:
        parts.append(f"READINESS on {r.target}{under}")
        collapsed = summary.not_probed_lines(r)
        rows = summary.readiness_rows(r) if wide else summary.readiness_compact_rows(r, prefix)
        if rows:
            parts.append(table_text(rows))
        parts += wrapped(collapsed + summary.finding_lines(r, collapse=not wide))
        fine = summary.ok_line(r, prefix)
        if fine and not wide:
            parts += wrapped([fine])
        parts.append("")
    topics = summary.topic_rows(assessment) if wide else summary.topic_compact_rows(assessment, prefix)
    groups = summary.group_rows(assessment) if wide else summary.group_compact_rows(assessment, prefix)
    parts += [f"TOPICS{under}", table_text(topics, fit=not wide), *wrapped([summary.topics_total(assessment)]), "",
              f"GROUPS{under}", table_text(groups, fit=not wide), "",
              "PLAN", table_text(summary.plan_rows(assessment)), "",
              *wrapped([*assessment.inventory.notes, *assessment.notes, *assessment.plan.notes,
                        summary.headline(assessment)])]
    return "\n".join(parts)


@click.command()
@source_option
@target_option
@click.option("--topics", "topics", multiple=True, metavar="RE",
              help="Topics to assess (whole-name regex, repeatable; default: every non-internal topic).")
@click.option("--exclude", multiple=True, metavar="RE", help="Topics to leave out (regex, repeatable).")
@click.option("--sample-seconds", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Interval over which write rates are measured (0: not measured).")
@click.option("--sample-records", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Records read at most per partition (half from the head, half from the tail).")
@click.option("--probe", "run_probe", is_flag=True,
              help="Probe the target now (writes scratch topics there); default: reuse its stored probe results.")
@click.option("--throughput", type=click.FloatRange(min=0, min_open=True), metavar="MB/S",
              help="Copy throughput of one mirror worker (default: measured by the target's probe, a real mirror run).")
@click.option("--copy-window", callback=_duration, metavar="DURATION",
              help="Time the initial copy may take (e.g. 2h): sizes the number of mirror workers.")
@click.option("--headroom", type=click.FloatRange(min=1), default=1.5, show_default=True,
              help="Dual-run bandwidth margin over the measured write rate.")
@click.option("--overlap-days", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="How long both platforms run side by side (storage and cost).")
@click.option("--costs", "costs_file", metavar="FILE",
              help="TOML prices: storage_gb_month, transfer_gb, worker_hour (no built-in prices).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True,
              help="Report format; json is stable for scripts, html is self-contained.")
@click.option("--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@wide_option
@click.option("--vars-file", metavar="FILE", help="Write the playbook variables (YAML) to FILE.")
@pass_app
@click.pass_context
def assess(ctx: click.Context, app: AppContext, source: str | None, target: str | None, topics: tuple[str, ...],
           exclude: tuple[str, ...], sample_seconds: float, sample_records: int, run_probe: bool,
           throughput: float | None, copy_window: float | None, headroom: float, overlap_days: float,
           costs_file: str | None, fmt: str, output: str | None, wide: bool, vars_file: str | None) -> None:
    """Know the estate before moving it: inventory, readiness on the target, plan (exit 1 on a blocker).

    Read-only on both clusters (no writes, commits or group joins) unless --probe is given.

    Example: migrate assess --source source --target target --topics 'orders\\..*' --format html --output a.html
    """
    from migrate.assess.assessment import AssessOptions, run_assessment
    from migrate.assess.plan import load_costs, vars_yaml
    from migrate.assess.report_html import render_html

    costs = load_costs(costs_file) if costs_file else None
    source_profile = app.cluster(source, "source")
    assert source is not None  # resolve_cluster has refused an empty --source
    target_profile = app.cluster(target, "target") if target else None
    if run_probe and target_profile is None:
        raise UsageError("--probe needs --target (the probe runs on the target)")
    options = AssessOptions(topics, exclude, sample_seconds, sample_records, run_probe, throughput, copy_window,
                            headroom, overlap_days, costs)

    def progress(line: str) -> None:
        click.echo(f"assess: {line}", err=True)

    assessment = run_assessment(app.state, source_profile, source,
                                target_profile, target, options, progress)
    if fmt == "json":
        text = json.dumps(_plain(assessment), indent=2, default=str) + "\n"
    elif fmt == "html":
        text = render_html(assessment)
    else:
        text = render_table(assessment, wide) + "\n"
    if vars_file:
        _write(vars_file, vars_yaml(assessment.plan.vars, Path(vars_file).name))
    if output:
        _write(output, text)
        from migrate.assess.summary import headline

        click.echo(f"{headline(assessment)}; report written to {output}", err=True)
    else:
        click.echo(text, nl=False)
    if assessment.readiness is not None and assessment.readiness.blockers:
        ctx.exit(EXIT_CHECK_FAILED)
