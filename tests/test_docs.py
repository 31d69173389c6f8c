"""The documentation stays true to the code and to itself: no broker, no child process.

- docs/cli.md is what `python -m migrate.cli.reference` writes from the commands' `--help` now;
- every relative link in README.md, docs/*.md and benchmarks/RESULTS.md reaches a file, and its
  `#anchor` a heading of that file (GitHub's anchor rules);
- the README stays a front page: at most 250 lines, its Quick start the install-and-demo command
  and the test command CI runs (.ci/run), and every `migrate` command it shows parses.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from migrate.cli import main, reference

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "RESULTS.md"]
INSTALL_AND_DEMO = "python -m pip install -e '.[test]' && migrate demo"

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation other than hyphens and spaces dropped,
    spaces to hyphens (underscores are word characters and stay)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", text, flags=re.M):
        name, n = anchor(heading), 1
        while name in found:  # a repeated heading gets -1, -2, ...
            name, n = f"{anchor(heading)}-{n}", n + 1
        found.add(name)
    return found


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    return [link for link in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", link)]


def test_the_cli_reference_is_what_the_commands_print_now():
    assert reference.stale() is None, reference.stale()


def test_the_cli_reference_has_a_section_for_every_command():
    text = reference.REFERENCE.read_text()
    paths = {path for path, _ in reference.walk(main, click.Context(main, info_name="migrate"))}
    assert {"migrate mirror status", "migrate offsets sync", "migrate playbook rehearse", "migrate assess",
            "migrate probe diff", "migrate validate history", "migrate local seed", "migrate demo"} <= paths
    assert {h for h in re.findall(r"^## (.+)$", text, flags=re.M)} == paths


def test_a_stale_cli_reference_is_named_with_the_command_that_regenerates_it(tmp_path):
    stale = tmp_path / "cli.md"
    stale.write_text(reference.render().replace("--until-caught-up", "--until-done"))
    problem = reference.stale(stale)
    assert problem == f"{stale} is out of date with the commands' --help; regenerate it with: {reference.REGENERATE}"
    assert reference.stale(tmp_path / "missing.md").endswith(f"is missing; regenerate it with: {reference.REGENERATE}")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_resolves_to_a_file_and_a_heading(page):
    broken = []
    for link in relative_links(page):
        target, _, fragment = link.partition("#")
        file = (page.parent / target).resolve() if target else page
        if not file.exists():
            broken.append(f"{link}: no file {file}")
        elif fragment and (file.suffix != ".md" or fragment not in anchors(file)):
            broken.append(f"{link}: no heading #{fragment} in {file.relative_to(REPO)}")
    assert not broken, "\n".join(broken)


def test_the_link_check_sees_links_and_anchors_as_github_does():
    assert anchor("Performance (`python benchmarks/mirror.py`)") == "performance-python-benchmarksmirrorpy"
    assert anchor("2026-12-07 Dual running: live latency (issue 24)") == "2026-12-07-dual-running-live-latency-issue-24"
    assert anchor("How it is proven (`tests/test_cutover.py`, noida-db -> Tansu)") == \
        "how-it-is-proven-teststest_cutoverpy-noida-db---tansu"
    page = "[a](docs/a.md) [b](b.md#x) `[c](not-a-link.md)` [web](https://example.com) ![img](i.png)\n"
    assert LINK.findall(re.sub(r"`[^`\n]*`", "", page)) == ["docs/a.md", "b.md#x", "https://example.com"]


def test_the_readme_is_a_front_page_with_the_quick_start_unchanged():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    quick_start = text[text.index("\n## Quick start\n"):text.index("\n## ", text.index("\n## Quick start\n") + 1)]
    ci_command = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command == "bash tests/system_deps.sh && ruff check && mypy && pytest -q -n 2 --dist loadfile"
    assert f"```sh\n{INSTALL_AND_DEMO}\n{ci_command}\n```" in quick_start


def test_every_docs_page_is_in_the_readme_index():
    linked = set(relative_links(README))
    assert {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")} | {"benchmarks/RESULTS.md"} <= linked


def readme_commands() -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [re.sub(r"\s+#.*$", "", line) for line in lines if line.startswith("migrate ")]


@pytest.mark.parametrize("line", readme_commands())
def test_every_migrate_command_in_the_readme_parses(line):
    """Names a real command and only options it has (parsed by click, nothing run)."""
    args = shlex.split(line)[1:]
    command: click.Command = main
    ctx = click.Context(main, info_name="migrate")
    while isinstance(command, click.Group) and args and args[0] in command.commands:
        name, args = args[0], args[1:]
        command = command.commands[name]
        ctx = click.Context(command, info_name=name, parent=ctx)
    parsed = command.make_context(ctx.info_name, args, parent=ctx.parent)
    assert not parsed.args, f"{line}: unexpected arguments {parsed.args}"
