"""Crashes and scale-out: a killed worker loses nothing and duplicates nothing."""

from __future__ import annotations

import random
import signal
import time

import pytest

from migrate import kafka
from migrate.offset_maps.store import MapStore
from migrate.state import State
from mirror_support import make_topic, mirror_once, mirror_process, produce_workload, read_contents
from support import kafka_python_read, unique, wait_until


def assert_exact_copy_with_complete_map(source, target, topic, state_path, name="default"):
    src, tgt = read_contents(source.profile, topic), read_contents(target.profile, topic)
    for partition in src:
        assert len(tgt[partition]) == len(src[partition]), f"partition {partition}: count differs"
        assert tgt[partition] == src[partition], f"partition {partition}: content or order differs"
    source_records = kafka_python_read(source.profile, topic)
    target_offsets = {p: {r.offset for r in recs} for p, recs in kafka_python_read(target.profile, topic).items()}
    with State(state_path) as state:
        for partition, records in source_records.items():
            pmap = MapStore(state, name).load(topic, partition)
            mapped = [pmap.target_of(r.offset) for r in records]
            assert None not in mapped, f"partition {partition}: a mirrored record is missing from the map"
            assert set(mapped) == target_offsets[partition]


def test_sigkill_at_random_points_twenty_times_loses_and_duplicates_nothing(source_cluster, target_cluster,
                                                                             tmp_path):
    topic = unique("crash")
    state_path = tmp_path / "state.db"
    make_topic(source_cluster.profile, topic, 3)
    rng = random.Random(20261127)
    # A mirror name of its own: noida-db never expires a killed member, not even a static one, so the
    # group this test leaves behind would stall any later mirror of the same name on this broker.
    name = unique("crash")
    kills = 0
    for round_number in range(20):
        produce_workload(source_cluster.profile, topic, rng.randrange(500, 4000), seed=round_number,
                         transactions=1 if round_number % 4 == 0 else 0,
                         aborted=(0,) if round_number % 8 == 0 else (), txn_id=f"{topic}-tx")
        # A stable worker id (static membership): noida-db never expires a SIGKILLed dynamic
        # member, so a restarted dynamic member would wait minutes for its partitions there.
        worker = mirror_process(state_path, source_cluster.profile, target_cluster.profile, topic, name,
                                "--worker-id", "crash-worker")
        time.sleep(rng.uniform(0.3, 3.0))
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert worker.returncode == -signal.SIGKILL, worker.stderr.read()
        kills += 1
    result = mirror_once(state_path, source_cluster.profile, target_cluster.profile, [topic], name=name,
                         worker_id="crash-worker")

    assert kills == 20
    assert result.ok and result.caught_up
    assert_exact_copy_with_complete_map(source_cluster, target_cluster, topic, state_path, name)


# Tansu 0.6.0 drops a killed dynamic member after its session timeout, as Kafka does, but never a
# killed static one, and cannot be made to (the survivor's removal got UNKNOWN_MEMBER_ID; a member
# that took the dead one's group.instance.id and left got NoError, and the slots stayed with the
# dead one past 100 s): there the workers run with --membership dynamic, as the docs tell users.
# (noida-db drops neither kind; there the survivor removes a static member once its heartbeat has
# been silent for 30 s, migrate.mirror.vacancies: a ("noida", "static") case passed alone in 47 s
# but timed out once in a full suite run, so it is not in the suite yet.)
TAKEOVERS = [("tansu", "dynamic")]


@pytest.mark.parametrize("platform,membership", TAKEOVERS, ids=[f"{p}-{m}" for p, m in TAKEOVERS])
def test_two_workers_share_partitions_and_the_survivor_takes_over(platform, membership, cluster_pool, tmp_path):
    # One state file for both workers, so each needs its own --worker-id (two static workers on one
    # state file and mirror would share the derived group identity: refused).
    source_cluster, target_cluster = cluster_pool("source", platform), cluster_pool("target", "noida")
    topic = unique("scaleout")
    state_path = tmp_path / "state.db"
    make_topic(source_cluster.profile, topic, 6)
    produce_workload(source_cluster.profile, topic, 3000, partitions=6)
    name = unique("pair")  # noida-db keeps a killed member: a group of its own
    first = mirror_process(state_path, source_cluster.profile, target_cluster.profile, topic, name,
                           "--worker-id", "pair-1", "--membership", membership)
    second = mirror_process(state_path, source_cluster.profile, target_cluster.profile, topic, name,
                            "--worker-id", "pair-2", "--membership", membership)

    def workers_owning_partitions():
        with State(state_path) as state:
            rows = MapStore(state, name).progress()
        return len(rows) == 6 and len({r["worker"] for r in rows}) == 2

    try:
        wait_until(workers_owning_partitions, timeout=60, message="both workers to own partitions")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        produce_workload(source_cluster.profile, topic, 3000, partitions=6, seed=9)
        ends = kafka.partition_ends(source_cluster.profile, [(topic, p) for p in range(6)])

        def survivor_caught_up():
            with State(state_path) as state:
                rows = MapStore(state, name).progress()
            return all((r["source_high"] or 0) >= ends[(topic, r["partition"])].high for r in rows)

        wait_until(survivor_caught_up, timeout=150, message="the surviving worker to mirror everything")
    finally:
        for worker in (first, second):
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
    assert second.returncode == 0, second.stderr.read()
    assert_exact_copy_with_complete_map(source_cluster, target_cluster, topic, state_path, name)
