"""What every command shares: the app context, output formats, cluster options, error edge."""

from __future__ import annotations

import json
import re
import shutil
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


def emit(rows: Iterable[Any], fmt: str, headers: list[str] | None = None, tablefmt: str = "simple",
         fit: bool = True) -> None:
    """Print rows (dicts or dataclasses) as a table or as a JSON list.

    Tables fit the terminal width (`fit`): long free-text cells wrap inside their column;
    nothing is cut off, and JSON always has the full text.
    """
    data = [_plain(row) for row in rows]
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(table_text(data, headers, tablefmt, fit))


def table_text(rows: Iterable[Any], headers: list[str] | None = None, tablefmt: str = "simple",
               fit: bool = True) -> str:
    """Rows (dicts or dataclasses) as a table that fits the terminal width; "(none)" when empty."""
    data = [_plain(row) for row in rows]
    if not data:
        return "(none)"
    keys = headers or list(data[0].keys())
    cells = [[row.get(k) for k in keys] for row in data]
    widths = fitted_widths(keys, cells, terminal_width()) if fit else None
    # tabulate 0.9/0.10 takes a cell such as "2,019" in a wrapped column for an int and then fails
    # to convert it (ValueError): such cells go in as text it does not try to parse
    if widths:
        for row in cells:
            for i, cell in enumerate(row):
                if widths[i] is not None and isinstance(cell, str) and _GROUPED_INT.fullmatch(cell):
                    row[i] = _Verbatim(cell)
    return tabulate(cells, headers=keys, tablefmt=tablefmt, maxcolwidths=widths)


_GROUPED_INT = re.compile(r"-?\d{1,3}(,\d{3})+")


class _Verbatim:
    """A cell tabulate prints as it is (not a str, so its number detection leaves it alone)."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


def wrapped(lines: Iterable[str], indent: str = "  ") -> list[str]:
    """Free text below a table, each line wrapped to the terminal width (later lines of one indented)."""
    width = terminal_width()
    out = []
    for line in lines:
        out.extend(click.wrap_text(line, width, subsequent_indent=indent).splitlines() or [""])
    return out


def wide_option(f: Callable) -> Callable:
    return click.option("--wide", is_flag=True,
                        help="Every column (tables may then be wider than the terminal); --format json has all.")(f)


def terminal_width() -> int:
    """Columns of the terminal (or $COLUMNS); 100 when neither is known."""
    return max(40, shutil.get_terminal_size((100, 24)).columns)


MIN_COLUMN = 6
LONG_WORD = 16  # a word longer than this may be broken to fit; shorter ones stay whole
COLUMN_GAP = 2  # tabulate's "simple" format puts two spaces between columns


def fitted_widths(headers: list[str], cells: list[list[Any]], width: int) -> list[int | None] | None:
    """Per-column wrap widths that make the table fit `width`, taken from the widest columns first.

    A column is not made narrower than its longest word, so names and verdicts stay whole;
    only in the widest column (JSON, evidence) are words longer than LONG_WORD broken, and never
    in the first column (the names the rows are about) while another column can give way.
    """
    # tabulate makes a column at least its header + 2 wide
    natural = [max([len(str(h)) + 2] + [_cell_width(row[i]) for row in cells]) for i, h in enumerate(headers)]
    # words stay whole (names, ids, verdicts), except in the widest column (JSON, evidence)
    widest = max(range(1, len(natural)) if len(natural) > 1 else range(1), key=lambda i: natural[i])
    floors = [min(full, max(MIN_COLUMN, len(str(h)) + 2,
                            min(LONG_WORD if i == widest else full, _longest_word([row[i] for row in cells]))))
              for i, (h, full) in enumerate(zip(headers, natural))]
    limits = list(natural)
    budget = width - COLUMN_GAP * (len(headers) - 1)
    while sum(limits) > budget:
        shrinkable = [i for i in range(len(limits)) if limits[i] > floors[i]]
        if not shrinkable:
            break  # as narrow as it sensibly gets
        limits[max(shrinkable, key=lambda i: limits[i])] -= 1
    if limits == natural:
        return None
    return [limit if limit < full else None for limit, full in zip(limits, natural)]


def _longest_word(values: list[Any]) -> int:
    words = [w for v in values for w in ("" if v is None else str(v)).split()]
    return max((len(w) for w in words), default=0)


def _cell_width(value: Any) -> int:
    text = "" if value is None else str(value)
    return max((len(line) for line in text.splitlines()), default=0)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(_plain(value), indent=2, default=str))


def is_terminal() -> bool:
    return sys.stderr.isatty()
