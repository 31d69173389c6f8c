"""`migrate local`: embedded local clusters on the two local platforms, and the seeded estate."""

from __future__ import annotations

import click

from migrate.cli.common import AppContext, cluster_option, emit, format_option, pass_app
from migrate.local.clusters import LocalClusters, parse_specs

COLUMNS = ["name", "platform", "bootstrap", "pid", "running"]


@click.group()
def local() -> None:
    """Embedded single-broker clusters on loopback (noida-db and Tansu).

    Example: migrate local up source=noida target=tansu
    """


@local.command()
@click.argument("clusters", nargs=-1, metavar="[NAME[=PLATFORM]]...")
@format_option()
@pass_app
def up(app: AppContext, clusters: tuple[str, ...], fmt: str) -> None:
    """Start local clusters (default: source=noida target=tansu) and write their profiles.

    Example: migrate local up source=noida target=tansu
    """
    started = LocalClusters(app.state, app.config_path).up(parse_specs(clusters))
    emit(started, fmt, COLUMNS)


@local.command()
@format_option()
@pass_app
def status(app: AppContext, fmt: str) -> None:
    """List the local clusters this state knows and whether each is running.

    Example: migrate local status --format json
    """
    emit(LocalClusters(app.state, app.config_path).status(), fmt, COLUMNS)


@local.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--wipe", is_flag=True, help="Also delete the cluster's data and forget it.")
@format_option()
@pass_app
def down(app: AppContext, names: tuple[str, ...], wipe: bool, fmt: str) -> None:
    """Stop local clusters gracefully (all when no name is given).

    Example: migrate local down target --wipe
    """
    emit(LocalClusters(app.state, app.config_path).down(names, wipe=wipe), fmt, COLUMNS)


@local.command()
@cluster_option
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Multiply the number of workflows (and so of records).")
@click.option("--seed", "seed_value", type=int, default=7, show_default=True,
              help="Random seed: the same seed writes the same estate.")
@click.option("--prefix", default="", help="Prefix for every topic and group name (tests use it).")
@format_option()
@pass_app
def seed(app: AppContext, cluster: str, scale: int, seed_value: int, prefix: str, fmt: str) -> None:
    """Write the reference agentic-workflow estate (topics, records, groups) to a cluster.

    Example: migrate local seed --cluster source --scale 2
    """
    from migrate.seed import seed_estate

    summary = seed_estate(app.cluster(cluster, "cluster"), scale=scale, seed=seed_value, prefix=prefix)
    if fmt == "json" or not prefix:
        emit(summary.rows(), fmt)
        return
    # names without their shared prefix, so that the table fits the terminal
    click.echo(f"names under {prefix}")
    emit([{**row, "name": str(row["name"]).removeprefix(prefix)} for row in summary.rows()], fmt)
