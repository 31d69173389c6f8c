"""Cutover and rollback end to end on real brokers, with live producers and consumers.

The proof is the apps' own files: every event the producer had acknowledged must be
processed exactly once by each consumer group, across both clusters (see migrate.demo.live).
Source is noida-db (the faithful Kafka), target is Tansu (the Kafka-compatible platform).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import kafka
from migrate.demo.live import LiveApps
from migrate.playbooks import processes
from migrate.state import State
from support import run_cli, unique, wait_until


class Estate:
    """Two clusters as profiles `source` and `target`, a live topic, its groups and apps."""

    def __init__(self, tmp_path: Path, source, target, rate: float = 150.0):
        self.tmp = tmp_path
        self.source, self.target = source, target
        self.config = tmp_path / "migrate.toml"
        self.config.write_text(f'[clusters.source]\n"bootstrap.servers" = "{source.bootstrap}"\n\n'
                               f'[clusters.target]\n"bootstrap.servers" = "{target.bootstrap}"\n')
        self.state_path = tmp_path / "state.db"
        self.topic = unique("live")
        self.groups = [unique("engine"), unique("audit")]
        self.mirror = unique("fwd")
        self.reverse = unique("back")
        kafka.create_topic(source.profile, self.topic, 3)
        kafka.wait_for_topic(source.profile, self.topic, 3)
        self.apps = LiveApps(tmp_path / "apps", source.bootstrap, target.bootstrap, self.topic, self.groups,
                             rate=rate)

    def vars(self, playbook: str = "cutover", **extra: str) -> list[str]:
        values = {"groups": ",".join(self.groups), "mirror": self.mirror, "reverse_mirror": self.reverse}
        if playbook == "cutover":
            values["topics"] = re.escape(self.topic)
        hooks = self.apps.hook_vars()
        names = (["stop_source_consumers", "start_target_consumers", "stop_source_producers",
                  "start_target_producers", "start_source_consumers", "start_source_producers"]
                 if playbook == "cutover" else
                 ["stop_target_consumers", "start_source_consumers", "stop_target_producers",
                  "start_source_producers"])
        values.update({n: hooks[n] for n in names})
        values.update(extra)
        out = []
        for key, value in values.items():
            out += ["--var", f"{key}={value}"]
        return out

    def env(self) -> dict[str, str]:
        return {"MIGRATE_STATE": str(self.state_path), "MIGRATE_CONFIG": str(self.config)}

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_cli(*args, env=self.env(), cwd=self.tmp, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen:
        import os

        return subprocess.Popen([sys.executable, "-m", "migrate", *args], env={**os.environ, **self.env()},
                                cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def close(self) -> None:
        self.apps.stop()
        if self.state_path.exists():
            state = State(self.state_path)
            for (key,) in state.db.execute("SELECT key FROM playbook_processes").fetchall():
                processes.stop(state, key, grace=10)
            state.close()


@pytest.fixture
def estate(tmp_path, source_cluster, target_cluster):
    made = Estate(tmp_path, source_cluster, target_cluster)
    yield made
    made.close()


def _ok(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


def _assert_exact(proof) -> None:
    assert proof.produced > 0
    for group in proof.groups:
        assert (group.lost, group.twice, group.unknown) == (0, 0, 0), (proof, group)


def test_cutover_with_live_apps_processes_every_event_exactly_once(estate):
    estate.apps.start()
    estate.apps.wait_processed(50)
    outcome = _ok(estate.cli("playbook", "run", "cutover", "--yes", *estate.vars(), "--format", "json"))
    assert outcome["status"] == "succeeded"
    assert outcome["downtime_s"] is not None
    before = estate.apps.produced()
    estate.apps.wait_processed(before + 100)  # the apps now live on the target
    proof = estate.apps.drain_and_stop()
    _assert_exact(proof)
    produced_on_target = before  # events after the move were produced on the target
    assert proof.produced > produced_on_target
