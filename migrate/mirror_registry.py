"""Which mirrors the state database knows, and which one a command means when none is named.

Commands that work on a mirror (`mirror status`, `validate`, `offsets`) accept `--name`.
Without it they use the only mirror the state knows; with none or several they stop with
one line naming the mirrors that exist, never guessing (a guess led `validate` to compare
topics that were never mirrored).  Rehearsal shadow mirrors (`<name>.rh-<id>`) are listed but
never chosen by default.  Among several, the one named like `migrate mirror`'s default
name (`default`) is the one a user who never passed --name made.
"""

from __future__ import annotations

from migrate.errors import UsageError
from migrate.state import State

SHADOW_MARK = ".rh-"
DEFAULT_NAME = "default"  # what `migrate mirror` calls a mirror when --name is not given


def recorded_mirrors(state: State) -> list[str]:
    """Every mirror name the state has a record, a mapping or progress for, sorted."""
    names: set[str] = set()
    for sql in ("SELECT name FROM mirrors", "SELECT DISTINCT mirror FROM topic_mappings",
                "SELECT DISTINCT mirror FROM mirror_progress"):
        names.update(row[0] for row in state.db.execute(sql).fetchall())
    return sorted(names)


def known_text(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def choose_mirror(state: State, name: str | None) -> str:
    """`name` when given and recorded; the only production mirror when not given; else UsageError."""
    names = recorded_mirrors(state)
    if name is not None:
        if name not in names:
            raise UsageError(f'no mirror named "{name}" in {state.path} (mirrors: {known_text(names)}); '
                             f"run migrate mirror --name {name} first, or pass one of those")
        return name
    production = [n for n in names if SHADOW_MARK not in n]
    if len(production) == 1:
        return production[0]
    if DEFAULT_NAME in production:
        return DEFAULT_NAME
    if not production:
        raise UsageError(f"no mirror is recorded in {state.path}; run migrate mirror first, or pass --name")
    raise UsageError(f"several mirrors are recorded ({known_text(production)}); pass --name with one of them")
