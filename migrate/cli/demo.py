"""`migrate demo`: the whole migration story on embedded local clusters, with its proof."""

from __future__ import annotations

import time

import click

from migrate.cli.common import AppContext, emit, emit_json, format_option, pass_app
from migrate.errors import CheckFailed


class DemoFailed(CheckFailed):
    """The demo ran and its proof does not hold."""


@click.command()
@click.option("--rate", type=click.FloatRange(min=1, max=2000), default=50.0, show_default=True,
              help="Events per second of the live producer.")
@click.option("--keep-clusters", is_flag=True,
              help="Leave the local clusters running afterwards (those already running are always left).")
@format_option()
@pass_app
def demo(app: AppContext, rate: float, keep_clusters: bool, fmt: str) -> None:
    """Seed, mirror, validate, rehearse and cut over live apps on local clusters; prove nothing was lost.

    Example: migrate demo
    """
    from migrate.demo.run import run_demo

    started = time.monotonic()

    def progress(line: str) -> None:
        click.echo(f"[{time.monotonic() - started:5.1f}s] {line}", err=True)

    summary = run_demo(app.state, app.state.path, app.config_path, progress, rate=rate, keep_clusters=keep_clusters)
    if fmt == "json":
        emit_json(summary)
    else:
        emit(summary.rows(), fmt, ["what", "result"])
        verdict = "PROOF HOLDS" if summary.ok else "PROOF FAILED"
        click.echo(f"\n{verdict}: {summary.proof.produced} events, lost {summary.proof.lost}, "
                   f"processed twice {summary.proof.twice}. Runs: migrate playbook history")
        if summary.metrics_url:
            lag = "not read" if summary.final_lag is None else f"{summary.final_lag} records"
            click.echo(f"Mirror metrics were at {summary.metrics_url}; final exact lag {lag}.")
    if not summary.ok:
        raise DemoFailed(f"demo proof failed: lost {summary.proof.lost}, processed twice {summary.proof.twice}; "
                         f"cutover {summary.cutover}")
