"""`migrate mirror`: run a mirror, or show how far it has come."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import click

from migrate import kafka
from migrate.cli.common import AppContext, emit, format_option, is_terminal, pass_app, source_option, target_option
from migrate.cli.metrics import mirror_serve_options, serve_metrics_options
from migrate.errors import UsageError
from migrate.mirror import DEFAULT_NAME, Mirror, MirrorSpec, Progress
from migrate.offset_maps.store import MapStore

log = logging.getLogger("migrate.mirror")


@click.group(invoke_without_command=True)
@source_option
@target_option
@click.option("--topics", "topics", multiple=True, metavar="REGEX",
              help="Mirror topics whose whole name matches (repeatable).")
@click.option("--exclude", multiple=True, metavar="REGEX", help="Skip topics whose whole name matches (repeatable).")
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="Mirror name: workers with the same name share the partitions.")
@click.option("--rename", default="{topic}", show_default=True, metavar="TEMPLATE",
              help="Target topic name template, e.g. 'src.{topic}'.")
@click.option("--until-caught-up", is_flag=True,
              help="Stop once everything that existed at start is mirrored.")
@click.option("--follow", is_flag=True, help="Keep mirroring until SIGINT/SIGTERM (the default).")
@click.option("--transactions", is_flag=True,
              help="Commit records and their map entries in one target transaction.")
@click.option("--compression", type=click.Choice(["none", "gzip", "snappy", "lz4", "zstd"]), default="lz4",
              show_default=True, help="Compression of the target producer.")
@click.option("--commit-interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True,
              help="Seconds between target transaction commits per partition.")
@click.option("--session-timeout-ms", type=click.IntRange(min=1000), default=10000, show_default=True,
              help="Source group session timeout: how fast a dead worker's partitions move.")
@click.option("--refresh-interval", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Seconds between source metadata refreshes (new matching topics are picked up).")
@click.option("--worker-id", default="", metavar="ID",
              help="Stable id of this worker (static group membership): a restart reclaims its partitions at once.")
@click.option("--sync-groups", metavar="REGEX", help="Also sync offsets of matching inactive groups to the target.")
@click.option("--sync-interval", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Seconds between group offset syncs.")
@serve_metrics_options
@click.pass_context
def mirror(ctx: click.Context, source, target, topics, exclude, name, rename, until_caught_up, follow,
           transactions, compression, commit_interval, session_timeout_ms, refresh_interval, worker_id, sync_groups,
           sync_interval, metrics_port, metrics_host, metrics_detail) -> None:
    """Copy topics from a source to a target cluster exactly once, writing exact offset maps.

    Example: migrate mirror --source source --target target --topics 'workflow\\..*' --until-caught-up
    """
    if ctx.invoked_subcommand is not None:
        return
    app: AppContext = ctx.obj
    if until_caught_up and follow:
        raise UsageError("--until-caught-up and --follow exclude each other; pick one")
    spec = MirrorSpec(
        name=name, source=app.cluster(source, "source"), target=app.cluster(target, "target"),
        topics=tuple(topics), exclude=tuple(exclude), rename=rename, transactions=transactions,
        until_caught_up=until_caught_up, compression=compression, commit_interval_s=commit_interval,
        session_timeout_ms=session_timeout_ms, source_spec=source, target_spec=target,
        sync_groups=sync_groups, sync_interval_s=sync_interval, worker_id=worker_id,
        metadata_refresh_s=refresh_interval,
    )
    serving = mirror_serve_options(app, metrics_port, metrics_host, metrics_detail)
    metrics, server = _serve_metrics(spec, serving) if serving.enabled else (None, None)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    group_sync = _group_sync(app, spec, metrics) if sync_groups else None
    engine = Mirror(spec, app.state, stop=stop, on_progress=_progress_printer(), group_sync=group_sync,
                    metrics=metrics)
    try:
        result = engine.run()
    finally:
        if server is not None:
            server.close()
    if is_terminal():
        click.echo("", err=True)
    click.echo(
        f"mirror {name}: {result.records} records ({result.bytes / 1e6:.1f} MB) in {result.seconds:.1f}s"
        + (f", {result.adopted} adopted from the target tail" if result.adopted else "")
        + (", caught up" if result.caught_up else "")
    )
    for failure in result.failures:
        click.echo(f"error: {failure.message}", err=True)
    if result.failures:
        ctx.exit(1)


def _serve_metrics(spec: MirrorSpec, serving):
    from migrate.metrics.mirror import MirrorMetrics
    from migrate.metrics.server import new_registry, serve

    registry = new_registry()
    metrics = MirrorMetrics(registry, spec.source, serving.detail)
    server = serve(registry, serving.host, serving.port)
    click.echo(f"metrics: serving {server.url} (detail: {serving.detail})", err=True)
    return metrics, server


def _group_sync(app: AppContext, spec: MirrorSpec, metrics=None):
    try:
        from migrate.groups import sync_groups_once  # provided by the offsets module
    except ImportError:
        raise UsageError("--sync-groups needs the offsets module, which this installation lacks")

    def run() -> None:
        if metrics is None:
            sync_groups_once(app.state, spec.name, spec.source, spec.target, spec.sync_groups)
            return
        try:
            changes = sync_groups_once(app.state, spec.name, spec.source, spec.target, spec.sync_groups,
                                       on_results=lambda results: metrics.group_synced(
                                           "skipped", sum(1 for r in results if r.outcome == "skipped")))
        except Exception:
            metrics.group_synced("failed")
            raise
        metrics.group_synced("committed", len(changes))

    return run


def _progress_printer():
    terminal = is_terminal()
    state = {"last_log": 0.0, "last_records": 0, "last_seconds": 0.0}

    def show(progress: Progress) -> None:
        seconds = max(progress.seconds - state["last_seconds"], 1e-6)
        rate = (progress.records - state["last_records"]) / seconds
        lag = sum(progress.lag.values())
        eta = f"{lag / rate:.0f}s" if rate > 0 and lag else "-"
        if terminal:
            sys.stderr.write(
                f"\r{progress.records:>12,} records  {rate:>10,.0f} rec/s  "
                f"{progress.bytes / max(progress.seconds, 1e-6) / 1e6:6.1f} MB/s  lag {lag:>10,}  ETA {eta:>6}  "
                f"partitions {progress.owned}" + (f" ({progress.failed} stopped)" if progress.failed else "") + "  "
            )
            sys.stderr.flush()
        elif progress.seconds - state["last_log"] >= 10:
            log.warning("progress %s", json.dumps({"records": progress.records, "rate": round(rate),
                                                  "lag": progress.lag, "partitions": progress.owned,
                                                  "stopped": progress.failed}))
            state["last_log"] = progress.seconds
        state["last_records"], state["last_seconds"] = progress.records, progress.seconds

    return show


@mirror.command()
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Mirror name.")
@format_option()
@pass_app
def status(app: AppContext, name: str, fmt: str) -> None:
    """Per partition: source end, mirrored up to, lag, state and last commit time.

    Example: migrate mirror status --name default --format json
    """
    row = app.state.db.execute("SELECT source FROM mirrors WHERE name = ?", [name]).fetchone()
    if row is None:
        raise UsageError(f'no mirror named "{name}" in {app.state.path}; run migrate mirror --name {name} first')
    progress = MapStore(app.state, name).progress()
    source = app.cluster(row[0], "source")
    ends = kafka.partition_ends(source, [(r["topic"], r["partition"]) for r in progress])
    rows = []
    for r in progress:
        end = ends[(r["topic"], r["partition"])].high
        rows.append({
            "topic": r["topic"], "partition": r["partition"], "target_topic": r["target_topic"],
            "source_end": end, "mirrored_to": r["source_high"], "lag": max(0, end - (r["source_high"] or 0)),
            "status": r["status"], "last_commit": r["updated_at"], "error": r["error"] or "",
        })
    emit(rows, fmt)
