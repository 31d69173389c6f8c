"""`migrate demo`: the whole migration story on embedded local clusters, with its proof."""

from __future__ import annotations

import time

import click

from migrate.cli.common import AppContext, emit_json, format_option, pass_app, table_text, terminal_width, wrapped
from migrate.errors import CheckFailed


class DemoFailed(CheckFailed):
    """The demo ran and its proof does not hold."""


def render(summary) -> str:
    """The demo's result for a terminal: its figures (each saying what it counts), then the verdict."""
    verdict = "PROOF HOLDS" if summary.ok else "PROOF FAILED"
    return "\n".join([table_text(summary.rows(), ["what", "result"]), "", *wrapped([
        f"{verdict}: {summary.proof.produced:,} live events, each processed once by every group: lost "
        f"{summary.proof.lost}, processed twice {summary.proof.twice}. The runs: migrate playbook history"])])


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
        stamp = f"[{time.monotonic() - started:5.1f}s] "
        text = click.wrap_text(line, max(40, terminal_width() - len(stamp)), preserve_paragraphs=False,
                               subsequent_indent="   " if not line.startswith(" ") else "      ")
        for i, part in enumerate(text.splitlines() or [""]):
            click.echo((stamp if i == 0 else " " * len(stamp)) + part, err=True)

    summary = run_demo(app.state, app.state.path, app.config_path, progress, rate=rate, keep_clusters=keep_clusters)
    if fmt == "json":
        emit_json(summary)
    else:
        click.echo(render(summary))
    if not summary.ok:
        raise DemoFailed(f"demo proof failed: lost {summary.proof.lost}, processed twice {summary.proof.twice}; "
                         f"cutover {summary.cutover}")
