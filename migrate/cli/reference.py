"""The CLI reference, docs/cli.md, rendered from the commands' own `--help`.

`python -m migrate.cli.reference` writes the file; `python -m migrate.cli.reference --check` exits 1 with
one line when the file is not what the commands print now (tests/test_docs.py runs the same check).
Help is rendered at a fixed width, so the file does not depend on the terminal it was made in.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

WIDTH = 100
PROG = "migrate"
REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
REGENERATE = "python -m migrate.cli.reference"

HEADER = f"""# CLI reference

Every command's `--help`, as `migrate` prints it at a width of {WIDTH} columns: a one-line summary,
an example, the options. Generated from the commands themselves by `{REGENERATE}`;
`tests/test_docs.py` fails when this file is stale. Exit codes: [exit-codes.md](exit-codes.md).
Configuration files and environment variables: [configuration.md](configuration.md).
"""


def root() -> click.Group:
    """The `migrate` group with every command group registered (importing the package registers them)."""
    from migrate.cli import main

    return main


def walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[str, click.Context]]:
    """(command path, context) for the command and every subcommand below it, subcommands in name order."""
    yield ctx.command_path, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            sub = command.commands[name]
            yield from walk(sub, click.Context(sub, info_name=name, parent=ctx))


def anchor(path: str) -> str:
    """The heading anchor GitHub makes for `## path` (command paths are words and spaces)."""
    return path.lower().replace(" ", "-")


def render() -> str:
    """The whole reference: an index of command paths, then each command's help in a code block."""
    main = root()
    top = click.Context(main, info_name=PROG, terminal_width=WIDTH, max_content_width=WIDTH)
    commands = list(walk(main, top))
    lines = [HEADER]
    lines += [f"- [`{path}`](#{anchor(path)})" for path, _ in commands]
    for path, ctx in commands:
        help_text = "\n".join(line.rstrip() for line in ctx.get_help().splitlines())
        lines += ["", f"## {path}", "", "```text", help_text, "```"]
    return "\n".join(lines) + "\n"


def stale(path: Path = REFERENCE) -> str | None:
    """None when `path` holds what `render()` gives now; otherwise the one line that says what to do."""
    current = path.read_text() if path.exists() else None
    if current == render():
        return None
    state = "is missing" if current is None else "is out of date with the commands' --help"
    return f"{path} {state}; regenerate it with: {REGENERATE}"


def write(path: Path = REFERENCE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())


@click.command()
@click.option("--check", is_flag=True, help="Only compare; exit 1 when the file is stale.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=REFERENCE,
              show_default="docs/cli.md", help="File to write or check.")
def cli(check: bool, output: Path) -> None:
    """Write docs/cli.md from every command's --help.

    Example: python -m migrate.cli.reference --check
    """
    if not check:
        write(output)
        click.echo(f"wrote {output}")
        return
    problem = stale(output)
    if problem:
        click.echo(f"error: {problem}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    cli()
