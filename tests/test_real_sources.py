"""Real sources: logs that start above 0, starts that move, partitions added, mirrors that would loop.

Deleting records needs DeleteRecords, which noida-db supports and Tansu does not (it drops the
connection), so the source of these tests is noida-db.  Growing a target topic needs
CreatePartitions, which Tansu does not support either: there the new partition is reported.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions
from kafka import KafkaAdminClient
from kafka.structs import TopicPartition as KafkaTopicPartition

sys.path.insert(0, str(Path(__file__).parent / "faults"))
from fault_support import StreamTail, wait_for  # noqa: E402
from migrate.offset_maps.store import MapStore
from migrate.state import State
from mirror_support import content, make_topic, mirror_process, produce_workload, read_contents
from support import kafka_python_read, run_cli, unique


def delete_before(profile, topic: str, offsets: dict[int, int]) -> None:
    """DeleteRecords with kafka-python: partition -> new log start."""
    admin = KafkaAdminClient(bootstrap_servers=profile.bootstrap)
    try:
        admin.delete_records({KafkaTopicPartition(topic, p): o for p, o in offsets.items()})
    finally:
        admin.close()


def mirror_cli(tmp_path, source, target, topic, *extra):
    return run_cli("--state", str(tmp_path / "state.db"), "mirror", "--source", source.bootstrap,
                   "--target", target.bootstrap, "--topics", topic, "--session-timeout-ms", "6000",
                   "--until-caught-up", *extra, timeout=180)


def mapped_pairs(tmp_path, topic: str, partition: int, name: str = "default") -> list[tuple[int, int]]:
    with State(tmp_path / "state.db") as state:
        pmap = MapStore(state, name).load(topic, partition)
    return [(run.source_start + i, run.target_start + i) for run in pmap.runs for i in range(run.length)]


@pytest.mark.parametrize("attempt", range(3))
def test_partitions_whose_log_starts_above_zero_are_mirrored_from_their_real_start(source_cluster, target_cluster,
                                                                                   tmp_path, attempt):
    topic = unique("logstart")
    make_topic(source_cluster.profile, topic, 3)
    produce_workload(source_cluster.profile, topic, 90, partitions=3, seed=attempt)
    delete_before(source_cluster.profile, topic, {0: 8, 1: 30})  # p0 starts at 8, p1 at its end (30)

    result = mirror_cli(tmp_path, source_cluster, target_cluster, topic)

    assert result.returncode == 0, result.stderr
    assert "caught up" in result.stdout and "vanished" not in result.stdout
    source = read_contents(source_cluster.profile, topic)
    assert len(source[0]) == 22 and source[1] == [] and len(source[2]) == 30
    assert read_contents(target_cluster.profile, topic) == source
    assert [s for s, _t in mapped_pairs(tmp_path, topic, 0)] == list(range(8, 30))


def test_records_deleted_while_the_mirror_starts_are_reported_and_the_rest_is_exact(source_cluster, target_cluster,
                                                                                      tmp_path):
    topic = unique("moving")
    make_topic(source_cluster.profile, topic, 1)
    produce_workload(source_cluster.profile, topic, 3000, partitions=1)
    original = {r.offset: content(r) for r in kafka_python_read(source_cluster.profile, topic)[0]}
    stop = threading.Event()
    starts = [0]

    def delete_in_a_loop() -> None:  # the log start moves while the mirror starts and copies
        while not stop.is_set() and starts[-1] < 2000:
            starts.append(starts[-1] + 100)
            delete_before(source_cluster.profile, topic, {0: starts[-1]})
            time.sleep(0.02)

    deleter = threading.Thread(target=delete_in_a_loop, daemon=True)
    deleter.start()
    try:
        result = mirror_cli(tmp_path, source_cluster, target_cluster, topic)
    finally:
        stop.set()
        deleter.join(30)

    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    pairs = mapped_pairs(tmp_path, topic, 0)
    target = kafka_python_read(target_cluster.profile, topic)[0]
    by_offset = {r.offset: content(r) for r in target}
    # every mapped pair holds the same record on both sides, and the target holds nothing else
    assert [by_offset[t] for _s, t in pairs] == [original[s] for s, _t in pairs]
    assert len(target) == len(pairs)
    # every record still on the source is mirrored; every record that is not was reported
    final_start = kafka_python_read(source_cluster.profile, topic)[0][0].offset
    mapped = {s for s, _t in pairs}
    assert set(range(final_start, 3000)) <= mapped
    with State(tmp_path / "state.db") as state:
        vanished = MapStore(state, "default").vanished().get((topic, 0), [])
        first = MapStore(state, "default").load(topic, 0).source_low
    reported = {o for first_, end in vanished for o in range(first_, end)}
    assert set(range(first, 3000)) - mapped == reported
    if reported:
        assert result.returncode == 1
        assert f"{len(reported)} source offsets were deleted" in result.stderr, result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_a_follower_skips_records_deleted_before_it_reached_them_and_reports_them(source_cluster, target_cluster,
                                                                                    tmp_path):
    topic, name = unique("overtaken"), unique("m")
    make_topic(source_cluster.profile, topic, 1)
    produce_workload(source_cluster.profile, topic, 100, partitions=1)
    worker = mirror_process(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, topic, name)
    err = StreamTail(worker.stderr)
    try:
        wait_for(lambda: [s for s, _t in mapped_pairs(tmp_path, topic, 0, name)][-1:] == [99], 60, "first 100 mirrored", err)
        worker.send_signal(signal.SIGSTOP)  # retention overtakes a paused mirror
        produce_workload(source_cluster.profile, topic, 100, partitions=1, seed=2)
        delete_before(source_cluster.profile, topic, {0: 150})
        worker.send_signal(signal.SIGCONT)
        wait_for(lambda: [s for s, _t in mapped_pairs(tmp_path, topic, 0, name)][-1:] == [199], 60, "the rest mirrored", err)
    finally:
        worker.send_signal(signal.SIGCONT)
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    err.join()
    with State(tmp_path / "state.db") as state:
        assert MapStore(state, name).vanished() == {(topic, 0): [(100, 150)]}
    assert any("offsets 100..149" in line for line in err.lines), err.text()
    assert worker.returncode == 1 and "50 source offsets were deleted" in err.text()
    source = kafka_python_read(source_cluster.profile, topic)[0]
    target = kafka_python_read(target_cluster.profile, topic)[0]
    assert [content(r) for r in target[100:]] == [content(r) for r in source]



def _map(tmp_path, name: str, topic: str):
    with State(tmp_path / "state.db") as state:
        return MapStore(state, name).load(topic, 0)


def test_a_followed_map_drops_the_runs_both_clusters_deleted_and_translates_the_rest_exactly(source_cluster,
                                                                                             cluster_pool, tmp_path):
    """One record per commit leaves one run per record (each commit's marker takes a target offset);
    once retention (DeleteRecords here) deleted the oldest on both clusters, their runs go from the
    state file and the map topic, and every offset still readable translates as before."""
    from migrate.offset_maps.topic import load_maps
    from migrate.offset_maps.translate import EXACT, translate

    target = cluster_pool("target", "noida")  # Tansu has no DeleteRecords (deviation list, brokers.md)
    topic, name = unique("pruned"), unique("m")
    make_topic(source_cluster.profile, topic, 1)
    worker = mirror_process(tmp_path / "state.db", source_cluster.profile, target.profile, topic, name,
                            "--map-prune-interval", "1")
    err = StreamTail(worker.stderr)
    try:
        for n in range(30):  # one record per commit: one run each
            _produce_to(source_cluster.profile, topic, 0, 1)
            wait_for(lambda: (_map(tmp_path, name, topic).source_high or 0) > n, 60, f"record {n} mapped", err)
        whole = _map(tmp_path, name, topic)
        assert len(whole.runs) >= 25, whole  # nearly every commit held one record
        delete_before(source_cluster.profile, topic, {0: 20})
        delete_before(target.profile, topic, {0: whole.target_of(20)})
        wait_for(lambda: _map(tmp_path, name, topic).runs[0].source_start == 20, 60, "the deleted runs dropped", err)
        _produce_to(source_cluster.profile, topic, 0, 5)
        wait_for(lambda: _map(tmp_path, name, topic).source_high == 35, 60, "the records after it mapped", err)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    err.join()
    assert worker.returncode == 0, err.text()
    local = _map(tmp_path, name, topic)
    durable = load_maps(target.profile, name)[(topic, 0)].pmap
    assert durable.runs == local.runs and local.runs[0].source_start == 20 and len(local.runs) < len(whole.runs)
    for offset in range(20, 30):
        assert translate(local, offset) == translate(whole, offset)
        assert translate(local, offset).status == EXACT
    # deleted on both clusters: to the first kept record, where a consumer resets on either side
    assert translate(local, 19).exact and translate(local, 19).offset == whole.target_of(20)
    assert read_contents(target.profile, topic) == read_contents(source_cluster.profile, topic)
    assert "Traceback" not in err.text()


def _grow(profile, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": profile.bootstrap})
    admin.create_partitions([NewPartitions(topic, partitions)])[topic].result(30)


def _produce_to(profile, topic: str, partition: int, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": profile.bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, f"grown-{i}".encode(), b"k", partition=partition)
    producer.flush(30)


def test_a_partition_added_to_a_followed_topic_is_mirrored_after_widening_the_target(cluster_pool, tmp_path):
    source, target = cluster_pool("source", "noida"), cluster_pool("target", "noida")
    topic, name = unique("grows"), unique("m")
    make_topic(source.profile, topic, 2)
    produce_workload(source.profile, topic, 40, partitions=2)
    worker = mirror_process(tmp_path / "state.db", source.profile, target.profile, topic, name,
                            "--refresh-interval", "1")
    err = StreamTail(worker.stderr)
    try:
        wait_for(lambda: len(mapped_pairs(tmp_path, topic, 1, name)) == 20, 60, "initial copy", err)
        _grow(source.profile, topic, 3)
        _produce_to(source.profile, topic, 2, 10)
        wait_for(lambda: len(mapped_pairs(tmp_path, topic, 2, name)) == 10, 90, "the new partition mirrored", err)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    err.join()
    assert worker.returncode == 0, err.text()
    copied = read_contents(target.profile, topic)
    assert sorted(copied) == [0, 1, 2] and len(copied[2]) == 10  # the target topic was widened
    assert copied == read_contents(source.profile, topic)


def test_a_partition_the_target_cannot_add_is_reported_with_its_lag(source_cluster, target_cluster, tmp_path):
    """Tansu does not support CreatePartitions: the new partition is blocked, reported, and counted as lag."""
    topic = unique("grows-tansu")
    make_topic(source_cluster.profile, topic, 2)
    produce_workload(source_cluster.profile, topic, 40, partitions=2)
    assert mirror_cli(tmp_path, source_cluster, target_cluster, topic).returncode == 0
    _grow(source_cluster.profile, topic, 3)
    _produce_to(source_cluster.profile, topic, 2, 10)

    again = mirror_cli(tmp_path, source_cluster, target_cluster, topic)

    assert again.returncode == 1, again.stderr
    assert "cannot be widened" in again.stderr and "partitions 2..2 are not mirrored" in again.stderr
    assert "Traceback" not in again.stderr
    status = run_cli("--state", str(tmp_path / "state.db"), "mirror", "status", "--format", "json")
    rows = {r["partition"]: r for r in json.loads(status.stdout)}
    assert rows[2]["status"] == "blocked" and rows[2]["lag"] == 10, rows[2]
    assert rows[0]["lag"] == rows[1]["lag"] == 0
    assert read_contents(target_cluster.profile, topic) == {p: c for p, c in read_contents(
        source_cluster.profile, topic).items() if p < 2}


def test_a_mirror_in_the_opposite_direction_over_the_same_topics_is_refused(cluster_pool, tmp_path):
    a, b = cluster_pool("source", "noida"), cluster_pool("target", "tansu")
    topic, forward = unique("loop"), unique("fwd")
    make_topic(a.profile, topic, 1)
    produce_workload(a.profile, topic, 10, partitions=1)
    worker = mirror_process(tmp_path / "fwd.db", a.profile, b.profile, topic, forward)
    err = StreamTail(worker.stderr)
    try:
        wait_for(lambda: len(kafka_python_read(b.profile, topic, timeout=5).get(0, [])) == 10, 60, "forward copy", err)
        wait_for(lambda: _committed(a, forward), 30, "the forward mirror's group to commit", err)
        reverse = run_cli("--state", str(tmp_path / "rev.db"), "mirror", "--source", b.bootstrap, "--target",
                          a.bootstrap, "--topics", topic, "--name", unique("rev"), "--until-caught-up")
        time.sleep(1)  # a loop would have doubled the records by now
        counts = (len(kafka_python_read(a.profile, topic)[0]), len(kafka_python_read(b.profile, topic)[0]))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    assert reverse.returncode == 2, reverse.stderr
    assert f'mirror "{forward}" is running in the opposite direction' in reverse.stderr
    assert topic in reverse.stderr and len(reverse.stderr.strip().splitlines()) == 1
    assert counts == (10, 10), "records were copied back"


def _committed(source, mirror: str) -> bool:
    """The mirror's group on its source has committed offsets (what the loop check reads)."""
    from migrate import groups

    return bool(groups.committed(source.profile, [f"migrate.mirror.{mirror}"]).get(f"migrate.mirror.{mirror}"))


REVERSE_ONLY = """
name: reverse-only
vars: {}
steps:
  - name: reverse mirror running
    action: mirror.start
    with: {name: REVERSE, source: TARGET, target: SOURCE, reverse_of: FORWARD}
"""


def test_the_rollback_step_that_starts_the_reverse_mirror_stops_while_the_forward_one_runs(cluster_pool, tmp_path):
    """The step is the shipped rollback's `mirror.start ... reverse_of` (its other steps need live apps)."""
    a, b = cluster_pool("source", "noida"), cluster_pool("target", "tansu")
    topic, forward = unique("rb"), unique("fwd")
    make_topic(a.profile, topic, 1)
    produce_workload(a.profile, topic, 10, partitions=1)
    state = tmp_path / "state.db"
    worker = mirror_process(state, a.profile, b.profile, topic, forward)
    err = StreamTail(worker.stderr)
    book = tmp_path / "reverse.yaml"
    book.write_text(REVERSE_ONLY.replace("REVERSE", unique("rev")).replace("FORWARD", forward)
                    .replace("TARGET", b.bootstrap).replace("SOURCE", a.bootstrap))
    try:
        wait_for(lambda: len(mapped_pairs(tmp_path, topic, 0, forward)) == 10, 60, "forward copy", err)
        run = run_cli("--state", str(state), "playbook", "run", str(book), "--yes", "--format", "json")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    assert run.returncode == 1, run.stderr
    assert f"forward mirror {forward} is still running" in run.stdout + run.stderr
    assert len(kafka_python_read(a.profile, topic)[0]) == 10
