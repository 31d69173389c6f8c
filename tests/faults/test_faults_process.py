"""Process faults: SIGKILL of `validate` and of a playbook run at random points, then rerun or resume.

(SIGKILL of `mirror` 20 times in a row is proven in tests/test_mirror_crash.py.)
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Producer

from fault_support import StreamTail, wait_for
from migrate.offset_maps.store import MapStore
from migrate.state import State
from mirror_support import make_topic, mirror_process, produce_workload
from support import run_cli, unique


def progress_rows(state_path, name) -> list[dict]:
    with State(state_path) as state:
        return MapStore(state, name).progress()


def migrate_process(*args: str, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migrate", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=cwd)


def write_twins(source, target, topic: str, count: int, differ_at: tuple[int, int]) -> None:
    """The same keyed records on both clusters (dual writing), except one value at (partition, index)."""
    base = int(time.time() * 1000) - 3_600_000  # recent: noida-db deletes records older than retention.ms
    for cluster in (source, target):
        make_topic(cluster.profile, topic, 3)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5,
                             "queue.buffering.max.messages": 1_000_000})
        for i in range(count):
            partition = i % 3
            value = f"event-{i}".encode()
            if cluster is target and (partition, i // 3) == differ_at:
                value = b"tampered"
            producer.produce(topic, value, f"id-{i}".encode(), partition=partition, timestamp=base + i)
        assert producer.flush(30) == 0


def test_sigkilled_validate_never_loses_a_divergence(source_cluster, target_cluster, tmp_path):
    """Incremental validation killed at random points: the one divergent record is still reported."""
    topic, state = unique("val-kill"), str(tmp_path / "state.db")
    write_twins(source_cluster, target_cluster, topic, 120_000, differ_at=(2, 39_000))
    args = ("--state", state, "validate", "--source", source_cluster.bootstrap, "--target",
            target_cluster.bootstrap, "--topics", topic, "--match", "key", "--incremental", "--format", "json")
    rng = random.Random(7)
    exits = []
    for _ in range(6):
        process = migrate_process(*args)
        try:
            process.wait(rng.uniform(0.3, 1.5))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        exits.append(process.returncode)
        out, err = process.communicate()
        assert "Traceback" not in err, err
    final = run_cli(*args, timeout=180)
    exits.append(final.returncode)
    kills = exits.count(-signal.SIGKILL)

    assert kills >= 3, f"too few runs were killed to prove anything: {exits}"
    assert set(exits) <= {-signal.SIGKILL, 0, 1}, exits
    # Exactly one completed run reports the divergence (cursors move only past what was compared
    # and reported); every other completed run finds parity.
    assert exits.count(1) == 1, exits
    history = run_cli("--state", state, "validate", "history", "--format", "json")
    assert history.returncode == 0, history.stderr
    assert "Traceback" not in history.stderr
    full = run_cli("--state", state, "validate", "--source", source_cluster.bootstrap, "--target",
                   target_cluster.bootstrap, "--topics", topic, "--match", "key", "--format", "json", timeout=180)
    assert full.returncode == 1 and json.loads(full.stdout)["divergences"] == 1, full.stdout[-2000:]


STEPS = 10
PLAYBOOK = "name: killable\nsteps:\n" + "".join(textwrap.dedent(f"""\
      - name: mark {i}
        action: exec
        with: {{command: "echo {i} >> trail"}}
      - name: pause {i}
        action: sleep
        with: {{seconds: 0.6}}
    """) for i in range(1, STEPS + 1))


@pytest.mark.slow  # the migrate CLI in a child process
def test_playbook_killed_at_random_points_resumes_to_completion(tmp_path):
    (tmp_path / "p.yaml").write_text(PLAYBOOK)
    state = str(tmp_path / "state.db")

    def history(*args: str):
        result = run_cli("--state", state, "playbook", "history", *args, "--format", "json", cwd=tmp_path)
        assert "Traceback" not in result.stderr, result.stderr
        return json.loads(result.stdout or "[]")

    rng = random.Random(11)
    process = migrate_process("--state", state, "playbook", "run", "p.yaml", "--format", "json", cwd=tmp_path)
    run_id = wait_for(history, timeout=30, message="the run to be journaled")[0]["id"]
    kills = 0
    while True:
        try:
            process.wait(rng.uniform(0.6, 1.6))
            break  # finished before the next kill
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            kills += 1
        status = history(run_id)["status"]
        if status == "succeeded" or kills >= 5:
            break  # killed after its last step was journaled, or enough kills: finish without them
        assert status == "killed", status
        process = migrate_process("--state", state, "playbook", "resume", run_id, "--format", "json", cwd=tmp_path)
    if process.returncode == -signal.SIGKILL and history(run_id)["status"] != "succeeded":
        process = migrate_process("--state", state, "playbook", "resume", run_id, "--format", "json", cwd=tmp_path)
        process.wait(60)
    _out, err = process.communicate(timeout=60)

    assert kills >= 3, "too few kills to prove anything"
    assert process.returncode in (0, -signal.SIGKILL), err
    outcome = history(run_id)
    assert outcome["status"] == "succeeded"
    assert [s["status"] for s in outcome["steps"]] == ["ok"] * (2 * STEPS)
    marks = [int(line) for line in (tmp_path / "trail").read_text().split()]
    # Every step ran, in order; a step repeats only if it was the one running when a kill came.
    assert sorted(set(marks)) == list(range(1, STEPS + 1))
    assert marks == sorted(marks)
    assert len(marks) - STEPS <= kills


def test_a_fenced_mirror_worker_stops_instead_of_idling_forever(source_cluster, target_cluster, tmp_path):
    """Two workers started with the same --worker-id: the broker fences one of them (normally the first;
    under load the first may rejoin and fence the second); the fenced one must stop and say so."""
    topic, name, state_path = unique("fenced"), unique("m"), tmp_path / "state.db"
    make_topic(source_cluster.profile, topic, 2)
    produce_workload(source_cluster.profile, topic, 200, partitions=2)
    first = mirror_process(state_path, source_cluster.profile, target_cluster.profile, topic, name,
                           "--worker-id", "same-id")
    tails = {"first": StreamTail(first.stderr)}
    workers = {"first": first}
    try:
        wait_for(lambda: len(progress_rows(state_path, name)) == 2, timeout=60,
                 message="the first worker to mirror", tail=tails["first"])
        workers["second"] = mirror_process(state_path, source_cluster.profile, target_cluster.profile, topic,
                                           name, "--worker-id", "same-id")
        tails["second"] = StreamTail(workers["second"].stderr)
        wait_for(lambda: any(w.poll() is not None for w in workers.values()), timeout=60,
                 message="one of the two workers to be fenced and stop", tail=tails["second"])
    finally:
        stopped = [label for label, w in workers.items() if w.poll() is not None]
        for worker in workers.values():
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
    fenced = stopped[0]
    tails[fenced].join()
    assert workers[fenced].returncode == 2, tails[fenced].text()
    assert any(line.startswith("error: ") and "fenced" in line for line in tails[fenced].lines), tails[fenced].text()
