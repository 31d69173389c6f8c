"""`migrate mirror`: run a mirror, or show how far it has come."""

from __future__ import annotations

from typing import cast

import click

from migrate import kafka, shutdown
from migrate.cli import progress
from migrate.cli.common import (AppContext, emit, format_option, is_terminal, pass_app, source_option, target_option,
                                wide_option, wrapped)
from migrate.cli.metrics import mirror_serve_options, serve_metrics_options
from migrate.errors import ClusterUnreachable, KafkaOperationError, UsageError
from migrate.mirror import DEFAULT_NAME, Mirror, MirrorSpec, configsync, registry
from migrate.mirror.registry import MirrorRecord, choose_mirror, recorded_mirrors
from migrate.offset_maps.store import MapStore

_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


class ByteSize(click.ParamType):
    """A byte count: 500000, 500KB, 20MB, 1GiB (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)."""

    name = "bytes"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().replace(" ", "")
        number = text.rstrip("KMGIB")
        unit = text[len(number):]
        try:
            if unit not in _UNITS or float(number) < 0:
                raise ValueError(text)
            return int(float(number) * _UNITS[unit])
        except ValueError:
            self.fail(f"{value!r} is not a byte count; use e.g. 500000, 500KB, 20MB or 1GiB", param, ctx)


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
@click.option("--live-commit-interval", type=click.FloatRange(min=0.005), default=0.03, show_default=True,
              help="Seconds between commits of live records (shorter: fresher, and more target transactions).")
@click.option("--session-timeout-ms", type=click.IntRange(min=1000), default=10000, show_default=True,
              help="Source group session timeout: how fast a dead worker's partitions move.")
@click.option("--refresh-interval", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Seconds between source metadata refreshes (new matching topics are picked up).")
@click.option("--worker-id", default="", metavar="ID",
              help="This worker's id in the slots group (static membership: a restart reclaims its slots at once). "
                   "Default: derived from this machine, the state file and --name.")
@click.option("--membership", type=click.Choice(["static", "dynamic"]), default="static", show_default=True,
              help="How this worker joins the slots group: static (a restart reclaims its slots at once) or dynamic "
                   "(for a source that never drops a dead static member, such as Tansu 0.6.0).")
@click.option("--slots", type=click.IntRange(min=1, max=256), default=8, show_default=True,
              help="Write slots (one target producer each) shared by the workers; fixed on the mirror's first run.")
@click.option("--open-transactions", type=click.IntRange(min=0, max=256), default=0, show_default=True,
              help="At most this many of a worker's slots hold an open target transaction at once (0: no "
                   "limit). 1 or 2 suits targets whose transactions slow down when concurrent (Tansu).")
@click.option("--held-records", type=click.IntRange(min=1, max=10_000_000), default=50_000, show_default=True,
              help="Records held per slot while it commits before its partitions are paused (bounds memory).")
@click.option("--config-include", multiple=True, metavar="REGEX",
              help="Also keep topic configs whose whole key matches in sync (repeatable; beside the built-in list).")
@click.option("--config-exclude", multiple=True, metavar="REGEX",
              help="Never copy or sync topic configs whose whole key matches (repeatable).")
@click.option("--config-drift", type=click.Choice(["restore", "report"]), default="restore", show_default=True,
              help="A target topic config changed by hand: set it back to the source's value, or only report it.")
@click.option("--max-bytes-per-second", type=ByteSize(), default="0", show_default=True, metavar="BYTES",
              help="Source bytes this worker reads per second at most, e.g. 20MB (0: no limit); live partitions "
                   "are served first.")
@click.option("--map-prune-interval", type=click.FloatRange(min=0), default=600.0, show_default=True,
              metavar="SECONDS", help="Seconds between drops of offset-map runs whose records both clusters "
                                      "deleted (retention), which bounds the map while following (0: never).")
@click.option("--sync-groups", metavar="REGEX", help="Also sync offsets of matching inactive groups to the target.")
@click.option("--sync-interval", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Seconds between group offset syncs.")
@serve_metrics_options
@click.pass_context
def mirror(ctx: click.Context, source, target, topics, exclude, name, rename, until_caught_up, follow,
           transactions, compression, commit_interval, live_commit_interval, session_timeout_ms, refresh_interval, worker_id, membership,
           slots,
           open_transactions, held_records, config_include, config_exclude, config_drift, max_bytes_per_second,
           map_prune_interval, sync_groups, sync_interval, metrics_port, metrics_host, metrics_detail) -> None:
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
        live_commit_interval_s=live_commit_interval,
        session_timeout_ms=session_timeout_ms, source_spec=source, target_spec=target,
        sync_groups=sync_groups, sync_interval_s=sync_interval, worker_id=worker_id, membership=membership,
        metadata_refresh_s=refresh_interval, slots=slots,
        open_transactions=open_transactions, held_records=held_records, config_include=tuple(config_include),
        config_exclude=tuple(config_exclude), config_drift=config_drift, max_bytes_per_second=max_bytes_per_second,
        map_prune_interval_s=map_prune_interval,
    )
    serving = mirror_serve_options(app, metrics_port, metrics_host, metrics_detail)
    metrics, server = _serve_metrics(spec, serving) if serving.enabled else (None, None)
    stop = shutdown.cooperate()
    group_sync = _group_sync(app, spec, metrics) if sync_groups else None
    show = progress.printer(f"migrate.mirror.{name}", is_terminal())
    engine = Mirror(spec, app.state, stop=stop, on_progress=show, group_sync=group_sync, metrics=metrics)
    shutdown.abandoning(engine.unfinished)
    # An abandoned stop still leaves the slots group where the source answers (a worker that does
    # not leave holds its slots on brokers that never drop it): shortly before the grace ends.
    grace = shutdown.grace()
    leave_at = grace - min(5.0, grace / 3)
    shutdown.escalate(leave_at, lambda: engine.leave_within(grace - leave_at - 0.3))
    show.start()
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
        + (f", {result.vanished_count} source offsets vanished before they were mirrored" if result.vanished else "")
    )
    if result.vanished:
        shown = "; ".join(v.describe() for v in result.vanished[:5])
        more = f" and {len(result.vanished) - 5} more ranges" if len(result.vanished) > 5 else ""
        click.echo(f"error: {result.vanished_count} source offsets were deleted on cluster \"{spec.source.name}\" "
                   f"before they were mirrored (retention, DeleteRecords or data loss): {shown}{more}; "
                   "the target lacks them, the rest is exact", err=True)
    for failure in result.failures:
        click.echo(f"error: {failure.message}", err=True)
    if result.failures or result.vanished:
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
    from migrate import kafka
    from migrate.groups import sync_groups_once
    from migrate.mirror.loops import UNREACHABLE_WITHIN

    def run() -> None:
        # coordinator requests to a cluster that just lost its brokers can abort the process
        # (librdkafka issue 4605; see migrate.mirror.loops): wait for the next round instead
        if kafka.lost_recently(spec.source, UNREACHABLE_WITHIN) or kafka.lost_recently(spec.target, UNREACHABLE_WITHIN):
            return
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


@mirror.command()
@click.option("--name", default=None,
              help="Mirror name [default: the only mirror recorded in the state, else default].")
@source_option
@target_option
@wide_option
@format_option()
@pass_app
def status(app: AppContext, name: str | None, source, target, wide: bool, fmt: str) -> None:
    """Per topic: partitions, lag, vanished offsets, states and workers, problems first, and
    each topic's config drift (keys left different from the source: reported, or refused by the target);
    --wide: per partition.

    Read from the mirror's fleet status on the target, so any machine gives the same answer;
    with an empty state, pass --target.  --format json lists every partition with every field.

    Example: migrate mirror status --name default --format json
    """
    from migrate.cli import mirror_status as view

    name = name or _only_mirror(app)
    waiting: list[str] = []
    rows = mirror_status(app, name, source, target, waiting)
    if fmt == "json" or wide:
        emit(view.partitions_first_problems(rows) if wide else rows, fmt, fit=False)
    else:
        prefix = view.shared_prefix(rows)
        if prefix:
            click.echo(f"topics under {prefix}")
        emit(view.topic_rows(rows, prefix), fmt, view.TOPIC_COLUMNS)
    if fmt != "json":
        for line in wrapped([view.summary(name, rows),
                             *view.error_lines(rows), *view.drift_lines(rows)]):
            click.echo(line)
    for line in waiting:
        click.echo(f"warning: {line}", err=True)


def _only_mirror(app: AppContext) -> str:
    return choose_mirror(app.state, None) if recorded_mirrors(app.state) else DEFAULT_NAME


def mirror_status(app: AppContext, name: str | None, source: str | None, target: str | None,
                  waiting: list[str] | None = None) -> list[dict]:
    """The partition rows; `waiting` gets a line per live worker holding no slot (migrate.mirror.vacancies)."""
    if name is None:
        name = _only_mirror(app)
    record = registry.get(app.state, name)
    if record is None and not target:
        raise UsageError(f'no mirror named "{name}" in {app.state.path}; run migrate mirror --name {name} first, '
                         "or pass --target to read its fleet status from the target cluster")
    # record is None only when --target is given (refused above otherwise)
    target_profile = app.cluster(target or cast(MirrorRecord, record).target, "target")
    fleet_status = registry.read_fleet(target_profile, name)
    if record is None:
        if fleet_status is None or not registry.adopt_definition(app.state, name, fleet_status):
            raise UsageError(f'no mirror named "{name}" in {app.state.path} nor on cluster "target"; '
                             f"run migrate mirror --name {name} first")
        record = registry.get(app.state, name)
        assert record is not None  # adopt_definition has just recorded it
    parts = registry.progress(app.state, name, fleet_status)
    if waiting is not None and fleet_status is not None:
        waiting.extend(f"worker {w.worker} is running but has held no write slot for {w.waiting_s:.0f}s "
                       "(its log says why)" for w in fleet_status.workers.values()
                       if w.alive() and not w.slots and w.waiting_s is not None and w.waiting_s >= 10)
    ends = kafka.partition_ends(app.cluster(source or record.source, "source"),
                                [(r.topic, r.partition) for r in parts])
    vanished = MapStore(app.state, name).vanished()
    configs = _config_records(target_profile, name)
    rows = []
    for r in parts:
        end = ends[(r.topic, r.partition)]
        mirrored_to = r.source_high if r.source_high is not None else end.low
        rows.append({
            "topic": r.topic, "partition": r.partition, "target_topic": r.target_topic,
            "source_end": end.high, "mirrored_to": r.source_high, "lag": max(0, end.high - mirrored_to),
            "vanished": sum(e - f for f, e in vanished.get((r.topic, r.partition), [])),
            "status": r.status, "last_commit": r.updated_at, "worker": r.worker,
            "worker_alive": r.alive, "config_drift": configsync.drift_text(configs.get(r.topic, {})), "error": r.error,
        })
    return rows


def _config_records(target, name: str) -> dict[str, dict]:
    """The config sync's records (migrate.mirror.configsync); none when they cannot be read."""
    try:
        return configsync.read_records(target, name)
    except (ClusterUnreachable, KafkaOperationError) as exc:
        click.echo(f"warning: config drift of mirror \"{name}\" unreadable ({exc})", err=True)
        return {}
