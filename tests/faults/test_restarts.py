"""A restart after an abandoned stop resumes: the stopped worker left the slots group, or its
successor reclaims its place (static membership), and the restart completes exactly.

Each test abandons a `migrate mirror --follow` (its stop grace runs out because a cluster froze,
died, or went away), brings the cluster back, starts the same command again with
`--until-caught-up` and the same state file, and checks that it ends with the target equal to
the source, read back with kafka-python (the independent client).  No test passes --worker-id:
the default identity is what is under test.  The restart times are printed (-s shows them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fault_support import StreamTail, wait_for
from migrate.offset_maps.store import MapStore
from migrate.state import State
from mirror_support import make_topic, produce_workload
from support import kafka_python_read, unique

GRACE = 6
RESTART_LIMIT = 240  # far above what it takes (seconds, printed); before the fix it never ended


def start_mirror(tmp_path: Path, source, target, topic: str, name: str, *mode: str) -> subprocess.Popen:
    env = dict(os.environ, MIGRATE_STATE=str(tmp_path / "state.db"), MIGRATE_CONFIG=str(tmp_path / "migrate.toml"))
    return subprocess.Popen(
        [sys.executable, "-m", "migrate", "--stop-grace", str(GRACE), "mirror", "--source", source.bootstrap,
         "--target", target.bootstrap, "--topics", topic, "--name", name, "--session-timeout-ms", "6000",
         "--commit-interval", "0.2", *mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, start_new_session=True)


def mirrored(tmp_path: Path, name: str) -> int:
    with State(tmp_path / "state.db") as state:
        return sum(r["source_high"] or 0 for r in MapStore(state, name).progress())


def stop(proc: subprocess.Popen, err: StreamTail) -> str:
    """SIGTERM: the stop ends within the grace (plus a margin); its last line, if any."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(GRACE + 30)
    err.join()
    assert "Traceback" not in err.text(), err.text()[-3000:]
    return ([line for line in err.lines if line.strip()] or [""])[-1]


def restart_completes(tmp_path: Path, source, target, topic: str, name: str) -> float:
    """The same mirror again, --until-caught-up: it ends, caught up; the seconds it took."""
    began = time.monotonic()
    proc = start_mirror(tmp_path, source, target, topic, name, "--until-caught-up")
    err = StreamTail(proc.stderr)
    try:
        proc.wait(RESTART_LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"the restart did not end in {RESTART_LIMIT}s:\n{err.text()[-3000:]}") from None
    took = time.monotonic() - began
    out = proc.stdout.read() if proc.stdout else ""
    err.join()
    assert proc.returncode == 0 and "caught up" in out, (proc.returncode, out, err.text()[-3000:])
    print(f"restart completed in {took:.1f}s")
    return took


def assert_target_equals_source(source, target, topic: str) -> None:
    def rows(profile):
        return {p: [(r.key, r.value, r.timestamp, tuple(r.headers)) for r in records]
                for p, records in kafka_python_read(profile, topic).items()}
    src, tgt = rows(source.profile), rows(target.profile)
    assert sum(map(len, src.values())) == 600
    assert tgt == src


def copy_first(tmp_path: Path, source, target, topic: str, name: str) -> tuple[subprocess.Popen, StreamTail]:
    make_topic(source.profile, topic, 2)
    produce_workload(source.profile, topic, 400, partitions=2)
    proc = start_mirror(tmp_path, source, target, topic, name, "--follow")
    err = StreamTail(proc.stderr)
    wait_for(lambda: mirrored(tmp_path, name) >= 400, 90, "the first copy", err)
    return proc, err


def test_a_restart_after_a_stop_abandoned_on_a_frozen_target_completes(source_cluster, private_cluster, tmp_path):
    target = private_cluster("tansu")
    topic, name = unique("frozen"), unique("m")
    proc, err = copy_first(tmp_path, source_cluster, target, topic, name)
    os.kill(target.broker.pid, signal.SIGSTOP)
    try:
        produce_workload(source_cluster.profile, topic, 200, partitions=2, seed=3)  # its commits now hang
        time.sleep(1.5)
        last = stop(proc, err)
    finally:
        os.kill(target.broker.pid, signal.SIGCONT)
        proc.kill()
    assert last.startswith("error: stopping now: "), last
    restart_completes(tmp_path, source_cluster, target, topic, name)
    assert_target_equals_source(source_cluster, target, topic)


def test_a_restart_after_a_stop_abandoned_on_a_killed_target_completes(source_cluster, private_cluster, tmp_path):
    target = private_cluster("noida")  # keeps its data across the restart
    topic, name = unique("killed"), unique("m")
    proc, err = copy_first(tmp_path, source_cluster, target, topic, name)
    time.sleep(2)  # noida-db loses about the last second of writes to a SIGKILL: let them settle first
    target.kill()
    try:
        produce_workload(source_cluster.profile, topic, 200, partitions=2, seed=3)
        time.sleep(1.5)
        stop(proc, err)
    finally:
        proc.kill()
        target.restart()
    restart_completes(tmp_path, source_cluster, target, topic, name)
    assert_target_equals_source(source_cluster, target, topic)


def test_a_restart_after_a_stop_abandoned_on_a_killed_source_completes(private_cluster, target_cluster, tmp_path):
    source = private_cluster("noida", "source")  # keeps its data (and its groups) across the restart
    topic, name = unique("srckilled"), unique("m")
    proc, err = copy_first(tmp_path, source, target_cluster, topic, name)
    produce_workload(source.profile, topic, 200, partitions=2, seed=3)
    wait_for(lambda: mirrored(tmp_path, name) >= 600, 90, "the second copy", err)
    time.sleep(2)  # as above: nothing recent for the SIGKILL to lose
    source.kill()
    try:
        time.sleep(1.0)
        stop(proc, err)  # it cannot leave the group: the source is gone
    finally:
        proc.kill()
        source.restart()
    restart_completes(tmp_path, source, target_cluster, topic, name)
    assert_target_equals_source(source, target_cluster, topic)


def test_a_worker_holding_no_slot_says_why_without_v_and_takes_over_when_the_holder_stops(private_cluster,
                                                                                           target_cluster, tmp_path):
    # One write slot, two workers: one has nothing to take until the other stops (which one holds
    # it is the group's choice).  The waiter must say so (a WARNING, shown without -v, naming the
    # group and who holds the slot), mirror status must show it waiting, and the holder's clean
    # stop must hand the slot over: a static member that stops without leaving keeps it on both
    # local brokers (measured).
    source = private_cluster("noida", "source")
    topic, name = unique("waiting"), unique("m")
    make_topic(source.profile, topic, 2)
    produce_workload(source.profile, topic, 400, partitions=2)
    dirs = {n: tmp_path / n for n in ("first", "second")}
    procs: dict[str, subprocess.Popen] = {}
    errs: dict[str, StreamTail] = {}
    try:
        for n, directory in dirs.items():
            directory.mkdir()
            procs[n] = start_mirror(directory, source, target_cluster, topic, name, "--follow", "--slots", "1")
            errs[n] = StreamTail(procs[n].stderr)
            if n == "first":
                wait_for(lambda: mirrored(dirs["first"], name) >= 400, 90, "the first worker's copy", errs["first"])

        def waiter() -> str | None:
            return next((n for n, err in errs.items() if err.matching("has held no write slot")), None)
        waiting = wait_for(waiter, 90, "a worker to say it waits", errs["second"])
        holding = "first" if waiting == "second" else "second"
        said = errs[waiting].matching("has held no write slot")[0]
        assert "WARNING" in said and f"migrate.mirror.{name}" in said and "holds slots 0" in said, said

        status = subprocess.run([sys.executable, "-m", "migrate", "--state", str(dirs["first"] / "state.db"), "mirror",
                                 "status", "--name", name], capture_output=True, text=True, cwd=tmp_path,
                                env=dict(os.environ))
        assert status.returncode == 0, status.stderr
        assert "has held no write slot" in status.stderr, status.stderr

        stopped_at = time.monotonic()
        assert stop(procs[holding], errs[holding]) == "" and procs[holding].returncode == 0, errs[holding].text()
        wait_for(lambda: errs[waiting].matching("now holds write slots"), 120, "the slot to move", errs[waiting])
        print(f"the slot moved {time.monotonic() - stopped_at:.1f}s after its holder was stopped")
        produce_workload(source.profile, topic, 200, partitions=2, seed=3)
        wait_for(lambda: mirrored(dirs[waiting], name) >= 600, 90, "the waiter's copy", errs[waiting])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    assert_target_equals_source(source, target_cluster, topic)
