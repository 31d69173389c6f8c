"""Packaging: our folders install under `migrate.*`, the entry point works, every command documents itself."""

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


def test_validators_is_the_pypi_package_and_ours_lives_under_migrate(tmp_path):
    code = (
        "import json, validators, migrate.validators, migrate.offset_maps, migrate.playbooks\n"
        "print(json.dumps({'pypi': validators.__file__, 'email': hasattr(validators, 'email'),\n"
        "                  'ours': migrate.validators.__file__, 'maps': migrate.offset_maps.__file__,\n"
        "                  'playbooks': migrate.playbooks.__file__}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["email"] is True
    assert REPO not in Path(found["pypi"]).resolve().parents
    assert Path(found["ours"]).resolve() == REPO / "validators" / "__init__.py"
    assert Path(found["maps"]).resolve() == REPO / "offset_maps" / "__init__.py"
    assert Path(found["playbooks"]).resolve() == REPO / "playbooks" / "__init__.py"


def test_the_test_process_sees_the_pypi_validators_too():
    # `pytest` (not `python -m pytest`) keeps the repo root off sys.path, so this is PyPI's.
    import validators

    assert hasattr(validators, "email") and REPO not in Path(validators.__file__).resolve().parents


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
