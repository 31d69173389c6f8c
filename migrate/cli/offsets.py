"""`migrate offsets`: translate consumer-group offsets across a mirror, exactly, and sync them."""

from __future__ import annotations

from typing import Callable

import click

from migrate.cli.common import AppContext, emit, format_option, pass_app, source_option, target_option
from migrate.cli.metrics import batch_metrics_options, leaving_metrics
from migrate.errors import SyncRefused
from migrate.mirror.registry import choose_mirror, recorded_mirrors
from migrate.offset_maps import checkpoint
from migrate.offset_maps import route as offroute
from migrate.offset_maps import sync as offsync
from migrate.offset_maps.checkpoint import REFUSED_REWIND, UNCHANGED, UNTRANSLATABLE, GroupSync, OffsetChange
from migrate.offset_maps.sync import NOT_MIRRORED, GroupOffset
from migrate.offset_maps.translate import NOT_YET

TRANSLATE_COLUMNS = ["group", "topic", "partition", "committed", "end", "lag", "to_topic", "to_offset",
                     "status", "to_end", "to_lag", "note"]
SYNC_COLUMNS = ["group", "topic", "partition", "committed", "to_topic", "current", "new", "action", "status"]


@click.group()
def offsets() -> None:
    """Translate consumer-group offsets through a mirror's exact offset map, and commit them.

    Example: migrate offsets translate --all-groups
    """


def _route_options(f: Callable) -> Callable:
    options: list[Callable[[Callable], Callable]] = [
        click.option("--group", "groups", multiple=True, metavar="GROUP", help="A consumer group (repeatable)."),
        click.option("--all-groups", is_flag=True, help="Every group the sending cluster lists."),
        click.option("--name", "mirror", default=None, metavar="MIRROR",
                     help="The mirror whose offset map translates [default: the only mirror recorded]."),
        click.option("--reverse", is_flag=True,
                     help="Groups on the mirror's target, offsets for its source (rollback); target records "
                          "produced after cutover translate through a reverse mirror (see --reverse-mirror)."),
        click.option("--reverse-mirror", metavar="MIRROR",
                     help="The mirror from target back to source (default: the one recorded, if exactly one)."),
        click.option("--fallback", type=click.Choice(offroute.FALLBACKS), default="none", show_default=True,
                     help="For offsets older than the map: 'timestamp' finds a position by record "
                          "timestamps, marked approximate."),
        source_option,
        target_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _route(app: AppContext, mirror: str | None, source: str | None, target: str | None, reverse: bool,
           reverse_mirror: str | None, fallback: str) -> offroute.Route:
    if mirror is None:
        # with no mirror recorded, "default" still names one whose map is on the target (--source/--target)
        mirror = choose_mirror(app.state, None) if recorded_mirrors(app.state) else "default"
    return offroute.route_for(app.state, mirror, app.cluster, source, target, reverse, reverse_mirror, fallback)


@offsets.command()
@_route_options
@format_option()
@pass_app
def translate(app: AppContext, groups: tuple[str, ...], all_groups: bool, mirror: str, reverse: bool,
              reverse_mirror: str | None, fallback: str, source: str | None, target: str | None, fmt: str) -> None:
    """Show each group partition's committed offset, its exact translation and the lag on both sides.

    Status: exact, gap (next mirrored record), end, not-yet (mirror behind), before-start
    (older than the map), approximate (only with --fallback timestamp), not-mirrored (a
    topic the mirror does not copy).

    Example: migrate offsets translate --group billing --group audit --format json
    """
    route = _route(app, mirror, source, target, reverse, reverse_mirror, fallback)
    rows = offsync.translate_groups(route, offsync.select_groups(route, groups, all_groups))
    emit(rows, fmt, TRANSLATE_COLUMNS if fmt == "table" else None)
    if fmt == "table":
        click.echo(translate_summary(rows))


@offsets.command()
@_route_options
@click.option("--dry-run", is_flag=True, help="Show what would be committed; commit nothing.")
@click.option("--allow-rewind", is_flag=True, help="Allow moving a receiving group's offset backwards.")
@format_option()
@batch_metrics_options
@pass_app
def sync(app: AppContext, groups: tuple[str, ...], all_groups: bool, mirror: str, reverse: bool,
         reverse_mirror: str | None, fallback: str, source: str | None, target: str | None,
         dry_run: bool, allow_rewind: bool, fmt: str, metrics_file: str | None, pushgateway: str | None) -> None:
    """Commit translated offsets into the same groups on the other cluster (inactive groups only).

    Never moves a group backwards unless --allow-rewind; a group that is active on the
    receiving side, or has an offset that cannot be translated exactly, is refused with
    nothing committed.  Running it again changes nothing.

    Example: migrate offsets sync --all-groups --dry-run
    """
    with leaving_metrics(app, metrics_file, pushgateway, "migrate_offsets_sync", "migrate_offsets_sync",
                         {"mirror": mirror}) as batch:
        _sync(app, batch, groups, all_groups, mirror, reverse, reverse_mirror, fallback, source, target, dry_run,
              allow_rewind, fmt)


def _sync(app: AppContext, batch, groups: tuple[str, ...], all_groups: bool, mirror: str, reverse: bool,
          reverse_mirror: str | None, fallback: str, source: str | None, target: str | None,
          dry_run: bool, allow_rewind: bool, fmt: str) -> None:
    from migrate.metrics.batch import sync_metrics

    route = _route(app, mirror, source, target, reverse, reverse_mirror, fallback)
    results = checkpoint.sync_groups(route, offsync.select_groups(route, groups, all_groups),
                                     dry_run=dry_run, allow_rewind=allow_rewind)
    batch.metrics = sync_metrics(results, mirror)
    if fmt == "json":
        emit(results, fmt)
    else:
        # what changed (or would, or was refused); partitions already in sync are only counted
        changes = [c for r in results for c in r.changes if c.action != checkpoint.UNCHANGED]
        if changes:
            emit(changes, fmt, SYNC_COLUMNS)
        click.echo(summary(results, route.receiving.name))
    refused = [r for r in results if r.outcome == "refused"]
    if refused:
        raise SyncRefused(
            f"{len(refused)} of {len(results)} group{'s' if len(results) != 1 else ''} refused: "
            + " | ".join(r.reason for r in refused))


# --- the summary lines, for people -----------------------------------------------------------------


def translate_summary(rows: list[GroupOffset]) -> str:
    """One line counting the group partitions of `offsets translate` by status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    groups = len({row.group for row in rows})
    kinds = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"{len(rows)} committed partition{'s' if len(rows) != 1 else ''} of {groups} "
            f"group{'s' if groups != 1 else ''}: {kinds or 'none'}")


PARTITION_KINDS = ("committed", "would commit", "already in sync", "not mirrored", "not yet mirrored", "refused")


def partition_kind(result: GroupSync, change: OffsetChange) -> str:
    """What happened to one committed partition of a group, in the words of the summary."""
    if change.action == NOT_MIRRORED:
        return "not mirrored"
    if change.action == UNCHANGED:
        return "already in sync"
    if change.action == UNTRANSLATABLE and change.status == NOT_YET:
        return "not yet mirrored"
    if result.outcome in ("refused", "skipped") or change.action in (UNTRANSLATABLE, REFUSED_REWIND):
        return "refused"
    return "would commit" if result.outcome == "would-change" else "committed"


def summary(results: list[GroupSync], receiving: str) -> str:
    """One line saying what a sync did to every group and every committed partition, for people."""
    outcomes: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for result in results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        for change in result.changes:
            kind = partition_kind(result, change)
            kinds[kind] = kinds.get(kind, 0) + 1
    total = len(results)
    groups = f'{total} group{"s" if total != 1 else ""}'
    if total and outcomes.get("unchanged", 0) == total and set(kinds) <= {"already in sync"}:
        return f'nothing to change: all {groups} already in sync on "{receiving}"'
    parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    partitions = ", ".join(f"{kinds[k]} {k}" for k in PARTITION_KINDS if kinds.get(k)) or "none"
    return f'{groups}: {parts}; partitions: {partitions} on "{receiving}"'
