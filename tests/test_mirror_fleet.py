"""A fleet of workers on one mirror: each with its own directory and state, sharing only Kafka.

Tansu is the source here, and the write slots are handed out by its group coordinator; neither
local broker drops a SIGKILLed or paused static member (the workers' default), so the live workers
remove it once its heartbeat is silent (migrate.mirror.vacancies).  noida-db is the target:
read_uncommitted there shows every record ever appended, aborted or not, so a zombie write could
not hide.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

from confluent_kafka import Producer

from migrate import kafka
from migrate.mirror import fleet
from mirror_support import make_topic, mirror_once, read_contents
from support import kafka_python_read, run_cli, unique, wait_until


def start_worker(directory, source, target, pattern: str, name: str, *extra: str) -> subprocess.Popen:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "worker.log", "w") as log:  # a file: a pipe nobody reads would block the worker
        return subprocess.Popen(
            [sys.executable, "-m", "migrate", "-v", "--state", str(directory / "state.db"), "mirror", "--source",
             source.bootstrap, "--target", target.bootstrap, "--topics", pattern, "--name", name, "--follow",
             "--session-timeout-ms", "6000", "--commit-interval", "0.2", *extra],
            cwd=directory, stdout=subprocess.DEVNULL, stderr=log, text=True)


def worker_id(process: subprocess.Popen) -> str:
    return f"{socket.gethostname()}-{process.pid}"


def slots_held(target, name: str) -> dict[str, tuple[int, ...]]:
    """Slots per live worker, as the workers' heartbeats in the fleet status say."""
    status = fleet.read_status(target.profile, name)
    return {w.worker: w.slots for w in status.workers.values() if w.alive()}


class LiveProducer:
    """Writes to every partition of the topics until stopped (traffic while workers come and go)."""

    def __init__(self, profile, topics: dict[str, int]):
        self.producer = Producer({"bootstrap.servers": profile.bootstrap, "linger.ms": 5})
        self.topics = topics
        self.done = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        base = int(time.time() * 1000)
        while not self.done.is_set():
            for topic, partitions in self.topics.items():
                for partition in range(partitions):
                    self.producer.produce(topic, f"live-{self.count}".encode(), f"k{self.count % 7}".encode(),
                                          partition=partition, timestamp=base + self.count)
                    self.count += 1
            self.producer.poll(0)
            self.done.wait(0.2)
        self.producer.flush(30)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(60)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(10)


def assert_target_equals_source(source, target, topics):
    for topic in topics:
        src, tgt = read_contents(source.profile, topic), read_contents(target.profile, topic)
        for partition in src:
            assert len(tgt[partition]) == len(src[partition]), f"{topic}[{partition}]: count differs"
            assert tgt[partition] == src[partition], f"{topic}[{partition}]: content or order differs"


def test_three_workers_share_a_mirror_through_kill_join_and_leave_while_traffic_flows(private_cluster, tmp_path):
    # Brokers of its own: it passes alone, but in the full suite the session's shared Tansu (which
    # never frees what earlier tests stored, and walks every batch per request) was measured to stall
    # this group's rebalances past any wait.
    source, target = private_cluster("tansu", "source"), private_cluster("noida", "target")
    prefix, name = unique("fleet"), unique("fl")
    topics = {f"{prefix}.t{i:02d}": 5 for i in range(20)}  # 100 partitions over 12 slots
    for topic, partitions in topics.items():
        make_topic(source.profile, topic, partitions)
    pattern = rf"{prefix}\..*"
    traffic = LiveProducer(source.profile, topics)
    workers = {n: start_worker(tmp_path / n, source, target, pattern, name, "--slots", "12")
               for n in ("a", "b", "c")}
    try:
        wait_until(lambda: len([s for s in slots_held(target, name).values() if s]) == 3, timeout=300,
                   interval=0.5, message="three workers holding slots")
        # A kill, a join and a leave within seconds.  Before the fix this left the other workers
        # without slots for over 300 s on Tansu: a member that leaves while its group rebalances
        # leaves a generation the others cannot complete there, so a stopping worker now serves
        # the group until its rebalance is over before it leaves (migrate.mirror.membership,
        # rule 5); and the killed worker, a static member neither local broker ever drops, is
        # removed by the live ones once silent for 30 s (migrate.mirror.vacancies, rule 1).
        changed = time.monotonic()
        assert stop(workers["a"], signal.SIGKILL) == -signal.SIGKILL
        workers["d"] = start_worker(tmp_path / "d", source, target, pattern, name, "--slots", "12")
        time.sleep(2)  # d has started joining
        assert stop(workers["b"]) == 0, (tmp_path / "b" / "worker.log").read_text()[-3000:]
        live = {worker_id(workers["c"]), worker_id(workers["d"])}
        wait_until(lambda: sorted(s for w, held in slots_held(target, name).items() if w in live for s in held)
                   == list(range(12)), timeout=300, interval=0.5, message="the two remaining workers to hold every slot")
        print(f"every slot held by the two remaining workers {time.monotonic() - changed:.1f}s after the kill")
        traffic.stop()
        assert traffic.count > 0

        observer = tmp_path / "observer"  # a machine that never ran a worker: empty state
        observer.mkdir()

        def status_from_elsewhere():
            result = run_cli("--state", str(observer / "state.db"), "mirror", "status", "--name", name,
                             "--target", target.bootstrap, "--format", "json", cwd=observer, timeout=120)
            assert result.returncode == 0, result.stderr
            rows = json.loads(result.stdout)
            return rows if len(rows) == 100 and all(r["lag"] == 0 for r in rows) else None

        rows = wait_until(status_from_elsewhere, timeout=180, interval=1.0, message="every partition caught up")
        assert {r["status"] for r in rows} == {"mirroring"}
        assert {r["worker"] for r in rows} == {worker_id(workers["c"]), worker_id(workers["d"])}
        assert all(r["worker_alive"] for r in rows)
    finally:
        traffic.stop()
        codes = {n: stop(p) for n, p in workers.items()}
    assert codes["c"] == 0 and codes["d"] == 0, codes
    assert_target_equals_source(source, target, topics)

    # Every worker gone: the same observer now sees the partitions as stopped, not mirroring.
    result = run_cli("--state", str(observer / "state.db"), "mirror", "status", "--name", name, "--format", "json",
                     cwd=observer, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {r["status"] for r in json.loads(result.stdout)} == {"stopped"}


def test_a_paused_worker_that_lost_its_slots_writes_nothing_when_it_resumes(cluster_pool, tmp_path):
    source, target = cluster_pool("source", "tansu"), cluster_pool("target", "noida")
    topic, name = unique("zombie"), unique("zb")
    make_topic(source.profile, topic, 8)
    producer = Producer({"bootstrap.servers": source.bootstrap, "linger.ms": 5})

    def produce(count: int, tag: str) -> None:
        for i in range(count):
            producer.produce(topic, f"{tag}-{i}".encode(), b"k", partition=i % 8)
        assert producer.flush(30) == 0

    produce(400, "before")
    zombie = start_worker(tmp_path / "z", source, target, topic, name, "--slots", "4")
    survivor = None
    try:
        wait_until(lambda: len(slots_held(target, name).get(worker_id(zombie), ())) == 4, timeout=60,
                   interval=0.5, message="the first worker to hold every slot")
        wait_until(lambda: sum(e.high for e in kafka.partition_ends(target.profile, [(topic, p) for p in range(8)],
                                                                     isolation="read_uncommitted").values()) >= 400,
                   timeout=60, interval=0.5, message="the first records mirrored")
        time.sleep(1.0)  # let its last commit land: nothing of it is in flight when it is paused
        zombie.send_signal(signal.SIGSTOP)
        survivor = start_worker(tmp_path / "s", source, target, topic, name, "--slots", "4")
        wait_until(lambda: len(slots_held(target, name).get(worker_id(survivor), ())) == 4, timeout=300,
                   interval=0.5, message="the second worker to take every slot from the paused one")
        produce(400, "after")
        # The paused worker's consumer fetches these too when it wakes: the test is whether it can write them.
        wait_until(lambda: sum(len(r) for r in read_contents(target.profile, topic).values()) == 800,
                   timeout=300, interval=0.5, message="the survivor to mirror the new records")
        zombie.send_signal(signal.SIGCONT)
        time.sleep(8)  # the zombie runs, notices it lost its slots, is refused by the target
        produce(80, "later")
        wait_until(lambda: sum(len(r) for r in read_contents(target.profile, topic).values()) == 880,
                   timeout=300, interval=0.5, message="the survivor to mirror the later records")
    finally:
        if zombie.poll() is None:
            zombie.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        zombie_code = stop(zombie)
        if survivor is not None:
            stop(survivor)
    assert zombie_code == 0, ("the resumed worker did not stop cleanly:\n"
                              + (tmp_path / "z" / "worker.log").read_text()[-4000:])
    # read_uncommitted: an aborted or fenced write would show here too.
    every = kafka_python_read(target.profile, topic, isolation="read_uncommitted")
    values = [r.value for records in every.values() for r in records]
    assert len(values) == 880 == len(set(values)), f"{len(values)} records on the target, {len(set(values))} distinct"
    assert_target_equals_source(source, target, [topic])


def test_rebalances_while_the_source_is_transaction_heavy_stay_exact(cluster_pool, tmp_path):
    # Tansu as the source.  On a noida-db source this scenario is not exact, and the mirror says so:
    # noida-db's stale aborted-transaction lists make a read_committed Fetch that starts after an
    # abort marker hide later committed records of the same producer, also for a consumer that
    # reads on without restarting (measured here: the worker that took the slots over found
    # "committed source record 144 was hidden from an earlier read" and stopped the partitions as
    # data loss).  Tansu shows aborted records to read_committed readers (deviation 3), so here the
    # aborted transactions are visible source records and are mirrored as such; exactness is
    # checked against what the source shows, with every rebalance moving every slot.
    source, target = cluster_pool("source", "tansu"), cluster_pool("target", "noida")
    topic, name = unique("txheavy"), unique("tx")
    make_topic(source.profile, topic, 6)
    done = threading.Event()
    counts = {"committed": 0, "aborted": 0}

    def transactions() -> None:
        producer = Producer({"bootstrap.servers": source.bootstrap, "linger.ms": 5,
                             "transactional.id": unique("txheavy-producer")})
        producer.init_transactions(30)
        n = 0
        while not done.is_set():
            producer.begin_transaction()
            for i in range(12):
                producer.produce(topic, f"tx-{n}-{i}".encode(), f"k{i}".encode(), partition=i % 6)
            if n % 3 == 2:
                producer.flush(30)  # on the broker before the abort, or librdkafka just drops them
                producer.abort_transaction(30)
                counts["aborted"] += 1
            else:
                producer.commit_transaction(30)
                counts["committed"] += 1
            n += 1
            done.wait(0.05)

    writer = threading.Thread(target=transactions, daemon=True)
    writer.start()
    first = start_worker(tmp_path / "a", source, target, topic, name, "--slots", "4")
    second = None
    try:
        wait_until(lambda: len(slots_held(target, name).get(worker_id(first), ())) == 4, timeout=60,
                   interval=0.5, message="the first worker to hold every slot")
        second = start_worker(tmp_path / "b", source, target, topic, name, "--slots", "4")
        wait_until(lambda: len(slots_held(target, name).get(worker_id(second), ())) > 0, timeout=60,
                   interval=0.5, message="the second worker to take slots")
        time.sleep(2)
        assert stop(second) == 0, (tmp_path / "b" / "worker.log").read_text()[-3000:]
        wait_until(lambda: len(slots_held(target, name).get(worker_id(first), ())) == 4, timeout=60,
                   interval=0.5, message="the first worker to hold every slot again")
        done.set()
        writer.join(60)
        assert counts["aborted"] > 0 and counts["committed"] > 0
        expected = read_contents(source.profile, topic)
        wait_until(lambda: read_contents(target.profile, topic) == expected, timeout=120, interval=1.0,
                   message="the target to equal the source")
    finally:
        done.set()
        stop(first)
        if second is not None:
            stop(second)


def test_status_of_a_mirror_whose_worker_exited_says_stopped(source_cluster, target_cluster, tmp_path):
    topic, name = unique("exited"), unique("ex")
    make_topic(source_cluster.profile, topic, 2)
    producer = Producer({"bootstrap.servers": source_cluster.bootstrap, "linger.ms": 5})
    for i in range(40):
        producer.produce(topic, f"v{i}".encode(), b"k", partition=i % 2)
    assert producer.flush(30) == 0
    assert mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic], name=name).ok

    result = run_cli("--state", str(tmp_path / "state.db"), "mirror", "status", "--name", name, "--format", "json")

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["partition"], r["lag"], r["status"], r["worker_alive"]) for r in rows] == [
        (0, 0, "stopped", False), (1, 0, "stopped", False)]
