"""Packaging: our folders import as `migrate.*` (installed or not), the entry point works, every command documents itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from migrate.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # a Python child process
@pytest.mark.parametrize("where", ["outside", "repo-root"])
def test_our_folders_are_imported_under_migrate_wherever_python_starts(tmp_path, where):
    """Installed, and from the repository root (as `python -m pytest` and type checkers see it)."""
    code = (
        "import json, migrate.validators, migrate.offset_maps, migrate.playbooks\n"
        "print(json.dumps({'ours': migrate.validators.__file__, 'maps': migrate.offset_maps.__file__,\n"
        "                  'playbooks': migrate.playbooks.__file__}))\n"
    )
    cwd = REPO if where == "repo-root" else tmp_path
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["ours"]).resolve() == REPO / "validators" / "__init__.py"
    assert Path(found["maps"]).resolve() == REPO / "offset_maps" / "__init__.py"
    assert Path(found["playbooks"]).resolve() == REPO / "playbooks" / "__init__.py"


@pytest.mark.slow  # a pytest child process
def test_python_dash_m_pytest_collects_from_the_repository_root():
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             "tests/test_validators_unit.py", "tests/test_offset_translate.py"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert "tests collected" in summary and "error" not in summary, summary


@pytest.mark.slow  # the installed console script
def test_the_console_script_reports_the_version(tmp_path):
    script = shutil.which("migrate") or str(Path(sys.executable).parent / "migrate")
    result = subprocess.run([script, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "migrate, version 0.1.0\n"


def _walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], path + (name,))


COMMANDS = list(_walk(main))


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "migrate" for p, _ in COMMANDS])
def test_every_command_has_help_with_an_example(path, command):
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="migrate")
    assert result.exit_code == 0, result.output
    assert f"Usage: migrate {' '.join(path)}".rstrip() in result.output
    doc = command.help or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    assert summary, f"`migrate {' '.join(path)}` has no docstring"
    examples = [line.strip() for line in doc.splitlines() if line.strip().startswith("Example:")]
    assert examples and examples[0].startswith("Example: migrate"), f"`migrate {' '.join(path)}` has no Example:"


def test_the_local_commands_are_all_there():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"local", "local up", "local status", "local down", "local seed"} <= names
