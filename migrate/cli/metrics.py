"""Metrics flags shared by commands: serving /metrics (mirror) and leaving a batch run's outcome."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

import click

from migrate.cli.common import AppContext
from migrate.errors import EXIT_USAGE, MigrateError, UsageError
from migrate.metrics.options import DETAILS, BatchOptions, ServeOptions, batch_options, serve_options

if TYPE_CHECKING:  # leaving_metrics imports it where used
    from migrate.metrics.batch import BatchMetrics


def serve_metrics_options(f: Callable) -> Callable:
    options = [
        click.option("--metrics-port", type=click.IntRange(0, 65535), metavar="PORT",
                     help="Serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port) "
                          "[config: metrics.port]."),
        click.option("--metrics-host", metavar="HOST",
                     help="Address the metrics endpoint binds [config: metrics.host; default 127.0.0.1]."),
        click.option("--metrics-detail", type=click.Choice(DETAILS),
                     help="Per-partition lag/freshness series, or per-topic sums only "
                          "[config: metrics.detail; default partition]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def batch_metrics_options(f: Callable) -> Callable:
    options = [
        click.option("--metrics-file", metavar="PATH.prom",
                     help="Write the run's outcome as metrics for the node-exporter textfile collector (atomically)."),
        click.option("--pushgateway", metavar="URL",
                     help="Push the run's outcome to this Prometheus Pushgateway [config: metrics.pushgateway]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def mirror_serve_options(app: AppContext, port: int | None, host: str | None, detail: str | None) -> ServeOptions:
    return serve_options(port, host, detail, app.config.metrics)


@dataclass
class BatchRun:
    """Filled by the command with its metrics once it has a result."""

    metrics: BatchMetrics | None = None
    grouping: dict = field(default_factory=dict)
    exit_code: int = 0  # the exit code the command will end with when it returns normally


def _exit_code(exc: BaseException | None) -> int:
    if exc is None:
        return 0
    if isinstance(exc, MigrateError):
        return exc.exit_code
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return EXIT_USAGE


@contextmanager
def leaving_metrics(app: AppContext, metrics_file: str | None, pushgateway: str | None, prefix: str,
                    job: str, grouping: Mapping[str, str]) -> Iterator[BatchRun]:
    """Check the metrics destinations first, run the command, then leave its outcome (also on failure)."""
    from migrate.metrics.batch import BatchMetrics, publish

    options: BatchOptions = batch_options(metrics_file, pushgateway, app.config.metrics)
    run = BatchRun(grouping=dict(grouping))
    failure: BaseException | None = None
    try:
        yield run
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if options.enabled:
            code = _exit_code(failure) if failure is not None else run.exit_code
            metrics = run.metrics or BatchMetrics(prefix, run.grouping)
            metrics.set("exit_code", "Exit code of the last run (0 ok, 1 check failed, 2 could not run)", code)
            metrics.finish(success=code == 0)
            try:
                warnings = publish(metrics, options, job, run.grouping)
            except OSError as exc:
                message = f"cannot write --metrics-file {options.file} ({exc.strerror or exc})"
                if failure is None:
                    raise UsageError(message + "; pick a writable path") from exc
                click.echo(f"error: {message}", err=True)
                warnings = []
            for warning in warnings:
                click.echo(f"warning: {warning}", err=True)
