"""Helpers for tests/test_apps.py: real applications written with other clients, run as child processes.

The applications live in tests/apps/ with their own pinned dependencies, installed by
tests/apps/install.sh (which tests/system_deps.sh runs): kafkajs under tests/apps/node/node_modules,
Quix Streams in its own virtualenv tests/apps/quix/.venv (it pins confluent-kafka below the version
this project uses, so it cannot share our environment). aiokafka is one of our test extras.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import kafka
from support import run_cli, wait_until

APPS = Path(__file__).parent / "apps"
NODE_DIR = APPS / "node"
QUIX_PYTHON = APPS / "quix" / ".venv" / "bin" / "python"
INSTALL_HINT = "run `bash tests/system_deps.sh` (it installs the test applications' pinned clients)"


def session_timeout_ms(platform: str) -> int:
    # Tansu joins a group in about session.timeout/2; noida-db, like Kafka, refuses sessions under 6 s
    return 2000 if platform == "tansu" else 6000


def node() -> str:
    found = shutil.which("node")
    if not found or not (NODE_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"kafkajs is not installed under {NODE_DIR}: {INSTALL_HINT}", pytrace=False)
    return found


def quix_python() -> str:
    if not QUIX_PYTHON.exists():
        pytest.fail(f"Quix Streams' virtualenv {QUIX_PYTHON.parent.parent} is missing: {INSTALL_HINT}", pytrace=False)
    return str(QUIX_PYTHON)


class App:
    """One application process: its stdout lines are JSON events, its stderr goes to a file."""

    def __init__(self, argv: list[str], log: Path, cwd: Path | None = None, env: dict | None = None):
        self.log = log
        self._err = open(log, "w")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, start_new_session=True,
                                     env={**os.environ, **(env or {})})

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (the application finishes its current record and leaves its group), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.proc.args[:2]} did not end within {timeout}s; see {self.log}:\n"
                                 + self.log.read_text()[-3000:]) from None
        finally:
            self._err.close()

    def events(self) -> list[dict]:
        out = self.proc.stdout.read() if self.proc.stdout else ""
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run_app(argv: list[str], log: Path, timeout: float = 60, **kwargs) -> list[dict]:
    """Run an application to its end; its JSON events (an exit code other than 0 fails the test)."""
    app = App(argv, log, **kwargs)
    code = app.wait(timeout)
    events = app.events()
    assert code == 0, f"{argv[:2]} exited {code}: {events}\n{log.read_text()[-3000:]}"
    return events


def node_app(script: str, log: Path, timeout: float = 60, **config) -> list[dict]:
    return run_app([node(), script, json.dumps(config)], log, timeout, cwd=NODE_DIR)


def node_process(script: str, log: Path, **config) -> App:
    return App([node(), script, json.dumps(config)], log, cwd=NODE_DIR)


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_lines(path: Path, count: int, app: App, timeout: float = 60) -> None:
    """Until `path` holds `count` lines; fails at once when the application has died."""
    def done() -> bool:
        if app.proc.poll() is not None:
            raise AssertionError(f"the application exited {app.proc.returncode} early: {app.events()}\n"
                                 + app.log.read_text()[-3000:])
        return len(json_lines(path)) >= count
    wait_until(done, timeout=timeout, interval=0.05, message=f"{count} records processed into {path.name}")


class Move:
    """The user's side of a move, through the CLI as docs/applications.md tells it: mirror, then sync the groups."""

    def __init__(self, tmp_path: Path, source, target):
        self.source, self.target = source, target
        self.env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "none.toml")}

    def mirror(self, *topics: str, extra: tuple[str, ...] = ()) -> str:
        args = ["mirror", "--source", self.source.bootstrap, "--target", self.target.bootstrap]
        for topic in topics:
            args += ["--topics", topic]
        out = run_cli(*args, "--until-caught-up", "--session-timeout-ms", "6000", *extra, env=self.env, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def sync(self, *groups: str) -> str:
        args = ["offsets", "sync"]
        for group in groups:
            args += ["--group", group]
        out = run_cli(*args, env=self.env, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout


def make_topic(profile, topic: str, partitions: int, configs: dict | None = None) -> None:
    kafka.create_topic(profile, topic, partitions, configs or {})
    kafka.wait_for_topic(profile, topic, partitions)


PYTHON = sys.executable


QUIX_APP = APPS / "quix" / "counter.py"


def quix_process(cluster, log: Path, **cfg) -> App:
    """tests/apps/quix/counter.py on `cluster`, in Quix Streams' own virtualenv."""
    config = {"brokers": cluster.bootstrap, "session_timeout_ms": session_timeout_ms(cluster.platform), **cfg}
    return App([quix_python(), str(QUIX_APP), json.dumps(config)], log)


def wait_committed(cluster, group: str, offsets: dict, app: App, timeout: float = 60) -> None:
    """Until the group's committed offsets are `offsets`; fails at once when the application has died."""
    from migrate import groups as kgroups

    def done() -> bool:
        if app.proc.poll() is not None:
            raise AssertionError(f"the application exited {app.proc.returncode} early: {app.events()}\n"
                                 + app.log.read_text()[-3000:])
        return kgroups.committed(cluster.profile, [group])[group] == offsets
    wait_until(done, timeout=timeout, interval=0.2, message=f"group {group} to commit {offsets}")
