"""`migrate probe`: run the platform compatibility probe, and compare two platforms' results."""

from __future__ import annotations

import click

from migrate.cli.common import (AppContext, emit, emit_json, format_option, pass_app, source_option, target_option,
                                wide_option, wrapped)
from migrate.errors import EXIT_CHECK_FAILED, UsageError
from migrate.probe.checks import FIGURES
from migrate.probe.model import BOTH, CONFLUENT, KAFKA_PYTHON, PASS

COLUMNS = ["check", "client", "status", "evidence"]
COMPACT_COLUMNS = ["check", CONFLUENT, KAFKA_PYTHON]
GAP_COLUMNS = ["check", "client", "source", "target", "target_observed"]


def _rows(report) -> list[dict]:
    rows = []
    for r in report.results:
        evidence = r.observed if r.ok else f"expected: {r.expected}; observed: {r.observed}"
        rows.append({"check": r.name, "client": r.client, "status": r.status, "evidence": evidence})
    return rows


def _compact_rows(report) -> list[dict]:
    """One row per check with each client's status, checks with a problem first."""
    by_name: dict[str, dict[str, str]] = {}
    for r in report.results:
        row = by_name.setdefault(r.name, {"check": r.name, CONFLUENT: "-", KAFKA_PYTHON: "-"})
        for client in ((CONFLUENT, KAFKA_PYTHON) if r.client == BOTH else (r.client,)):
            row[client] = r.status
    return sorted(by_name.values(), key=lambda row: all(row[c] in (PASS, "-") for c in (CONFLUENT, KAFKA_PYTHON)))


def _below(report) -> list[str]:
    """The evidence a person reads: each result that is not a pass, then the figures measured."""
    lines = [f"{r.status.upper()} {r.name} ({r.client}): expected {r.expected}; observed {r.observed}"
             for r in report.results if not r.ok]
    figures = [f"{r.name} ({r.client}): {r.observed}" for r in report.results if r.ok and r.name in FIGURES]
    if figures:
        lines += ["", "figures:", *figures]
    return lines


def _summary(report, saved: bool) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in report.counts().items() if n)
    where = "; scratch topics kept: " + ", ".join(report.kept_topics) if report.kept_topics else ""
    return (f"probe of {report.cluster} ({report.bootstrap}) in {report.duration_s:.1f}s: {counts}"
            f"{'; results saved' if saved else ''}{where}")


@click.group(invoke_without_command=True)
@click.option("--cluster", metavar="PROFILE|HOST:PORT", help="Cluster to probe: a profile or a bootstrap string.")
@click.option("--only", metavar="LIST", help="Comma-separated check names to run (default: all; see: migrate probe checks).")
@click.option("--keep", is_flag=True, help="Keep the scratch topics (__migrate.probe.*) for inspection.")
@wide_option
@format_option()
@pass_app
@click.pass_context
def probe(ctx: click.Context, app: AppContext, cluster: str | None, only: str | None, keep: bool, wide: bool,
          fmt: str) -> None:
    """Probe a cluster's Kafka behaviour: pass, fail or unsupported, with evidence (exit 1 on a failed check).

    The table has a row per check with each client's status, problems first; their evidence and
    the figures follow it.  --wide gives every result with its evidence in the table.

    Example: migrate probe --cluster target --only transactions,list-offsets-latest
    """
    if ctx.invoked_subcommand is not None:
        return
    if not cluster:
        raise UsageError("no cluster given; pass --cluster NAME|HOST:PORT (or use: migrate probe diff)")
    from migrate.probe.runner import run_probe
    from migrate.probe.store import save_report

    names = [n for n in (only or "").split(",") if n.strip()] or None
    report = run_probe(app.cluster(cluster, "cluster"), names, keep, cluster=cluster)
    save_report(app.state, report)
    if fmt == "json":
        emit_json(report)
    else:
        if wide:
            emit(_rows(report), fmt, COLUMNS)
        else:
            emit(_compact_rows(report), fmt, COMPACT_COLUMNS)
            for line in wrapped(["", *_below(report)] if _below(report) else []):
                click.echo(line)
        click.echo("")
        for line in wrapped([_summary(report, saved=True)]):
            click.echo(line)
    if report.problems():
        ctx.exit(EXIT_CHECK_FAILED)


@probe.command()
@source_option
@target_option
@format_option()
@pass_app
@click.pass_context
def diff(ctx: click.Context, app: AppContext, source: str | None, target: str | None, fmt: str) -> None:
    """List what the target lacks that the source has, from stored probe results (exit 1 when it lacks any).

    Example: migrate probe diff --source source --target target
    """
    from migrate.probe.diff import figure_comparison, probe_diff
    from migrate.probe.store import load_for

    reports = []
    for spec, role in ((source, "source"), (target, "target")):
        profile = app.cluster(spec, role)
        assert spec is not None  # resolve_cluster has refused an empty --source/--target
        report = load_for(app.state, spec, profile)
        if report is None:
            raise UsageError(f'no stored probe results for {role} "{spec}"; run: migrate probe --cluster {spec}')
        reports.append(report)
    gaps = probe_diff(*reports)
    figures = figure_comparison(reports[0], reports[1])
    if fmt == "json":
        emit_json({"source": reports[0].cluster, "target": reports[1].cluster, "gaps": gaps, "figures": figures})
    else:
        if gaps:
            emit(gaps, fmt, GAP_COLUMNS)
            click.echo(f"{reports[1].cluster} lacks {len(gaps)} behaviours that {reports[0].cluster} has "
                       f"(probed {reports[0].ran_at} and {reports[1].ran_at})")
        else:
            click.echo(f"{reports[1].cluster} lacks nothing that {reports[0].cluster} has")
        if figures:
            click.echo("")
            emit([{"figure": f.check, "source": f.source, "target": f.target} for f in figures], fmt)
    if gaps:
        ctx.exit(EXIT_CHECK_FAILED)


@probe.command("checks")
@format_option()
def list_checks(fmt: str) -> None:
    """List the check names (usable with --only and as playbook requirements).

    Example: migrate probe checks --format json
    """
    from migrate.probe.checks import CHECK_NAMES

    emit([{"check": name, "description": what} for name, what in CHECK_NAMES.items()], fmt)
