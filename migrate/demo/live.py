"""Running the demo's live apps and reading the proof they leave behind.

`LiveApps` starts one producer and one consumer per group as real processes (see
`apps.py`), gives the hook commands a playbook needs to move them (see `hooks.py`), stops
them, and reads their files into a `Proof`: every event produced (acknowledged) must be
processed exactly once by each group, whichever cluster each half of its life ran on.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from migrate import shutdown
from migrate.demo import control
from migrate.waiting import wait_until


@dataclass(frozen=True)
class GroupProof:
    group: str
    processed: int
    lost: int  # produced, never processed
    twice: int  # processed more than once (extra deliveries)
    unknown: int  # processed but never produced (must be 0 too)


@dataclass(frozen=True)
class Proof:
    produced: int
    groups: tuple[GroupProof, ...]

    @property
    def exact(self) -> bool:
        return all(g.lost == 0 and g.twice == 0 and g.unknown == 0 for g in self.groups)

    @property
    def lost(self) -> int:
        return sum(g.lost for g in self.groups)

    @property
    def twice(self) -> int:
        return sum(g.twice for g in self.groups)


def _ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line]


class LiveApps:
    def __init__(self, workdir: Path, source: str, target: str, topic: str, groups: list[str],
                 rate: float = 100.0, name: str = "app"):
        self.dir = Path(workdir)
        self.control = self.dir / "control"
        self.source, self.target, self.topic = source, target, topic
        self.groups = list(groups)
        self.rate = rate
        self.name = name
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def produced_file(self) -> Path:
        return self.dir / "produced.txt"

    def processed_file(self, group: str) -> Path:
        return self.dir / f"processed-{group}.txt"

    def _start(self, app: str, role: str, out: Path, *extra: str) -> None:
        log = open(self.dir / f"{app}.log", "ab")
        self.procs[app] = subprocess.Popen(
            [sys.executable, "-m", "migrate.demo.apps", role, "--name", app, "--topic", self.topic,
             "--source", self.source, "--target", self.target, "--control", str(self.control),
             "--out", str(out), *extra],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        shutdown.adopt(self.procs[app].pid, own_group=True)
        log.close()

    def start(self, timeout: float = 60.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for role in control.ROLES:
            if not control.wish_path(self.control, role).exists():
                control.write_json(control.wish_path(self.control, role), {"cluster": "source", "seq": 0})
        for group in self.groups:
            self._start(f"{self.name}-consumer-{group}", "consumer", self.processed_file(group), "--group", group)
        self._start(f"{self.name}-producer", "producer", self.produced_file, "--rate", str(self.rate))

        def started() -> bool:
            if len(control.statuses(self.control, "consumers")) >= len(self.groups) and \
                    control.statuses(self.control, "producers"):
                return True
            self._check_alive()
            return False

        wait_until(started, timeout, 0.05, "the live apps did not start")

    def _check_alive(self) -> None:
        for app, proc in self.procs.items():
            if proc.poll() is not None:
                log = (self.dir / f"{app}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"live app {app} exited with {proc.returncode}: {log}")

    def hook(self, role: str, cluster: str) -> str:
        """A shell command that moves the apps of a role (what a playbook's exec step runs)."""
        return (f"{shlex.quote(sys.executable)} -m migrate.demo.hooks {role} {cluster} "
                f"--control {shlex.quote(str(self.control))}")

    def hook_vars(self) -> dict[str, str]:
        return {
            "stop_source_consumers": self.hook("consumers", "stopped"),
            "start_target_consumers": self.hook("consumers", "target"),
            "stop_source_producers": self.hook("producers", "stopped"),
            "start_target_producers": self.hook("producers", "target"),
            "start_source_consumers": self.hook("consumers", "source"),
            "start_source_producers": self.hook("producers", "source"),
            "stop_target_consumers": self.hook("consumers", "stopped"),
            "stop_target_producers": self.hook("producers", "stopped"),
        }

    def produced(self) -> int:
        return len(_ids(self.produced_file))

    def processed(self, group: str) -> int:
        return len(_ids(self.processed_file(group)))

    def wait_processed(self, count: int, timeout: float = 60.0) -> None:
        def all_processed() -> bool:
            if all(self.processed(g) >= count for g in self.groups):
                return True
            self._check_alive()
            return False

        wait_until(all_processed, timeout, 0.05, lambda: TimeoutError(
            f"groups did not process {count} events in {timeout:.0f}s: "
            + ", ".join(f"{g}={self.processed(g)}" for g in self.groups)))

    def stop_producers(self) -> None:
        proc = self.procs.get(f"{self.name}-producer")
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)

    def drain_and_stop(self, timeout: float = 60.0) -> Proof:
        """Stop producing, let every group process what was produced, stop, return the proof."""
        self.stop_producers()
        produced = set(_ids(self.produced_file))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(produced <= set(_ids(self.processed_file(g))) for g in self.groups):
                break
            if any(p.poll() is not None for p in self.procs.values() if "consumer" in str(p.args)):
                break
            time.sleep(0.1)
        self.stop()
        return self.proof()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def proof(self) -> Proof:
        produced = _ids(self.produced_file)
        wanted = set(produced)
        groups = []
        for group in self.groups:
            seen = Counter(_ids(self.processed_file(group)))
            groups.append(GroupProof(
                group=group, processed=sum(seen.values()),
                lost=len(wanted - set(seen)),
                twice=sum(n - 1 for n in seen.values() if n > 1),
                unknown=len(set(seen) - wanted)))
        return Proof(len(produced), tuple(groups))
