"""Network faults between the tool and a broker: stalls, cuts and delays through a TCP proxy.

The broker is a private Tansu whose advertised address is the proxy (see fault_support), so
every connection a client makes, bootstrap and after, goes through the fault.  What is proven:

- a stall at start: every command waits for the cluster up to its reach timeout, and finishes
  normally if the network comes back within it;
- a cluster that stays stalled never hangs a command: exit 2 with `cannot reach cluster` after
  the reach timeout (10 s), no traceback;
- a cut (partition) mid-run: the mirror logs it at once (`cluster "target": every broker connection
  is down`) and rides it out, short cuts inside the client's retries and
  long ones through its own retry with backoff (logged as `target write failed ...; retrying
  in Ns`), and finishes with the target equal to the source and a complete map;
- a slow link (delay): mirror, validate and offsets give exact results.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from confluent_kafka import Consumer, TopicPartition

from fault_support import StreamTail, wait_for
from migrate import kafka
from migrate.offset_maps.store import MapStore
from migrate.state import State
from mirror_support import make_topic, produce_workload, read_contents
from support import kafka_python_read, run_cli, unique


def migrate_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migrate", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def commit_group(profile, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = Consumer({"bootstrap.servers": profile.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def mirrored_to_end(state_path, name, source_profile, topic, partitions) -> bool:
    ends = kafka.partition_ends(source_profile, [(topic, p) for p in range(partitions)])
    with State(state_path) as state:
        rows = {r["partition"]: r for r in MapStore(state, name).progress() if r["topic"] == topic}
    return len(rows) == partitions and all(
        (rows[p]["source_high"] or 0) >= ends[(topic, p)].high for p in range(partitions))


def assert_exact_copy(source, target_profile, topic, state_path, name):
    """Same records in the same order, and the map pairs every source record with its target copy."""
    assert read_contents(target_profile, topic) == read_contents(source.profile, topic)
    target_offsets = {p: [r.offset for r in records] for p, records in kafka_python_read(target_profile, topic).items()}
    with State(state_path) as state:
        store = MapStore(state, name)
        for partition, records in kafka_python_read(source.profile, topic).items():
            pmap = store.load(topic, partition)
            assert [pmap.target_of(r.offset) for r in records] == target_offsets[partition]


@pytest.fixture
def estate(source_cluster, proxied_tansu, tmp_path):
    """A noida source topic with a committed group, and a target reached only through a proxy."""
    target = proxied_tansu("target")
    topic, group, name = unique("net"), unique("g"), unique("m")
    make_topic(source_cluster.profile, topic, 2)
    produce_workload(source_cluster.profile, topic, 600, partitions=2)
    commit_group(source_cluster.profile, group, topic, {0: 120, 1: 300})
    return source_cluster, target, topic, group, name, tmp_path / "state.db"


def test_a_stall_at_start_is_waited_out_by_every_command(estate):
    source, target, topic, group, name, state_path = estate
    common = ("--state", str(state_path))

    def through_stall(*args: str) -> tuple[int, str, str]:
        before = target.proxy.connections
        target.proxy.stall()
        process = migrate_process(*common, *args)
        wait_for(lambda: target.proxy.connections > before, timeout=30, message="the command to connect")
        target.proxy.passthrough()
        out, err = process.communicate(timeout=120)
        return process.returncode, out, err

    code, out, err = through_stall("mirror", "--source", source.bootstrap, "--target", target.bootstrap,
                                   "--topics", topic, "--name", name, "--until-caught-up",
                                   "--session-timeout-ms", "6000")
    assert code == 0, err
    assert "caught up" in out
    code, out, err = through_stall("validate", "--source", source.bootstrap, "--target", target.bootstrap,
                                   "--topics", topic, "--name", name, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["records_compared"] == 600
    code, out, err = through_stall("offsets", "translate", "--name", name, "--group", group, "--format", "json")
    assert code == 0, err
    rows = {r["partition"]: r for r in json.loads(out)}
    assert (rows[0]["to_offset"], rows[1]["to_offset"]) == (120, 300)
    assert (rows[0]["status"], rows[1]["status"]) == ("exact", "end")  # 300 is the end of partition 1
    assert_exact_copy(source, target.profile, topic, state_path, name)


def test_a_cluster_that_stays_stalled_never_hangs_a_command(estate):
    source, target, topic, group, name, state_path = estate
    assert run_cli("--state", str(state_path), "mirror", "--source", source.bootstrap, "--target",
                   target.bootstrap, "--topics", topic, "--name", name, "--until-caught-up").returncode == 0
    target.proxy.stall()
    common = ("--state", str(state_path))
    commands = {
        "mirror": ("mirror", "--source", source.bootstrap, "--target", target.bootstrap, "--topics", topic,
                   "--name", name, "--until-caught-up"),
        "validate": ("validate", "--source", source.bootstrap, "--target", target.bootstrap, "--topics", topic,
                     "--name", name),
        "offsets": ("offsets", "translate", "--name", name, "--group", group),
    }
    processes = {what: migrate_process(*common, *args) for what, args in commands.items()}
    for what, process in processes.items():
        try:
            _out, err = process.communicate(timeout=90)  # the bound of a hang, far above the 10 s reach timeout
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"{what} hung on a stalled cluster")
        assert process.returncode == 2, f"{what}: {err}"
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1 and f'cannot reach cluster "target" at {target.bootstrap}' in lines[0], \
            f"{what}: {err}"


def test_offsets_sync_on_a_stalled_cluster_fails_cleanly(estate):
    source, target, topic, group, name, state_path = estate
    assert run_cli("--state", str(state_path), "mirror", "--source", source.bootstrap, "--target",
                   target.bootstrap, "--topics", topic, "--name", name, "--until-caught-up").returncode == 0
    target.proxy.stall()
    try:
        result = run_cli("--state", str(state_path), "offsets", "sync", "--name", name, "--group", group,
                         timeout=120)
    finally:
        target.proxy.passthrough()
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "target" in result.stderr


def test_a_mirror_rides_out_a_short_cut_and_loses_nothing(estate):
    source, target, topic, _group, name, state_path = estate
    worker = migrate_process("--state", str(state_path), "mirror", "--source", source.bootstrap, "--target",
                             target.bootstrap, "--topics", topic, "--name", name, "--follow",
                             "--session-timeout-ms", "6000", "--commit-interval", "0.2", "--worker-id", "w-cut")
    err = StreamTail(worker.stderr)
    try:
        wait_for(lambda: mirrored_to_end(state_path, name, source.profile, topic, 2), timeout=60,
                   message="the first catch-up", tail=err)
        target.proxy.cut()
        produce_workload(source.profile, topic, 600, partitions=2, seed=2)
        wait_for(lambda: err.matching('cluster "target": every broker connection is down'), timeout=30,
                 message="the mirror to log the lost target", tail=err)
        assert not mirrored_to_end(state_path, name, source.profile, topic, 2)
        target.proxy.passthrough()
        wait_for(lambda: mirrored_to_end(state_path, name, source.profile, topic, 2), timeout=90,
                   message="the mirror to catch up after the cut", tail=err)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    err.join()
    assert worker.returncode == 0, err.text()
    assert "Traceback" not in err.text()
    assert_exact_copy(source, target.profile, topic, state_path, name)


@pytest.mark.slow
def test_a_mirror_retries_with_backoff_through_a_long_cut_and_loses_nothing(estate):
    """Longer than the target producer's 60 s delivery timeout: the mirror's own retry takes over."""
    source, target, topic, _group, name, state_path = estate
    worker = migrate_process("--state", str(state_path), "mirror", "--source", source.bootstrap, "--target",
                             target.bootstrap, "--topics", topic, "--name", name, "--follow",
                             "--session-timeout-ms", "6000", "--commit-interval", "0.2", "--worker-id", "w-long")
    err = StreamTail(worker.stderr)
    try:
        wait_for(lambda: mirrored_to_end(state_path, name, source.profile, topic, 2), timeout=60,
                   message="the first catch-up", tail=err)
        target.proxy.cut()
        produce_workload(source.profile, topic, 600, partitions=2, seed=3)
        wait_for(lambda: len(err.matching("target write failed")) >= 2, timeout=120,
                   message="the mirror to report the failed writes", tail=err)
        target.proxy.passthrough()
        wait_for(lambda: mirrored_to_end(state_path, name, source.profile, topic, 2), timeout=120,
                   message="the mirror to catch up after the cut", tail=err)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    err.join()
    assert worker.returncode == 0, err.text()
    retries = err.matching("target write failed")
    assert all("WARNING" in line and "; retrying in " in line for line in retries), retries
    assert {f"{topic}[{p}]" for p in range(2)} <= {line.split(": ")[1] for line in retries if ": " in line} or \
        all(topic in line for line in retries)
    assert "Traceback" not in err.text()
    assert_exact_copy(source, target.profile, topic, state_path, name)


def test_mirror_validate_and_offsets_are_exact_over_a_slow_link(estate):
    source, target, topic, group, name, state_path = estate
    target.proxy.delay(20)
    common = ("--state", str(state_path))
    result = run_cli(*common, "mirror", "--source", source.bootstrap, "--target", target.bootstrap, "--topics",
                     topic, "--name", name, "--until-caught-up", "--session-timeout-ms", "6000", timeout=180)
    assert result.returncode == 0, result.stderr
    result = run_cli(*common, "validate", "--source", source.bootstrap, "--target", target.bootstrap,
                     "--topics", topic, "--name", name, "--format", "json", timeout=180)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records_compared"] == 600
    result = run_cli(*common, "offsets", "sync", "--name", name, "--group", group, "--format", "json", timeout=180)
    assert result.returncode == 0, result.stderr
    committed = kafka_committed(target.profile, group, topic, 2)
    assert committed == {0: 120, 1: 300}
    assert_exact_copy(source, target.profile, topic, state_path, name)


def kafka_committed(profile, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": profile.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}
