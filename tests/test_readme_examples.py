"""The examples of the docs pages, run exactly as printed, so an example that misleads cannot come back.

The `sh` blocks of docs/validation.md, docs/offsets.md and docs/playbooks.md are extracted;
every line starting with `migrate ` is run by a shell on two local clusters of this test's own (noida-db `source`, Tansu `target`; `a` and `b` are the same two, for the
key-mode example), after seeding the estate and running the first example of docs/mirroring.md.
Each must exit 0.  Lines that need what a test cannot have are skipped, each with its
reason below, and the test fails when a skipped line is no longer in the docs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import run_cli

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ("validation.md", "offsets.md", "playbooks.md")
MIRRORING = "mirroring.md"

SKIPPED = {
    "migrate playbook rehearse cutover --with-rollback --vars-file vars.yaml":
        "its hooks are kubectl commands for your deployments (tests/test_cutover.py rehearses with live apps)",
    "migrate playbook run cutover --vars-file vars.yaml":
        "its hooks are kubectl commands for your deployments (tests/test_cutover.py runs cutovers with live apps)",
    "migrate playbook resume 20261127-051500-ab12": "needs an interrupted run with that id",
    "migrate playbook cleanup 20261127-051500-ab12": "needs a killed rehearsal with that id",
}


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    """The `migrate ...` lines of a block, continuation lines joined, trailing comments kept."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.startswith("migrate ")]


def without_comment(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line)


def examples(page: str) -> list[str]:
    """The `migrate` lines of every `sh` block of docs/<page>, in order."""
    return [c for b in blocks((DOCS / page).read_text(), "sh") for c in commands(b)]


@pytest.fixture
def estate(tmp_path, private_cluster):
    source, target = private_cluster("noida", "source"), private_cluster("tansu", "target")
    profiles = "".join(f'[clusters.{name}]\n"bootstrap.servers" = "{cluster.bootstrap}"\n\n'
                       for name, cluster in (("source", source), ("target", target), ("a", source), ("b", target)))
    (tmp_path / "migrate.toml").write_text(profiles)
    env = {"MIGRATE_CONFIG": str(tmp_path / "migrate.toml"), "MIGRATE_STATE": str(tmp_path / "state.db")}
    seeded = run_cli("local", "seed", "--cluster", "source", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    mirror = examples(MIRRORING)[0]
    assert mirror.startswith("migrate mirror --source source --target target ") and "--until-caught-up" in mirror
    done = shell(mirror, tmp_path, env)
    assert done.returncode == 0, done.stderr
    return tmp_path, env


def shell(line: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    # `migrate` on PATH is this interpreter's entry point
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(["bash", "-c", line], cwd=cwd, env={**os.environ, **env, "PATH": path},
                          capture_output=True, text=True, timeout=300)


def test_skipped_lines_are_still_in_the_docs():
    printed = {without_comment(c) for page in PAGES for c in examples(page)}
    assert set(SKIPPED) <= printed, set(SKIPPED) - printed


def test_docs_examples_run_as_printed(estate):
    tmp, env = estate
    playbooks = (DOCS / "playbooks.md").read_text()
    after = playbooks[playbooks.index("`vars.yaml`, one set of variables"):]
    (tmp / "vars.yaml").write_text(blocks(after, "yaml")[0])
    ran = {}
    for page in PAGES:
        lines = [c for c in examples(page) if without_comment(c) not in SKIPPED]
        assert lines, f"no runnable example left in docs/{page}"
        for line in lines:
            done = shell(line, tmp, env)
            assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            assert "Traceback" not in done.stderr
            ran[without_comment(line)] = done.stdout
    first = ran["migrate validate --source source --target target"]
    assert re.search(r": \d+ records compared in [\d.]+s: PARITY", first) and "mirror default" in first
    assert (tmp / "parity.html").exists()
    sync = ran["migrate offsets sync --all-groups"]
    assert "not mirrored" in sync  # the estate's groups on topics the example mirror does not copy
