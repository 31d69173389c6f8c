"""`migrate local up|status|down` through the real CLI, in a private directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from migrate import kafka
from migrate.config import load_config, resolve_cluster
from migrate.local import platforms
from migrate.state import State
from support import kafka_python_read, run_cli, unique, wait_until


class LocalCli:
    """Runs `migrate` with its config and state in a tmp dir; stops whatever it started."""

    def __init__(self, base: Path):
        self.base = base
        self.state_path = base / ".migrate" / "state.db"
        self.config_path = base / "migrate.toml"

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        result = run_cli(*args, cwd=self.base, timeout=120,
                         env={"MIGRATE_STATE": str(self.state_path), "MIGRATE_CONFIG": str(self.config_path)})
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    def json(self, *args: str) -> dict[str, dict]:
        return {row["name"]: row for row in json.loads(self(*args, "--format", "json").stdout)}

    def profile(self, name: str):
        return resolve_cluster(name, load_config(self.config_path))

    def rows(self) -> list[dict]:
        with State(self.state_path) as state:
            return list(state.db.query("SELECT * FROM local_clusters ORDER BY name"))

    def cleanup(self) -> None:
        if not self.state_path.exists():
            return
        self("local", "down", ok=False)
        for row in self.rows():  # in case `down` itself failed
            if row["pid"]:
                platforms.stop_broker(row["pid"], row["port"])


@pytest.fixture
def local(tmp_path):
    runner = LocalCli(tmp_path)
    yield runner
    runner.cleanup()


@pytest.mark.slow  # the migrate CLI in a child process
def test_up_status_down(local):
    started = local.json("local", "up")
    assert {n: r["platform"] for n, r in started.items()} == {"source": "noida", "target": "tansu"}
    for row in started.values():
        assert row["running"] and platforms.is_our_broker(row["pid"], int(row["bootstrap"].rsplit(":", 1)[1]))
        assert local.profile(row["name"]).bootstrap == row["bootstrap"]
    assert {r["name"]: r["pid"] for r in local.rows()} == {n: r["pid"] for n, r in started.items()}

    again = local.json("local", "up")
    assert {n: r["pid"] for n, r in again.items()} == {n: r["pid"] for n, r in started.items()}, "no duplicates"

    status = local.json("local", "status")
    assert {n: (r["running"], r["pid"]) for n, r in status.items()} == {n: (True, r["pid"]) for n, r in started.items()}
    assert "source" in local("local", "status").stdout  # the table form too

    stopped = local.json("local", "down")
    assert all(r["pid"] is None and not r["running"] for r in stopped.values())
    for row in started.values():
        wait_until(lambda: not platforms.pid_alive(row["pid"]), timeout=15, message=f"pid {row['pid']} gone")
    status = local.json("local", "status")
    assert {n: r["running"] for n, r in status.items()} == {"source": False, "target": False}


@pytest.mark.slow  # the migrate CLI in a child process
def test_noida_keeps_data_across_down_and_up_and_wipe_removes_it(local):
    first = local.json("local", "up", "source=noida")["source"]
    profile = local.profile("source")
    topic = unique("persist")
    kafka.create_topic(profile, topic, 1)
    kafka.wait_for_topic(profile, topic, 1)
    producer = kafka.producer(profile)
    producer.produce(topic, key=b"k", value=b"kept across restarts", headers=[("h", b"1")])
    assert producer.flush(30) == 0

    local("local", "down", "source")
    again = local.json("local", "up", "source")["source"]
    assert again["pid"] != first["pid"] and again["platform"] == "noida"
    records = kafka_python_read(local.profile("source"), topic)[0]
    assert [(r.key, r.value, r.headers) for r in records] == [(b"k", b"kept across restarts", [("h", b"1")])]

    data_dir = Path(local.rows()[0]["data_dir"])
    assert data_dir.is_dir()
    local("local", "down", "--wipe")
    assert not data_dir.exists()
    assert local.rows() == []
    assert local.json("local", "status") == {}

    local("local", "up", "source=noida")
    assert topic not in kafka.list_topics(local.profile("source"))


@pytest.mark.slow  # the migrate CLI in a child process
def test_down_never_stops_a_process_that_is_not_our_broker(local):
    local("local", "status")  # creates the state
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        with State(local.state_path) as state:
            state.db["local_clusters"].insert({
                "name": "ghost", "platform": "tansu", "bootstrap": "127.0.0.1:1", "port": 1,
                "pid": stranger.pid, "data_dir": None, "log_path": None, "started_at": "2026-11-20T00:00:00+00:00"})
        assert local.json("local", "status")["ghost"]["running"] is False
        down = local.json("local", "down", "ghost")
        assert down["ghost"]["pid"] is None
        assert stranger.poll() is None and platforms.pid_alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.slow  # the migrate CLI in a child process
def test_down_of_an_unknown_name_is_one_line(local):
    local("local", "status")
    result = local("local", "down", "nope", ok=False)
    assert result.returncode == 2
    assert result.stderr == "error: no local cluster named nope; see: migrate local status\n"


@pytest.mark.slow  # the migrate CLI in a child process
def test_up_refuses_to_change_a_clusters_platform(local):
    local("local", "up", "source=tansu")
    result = local("local", "up", "source=noida", ok=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert 'already exists on tansu' in result.stderr and "--wipe" in result.stderr
