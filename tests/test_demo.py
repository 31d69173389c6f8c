"""`migrate demo`, the README's first command (docs/demo.md), end to end on its own local clusters."""

from __future__ import annotations

import json
import re

import pytest

from migrate.config import ClusterProfile
from support import kafka_python_read, run_cli

SEEDED = ("workflow.events", "agent.decisions", "tool.calls", "tool.results", "approvals", "workflow.state", "audit.log")


@pytest.mark.slow
def test_demo_proves_exactly_once_across_the_cutover(tmp_path):
    env = {"MIGRATE_STATE": str(tmp_path / ".migrate" / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml")}
    try:
        result = run_cli("demo", "--rate", "30", "--format", "json", "--keep-clusters", env={**env, "COLUMNS": "80"},
                         cwd=tmp_path, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        summary = json.loads(result.stdout)
        # before mirroring, a short assessment of the seeded estate: counted, committed and aborted apart
        assessment = result.stderr[result.stderr.index("assessment of the estate"):result.stderr.index("starting the mirror")]
        assert re.search(r"7 topics, 21 partitions, 2,874 committed records \(\+20 aborted, not copied\)",
                         re.sub(r"\s+", " ", assessment))
        assert re.search(r"transactional: demo\w+\.tool\.results, demo\w+\.workflow\.state compacted",
                         re.sub(r"\s+\[\s*[\d.]+s\]\s+|\s+", " ", assessment))
        assert max(len(line) for line in result.stderr.splitlines()) <= 80  # COLUMNS=80
        assert re.search(r"decision-\s*auditor \(lag [1-9]\d*\)", assessment)
        proof = summary["proof"]
        assert proof["produced"] > 0
        for group in proof["groups"]:
            assert group["processed"] == proof["produced"]
            assert (group["lost"], group["twice"], group["unknown"]) == (0, 0, 0)
        assert summary["rehearsal"].startswith("PASSED")
        assert summary["cutover"].startswith("succeeded")
        assert summary["parity"].endswith("PARITY")
        assert summary["groups_translated"] == 6  # 4 seeded groups with commits + 2 live ones
        assert summary["downtime_s"] > 0
        # the figures add up, and agree with kafka-python's count on the source (kept running for it)
        source = ClusterProfile("demo-source", {"bootstrap.servers": re.search(r"at (\S+)$", summary["source"]).group(1)})
        prefix = summary["prefix"]
        seeded = sum(len(records) for name in SEEDED for records in kafka_python_read(source, prefix + name).values())
        # live events produced on the source (the reverse mirror also copies the target's back there)
        live = sum(1 for records in kafka_python_read(source, prefix + "workflow.live").values()
                   for record in records if json.loads(record.value)["produced_on"] == "source")
        assert (summary["seeded_records"], summary["seeded_aborted"]) == (seeded, 20) == (2874, 20)
        assert (summary["mirrored_seeded"], summary["mirrored_live"], summary["live_on_source"]) == (seeded, live, live)
        assert summary["events_mirrored"] == seeded + live
        assert summary["live_on_source"] + summary["produced_on_target"] == proof["produced"]
        assert 0 < live < proof["produced"]  # some events were produced on each side of the cutover
        # the mirror's own /metrics, read just before the cutover stopped it: drained, exactly; no URL kept
        assert summary["final_lag"] == 0 and "metrics_url" not in summary
        history = run_cli("playbook", "history", "--format", "json", env=env, cwd=tmp_path)
        modes = sorted((r["playbook"], r["mode"], r["status"]) for r in json.loads(history.stdout))
        assert modes == [("cutover", "rehearsal", "succeeded"), ("cutover", "run", "succeeded"),
                         ("rollback", "rehearsal", "succeeded")]
    finally:
        run_cli("local", "down", "--wipe", env=env, cwd=tmp_path)


@pytest.mark.slow  # the migrate CLI in a child process
def test_playbook_and_demo_commands_have_help_with_an_example():
    for args in (["demo"], ["playbook"], ["playbook", "plan"], ["playbook", "run"], ["playbook", "resume"],
                 ["playbook", "rehearse"], ["playbook", "history"]):
        result = run_cli(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert "Example: migrate " in result.stdout, args
