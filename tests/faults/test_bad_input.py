"""Bad input: every case in corpus/ gives one clear line, its exit code, no traceback, nothing half-written.

A case is one YAML file in corpus/:

    description: what is wrong
    files:                      # optional: files to create in the working directory first
      migrate.toml: |           #   text
        ...
      state.db: {sql: [...]}    #   an SQLite file built from these statements
      torn.db: {hex: "5351..."} #   raw bytes
    args: [validate, --source, x, ...]   # the command line after `migrate`
    exit: 2                     # the expected exit code
    stderr: 'regex'             # searched in the one `error: ` line
    creates: [path]             # optional: files the command may create (default: none)
    absent: [path]              # optional: files that must not exist afterwards

The command runs in an empty temporary directory with the default config and state paths
(./migrate.toml, ./.migrate/state.db).  Files the case created must be byte-for-byte unchanged
(a refused config or state file is never touched) and no other file may appear, except the
default state database, which a command may open before it finds the mistake: it must then be a
complete database at the current schema with no run recorded in it.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import yaml

from migrate.state import SCHEMA_VERSION, State
from support import run_cli

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))


def load_case(path: Path) -> dict:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = {"description", "args", "exit", "stderr"} - set(case)
    assert not missing, f"{path.name}: missing keys {sorted(missing)}"
    return case


def create_file(path: Path, spec) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, str):
        path.write_text(spec, encoding="utf-8")
    elif "hex" in spec:
        path.write_bytes(bytes.fromhex(spec["hex"]))
    elif "sql" in spec:
        conn = sqlite3.connect(path)
        for statement in spec["sql"]:
            conn.execute(statement)
        conn.commit()
        conn.close()
    else:
        raise AssertionError(f"unknown file spec {spec!r}")


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_fresh_empty_state(path: Path) -> None:
    """A refused command may have opened the default state (a complete, empty database), never recorded work."""
    with State(path) as state:
        assert state.version == SCHEMA_VERSION
        for table in ("mirrors", "topic_mappings", "mirror_progress", "validation_runs", "playbook_runs"):
            count = state.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert count == 0, f"a refused command recorded {count} rows in {table}"


def test_corpus_has_enough_cases():
    assert len(CASES) >= 15


@pytest.mark.slow  # the migrate CLI in a child process
@pytest.mark.parametrize("case_path", CASES, ids=[p.stem for p in CASES])
def test_bad_input(case_path: Path, tmp_path: Path):
    case = load_case(case_path)
    for name, spec in (case.get("files") or {}).items():
        create_file(tmp_path / name, spec)
    before = snapshot(tmp_path)

    result = run_cli(*[str(a) for a in case["args"]], cwd=tmp_path, timeout=60,
                     env={"MIGRATE_CONFIG": "migrate.toml", "MIGRATE_STATE": ".migrate/state.db"})

    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == case["exit"], f"{case['description']}: exit {result.returncode}\n{result.stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one 'error: ' line:\n{result.stderr}"
    assert re.search(case["stderr"], lines[0]), f"expected /{case['stderr']}/ in:\n{lines[0]}"
    after = snapshot(tmp_path)
    for name, content in before.items():
        assert after.get(name) == content, f"{name} was changed by a refused command"
    created = set(after) - set(before) - set(case.get("creates") or [])
    fresh_state = {name for name in created if name.startswith(".migrate/state.db")}
    assert created == fresh_state, f"files written by a refused command: {sorted(created - fresh_state)}"
    if fresh_state:
        assert_fresh_empty_state(tmp_path / ".migrate/state.db")
    for name in case.get("absent") or []:
        assert not (tmp_path / name).exists(), f"{name} exists"
