"""Bounded shutdown: SIGTERM ends every long-running command within its stop grace, whatever the brokers do.

Each test makes a cluster unusable (SIGSTOP: the broker holds its connections and answers
nothing, the hardest case, since librdkafka waits on it), sends SIGTERM, and checks that the
process is gone within the grace plus a margin, says why in one line, and leaves no process
of its own behind.  The margin is generous: without the guarantee these processes ran for
hours (measured), so the bound proves the behaviour, not a speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fault_support import StreamTail, wait_for
from migrate.offset_maps.store import MapStore
from migrate.state import State
from mirror_support import make_topic, mirror_once, produce_workload, read_contents
from support import unique

GRACE = 5
MARGIN = 25  # on top of the grace; the stop itself takes at most GRACE


def start_cli(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, MIGRATE_STATE=str(tmp_path / "state.db"), MIGRATE_CONFIG=str(tmp_path / "migrate.toml"))
    return subprocess.Popen([sys.executable, "-m", "migrate", "--stop-grace", str(GRACE), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=cwd or tmp_path, start_new_session=True)


def frozen(cluster):
    """SIGSTOP a broker process (undone by thaw)."""
    pid = cluster.broker.pid if hasattr(cluster, "broker") else cluster.process.pid
    os.kill(pid, signal.SIGSTOP)
    return pid


def thaw(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def stop_and_measure(proc: subprocess.Popen, err: StreamTail) -> tuple[float, int]:
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(GRACE + MARGIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"still running {GRACE + MARGIN}s after SIGTERM\n{err.text()[-3000:]}")
    err.join()
    return time.monotonic() - sent, proc.returncode


def assert_one_line_reason(err: StreamTail) -> str:
    lines = [line for line in err.lines if line.strip()]
    assert lines, "no reason given"
    last = lines[-1]
    assert last == "interrupted" or last.startswith("error: stopping now: ") or last.startswith("mirror "), last
    assert "Traceback" not in err.text(), err.text()[-3000:]
    return last


def connected_to(pid: int, port: int) -> bool:
    """The process holds an established TCP connection to 127.0.0.1:port (read from /proc)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    sockets = {link[len("socket:["):-1] for link in inodes if link.startswith("socket:[")}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in sockets:
                return True
    return False


def assert_no_process_left(proc: subprocess.Popen) -> None:
    """The command ran in its own process group: nothing of it may remain."""
    def gone() -> bool:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, 10, f"process group {proc.pid} to be empty")


def test_mirror_with_a_frozen_target_stops_within_the_grace_and_a_restart_is_exact(source_cluster, private_cluster,
                                                                                  tmp_path):
    target = private_cluster("tansu")
    topic, name = unique("grace"), unique("m")
    make_topic(source_cluster.profile, topic, 2)
    produce_workload(source_cluster.profile, topic, 400, partitions=2)
    proc = start_cli(tmp_path, "mirror", "--source", source_cluster.bootstrap, "--target", target.bootstrap,
                     "--topics", topic, "--name", name, "--follow", "--session-timeout-ms", "6000",
                     # an explicit id (the default one is derived from the state file: tests/faults/test_restarts.py)
                     "--worker-id", "grace-worker")
    err = StreamTail(proc.stderr)
    pid = None
    try:
        def mirrored() -> int:
            with State(tmp_path / "state.db") as state:
                return sum(r["source_high"] or 0 for r in MapStore(state, name).progress())
        wait_for(lambda: mirrored() >= 400, 60, "the first copy", err)
        pid = frozen(target)
        produce_workload(source_cluster.profile, topic, 200, partitions=2, seed=3)  # open transactions now hang
        time.sleep(1.5)
        took, code = stop_and_measure(proc, err)
    finally:
        if pid:
            thaw(pid)
        proc.kill()
    assert took < GRACE + MARGIN
    last = assert_one_line_reason(err)
    assert code != 0 or last.startswith("mirror "), (code, last)
    assert_no_process_left(proc)

    again = mirror_once(tmp_path / "state.db", source_cluster.profile, target.profile, [topic], name=name,
                        worker_id="grace-worker")
    assert again.ok and again.caught_up
    assert read_contents(target.profile, topic) == read_contents(source_cluster.profile, topic)


@pytest.fixture
def mirrored_then_frozen(source_cluster, private_cluster, tmp_path):
    """A mirror's state and map exist; then its target freezes."""
    target = private_cluster("tansu")
    topic, name = unique("frozen"), unique("m")
    make_topic(source_cluster.profile, topic, 1)
    produce_workload(source_cluster.profile, topic, 50, partitions=1)
    assert mirror_once(tmp_path / "state.db", source_cluster.profile, target.profile, [topic], name=name).ok
    group = unique("g")
    commit_group(source_cluster.profile, group, topic, 20)  # something to translate and sync
    pid = frozen(target)
    yield source_cluster, target, topic, name, group
    thaw(pid)


def commit_group(profile, group: str, topic: str, offset: int) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": profile.bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


@pytest.mark.parametrize("command", ["validate", "offsets-sync", "offsets-translate", "probe"])
def test_batch_commands_against_a_frozen_cluster_stop_within_the_grace(mirrored_then_frozen, tmp_path, command):
    source, target, topic, name, group = mirrored_then_frozen
    args = {
        "validate": ["validate", "--source", source.bootstrap, "--target", target.bootstrap, "--name", name],
        "offsets-sync": ["offsets", "sync", "--source", source.bootstrap, "--target", target.bootstrap,
                         "--name", name, "--group", group],
        "offsets-translate": ["offsets", "translate", "--source", source.bootstrap, "--target", target.bootstrap,
                              "--name", name, "--group", group],
        "probe": ["probe", "--cluster", target.bootstrap],
    }[command]
    proc = start_cli(tmp_path, *args)
    err = StreamTail(proc.stderr)
    try:
        # past start-up (a signal before the handlers are installed just kills it) and waiting on the broker
        wait_for(lambda: connected_to(proc.pid, target.broker.port), 60, "a connection to the frozen broker", err)
        time.sleep(0.5)
        took, code = stop_and_measure(proc, err)
    finally:
        proc.kill()
    assert took < GRACE + MARGIN
    assert code != 0
    assert_one_line_reason(err)
    assert_no_process_left(proc)


HANGING_PLAYBOOK = """
name: hangs
vars: {}
steps:
  - name: first
    action: exec
    with: {command: "echo first >> TRAIL"}
  - name: stuck
    action: exec
    with: {command: "echo $$ > HOOKPID; sleep 300"}
  - name: never
    action: exec
    with: {command: "echo never >> TRAIL"}
"""


@pytest.mark.slow  # the migrate CLI in a child process
def test_a_playbook_with_a_stuck_step_stops_within_the_grace_and_leaves_no_child(tmp_path):
    book = tmp_path / "hangs.yaml"
    book.write_text(HANGING_PLAYBOOK.replace("TRAIL", str(tmp_path / "trail")).replace("HOOKPID",
                                                                                        str(tmp_path / "hook.pid")))
    proc = start_cli(tmp_path, "playbook", "run", str(book), "--yes")
    err = StreamTail(proc.stderr)
    try:
        wait_for(lambda: (tmp_path / "hook.pid").exists() and (tmp_path / "hook.pid").read_text().strip(), 30,
                 "the stuck step", err)
        took, code = stop_and_measure(proc, err)
    finally:
        proc.kill()
    assert took < GRACE + MARGIN
    assert code == 128 + signal.SIGTERM
    last = assert_one_line_reason(err)
    assert "playbook" in last and "resume" in last
    hook = int((tmp_path / "hook.pid").read_text())
    wait_for(lambda: not Path(f"/proc/{hook}").exists(), 10, "the stuck hook to be gone")
    assert (tmp_path / "trail").read_text() == "first\n"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (text in cmdline or cwd.startswith(text)) and int(entry.name) != os.getpid():
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


@pytest.mark.slow
def test_demo_stopped_midway_ends_within_the_grace_and_leaves_nothing_running(tmp_path):
    work = tmp_path / "demo"
    work.mkdir()
    proc = start_cli(work, "demo", "--rate", "30", cwd=work)
    err = StreamTail(proc.stderr)
    out = StreamTail(proc.stdout)
    try:
        wait_for(lambda: "starting the mirror" in out.text() + err.text(), 120, "the demo to start mirroring", err)
        took, code = stop_and_measure(proc, err)
    finally:
        proc.kill()
    assert took < GRACE + MARGIN
    assert code != 0
    assert_one_line_reason(err)
    wait_for(lambda: not _processes_mentioning(str(work)), 20,
             f"no process of the demo left: {_processes_mentioning(str(work))}")
