"""What every command shares: the app context, output formats, cluster options, error edge."""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import click
from tabulate import tabulate

from migrate import config as cfg
from migrate import shutdown
from migrate.errors import MigrateError
from migrate.state import State


@dataclass
class AppContext:
    config_file: str | None
    state_file: str | None
    verbose: int = 0
    _config: cfg.Config | None = None
    _state: State | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return cfg.config_path(self.config_file)

    @property
    def config(self) -> cfg.Config:
        if self._config is None:
            self._config = cfg.load_config(self.config_file)
        return self._config

    @property
    def state(self) -> State:
        if self._state is None:
            self._state = State(cfg.state_path(self.state_file))
        return self._state

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    def cluster(self, spec: str | None, role: str) -> cfg.ClusterProfile:
        return cfg.resolve_cluster(spec, self.config, role)


pass_app = click.make_pass_decorator(AppContext)


class MigrateGroup(click.Group):
    """A click group that turns our typed errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MigrateError as exc:
            click.echo(f"error: {cfg.redact_text(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(shutdown.exit_code())


def format_option(*choices: str) -> Callable:
    choices = choices or ("table", "json")
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default=choices[0], show_default=True,
        help="Output format; json is stable for scripts.",
    )


def source_option(f: Callable) -> Callable:
    return click.option("--source", envvar="MIGRATE_SOURCE", metavar="PROFILE|HOST:PORT",
                        help="Source cluster: a profile from the config file or a bootstrap string [env MIGRATE_SOURCE].")(f)


def target_option(f: Callable) -> Callable:
    return click.option("--target", envvar="MIGRATE_TARGET", metavar="PROFILE|HOST:PORT",
                        help="Target cluster: a profile from the config file or a bootstrap string [env MIGRATE_TARGET].")(f)


def cluster_option(f: Callable) -> Callable:
    return click.option("--cluster", metavar="PROFILE|HOST:PORT", required=True,
                        help="Cluster: a profile from the config file or a bootstrap string.")(f)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def emit(rows: Iterable[Any], fmt: str, headers: list[str] | None = None, tablefmt: str = "simple") -> None:
    """Print rows (dicts or dataclasses) as a table or as a JSON list."""
    data = [_plain(row) for row in rows]
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if not data:
        click.echo("(none)")
        return
    keys = headers or list(data[0].keys())
    click.echo(tabulate([[row.get(k) for k in keys] for row in data], headers=keys, tablefmt=tablefmt))


def emit_json(value: Any) -> None:
    click.echo(json.dumps(_plain(value), indent=2, default=str))


def is_terminal() -> bool:
    return sys.stderr.isatty()
