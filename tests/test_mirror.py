"""The mirror copies exactly: every record once, same partition, key, value, headers, timestamp."""

from __future__ import annotations

import re
import signal
import time

import pytest
from confluent_kafka import Producer

from migrate import kafka
from migrate.errors import UsageError
from migrate.offset_maps.store import MapStore
from migrate.offset_maps.topic import load_maps
from migrate.state import State
from mirror_support import make_topic, mirror_once, mirror_process, produce_workload, read_contents
from support import kafka_python_read, run_cli, unique, wait_until


def source_hides_aborted(source, topic) -> bool:
    values = [r.value for recs in kafka_python_read(source.profile, topic).values() for r in recs]
    return not any(v and v.startswith(b"tx-1-") for v in values)


def test_mirror_copies_every_record_exactly(cluster_pair, tmp_path):
    source, target = cluster_pair
    topic = unique("fidelity")
    make_topic(source.profile, topic, 3)
    produce_workload(source.profile, topic, 3000, transactions=4, aborted=(1,), txn_id=unique("tx"))

    result = mirror_once(tmp_path / "state.db", source.profile, target.profile, [topic])

    assert result.ok and result.caught_up
    assert read_contents(target.profile, topic) == read_contents(source.profile, topic)
    if not source_hides_aborted(source, topic):
        pytest.xfail(f"known {source.platform} limit: read_committed shows aborted records, "
                     "so they are visible on the source and were mirrored as visible records")
    target_values = [c[1] for recs in read_contents(target.profile, topic).values() for c in recs]
    assert not any(v and v.startswith(b"tx-1-") for v in target_values), "aborted records were mirrored"


def test_offset_map_pairs_every_source_record_with_its_target_copy(source_cluster, target_cluster, tmp_path):
    topic = unique("mapped")
    make_topic(source_cluster.profile, topic, 2)
    produce_workload(source_cluster.profile, topic, 1500, partitions=2, transactions=3, aborted=(0,),
                     txn_id=unique("tx"))
    mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic])

    src = kafka_python_read(source_cluster.profile, topic)
    tgt = kafka_python_read(target_cluster.profile, topic)
    with State(tmp_path / "state.db") as state:
        for partition, records in src.items():
            pmap = MapStore(state, "default").load(topic, partition)
            by_offset = {r.offset: r for r in tgt[partition]}
            for record in records:
                copy = by_offset[pmap.target_of(record.offset)]
                assert (copy.key, copy.value, copy.timestamp) == (record.key, record.value, record.timestamp)
            assert len(pmap.runs) <= 1 + 3 * 2, "gaps come only from transaction markers"
            assert pmap.source_high == max(r.offset for r in records) + 2  # past the last commit marker


def test_renamed_topics_go_to_their_new_names(source_cluster, target_cluster, tmp_path):
    topic = unique("renamed")
    make_topic(source_cluster.profile, topic, 2)
    produce_workload(source_cluster.profile, topic, 200, partitions=2)

    result = mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic],
                         rename="src.{topic}")

    assert result.ok
    assert read_contents(target_cluster.profile, f"src.{topic}") == read_contents(source_cluster.profile, topic)
    with State(tmp_path / "state.db") as state:
        rows = state.db.execute("SELECT source_topic, target_topic FROM topic_mappings").fetchall()
    assert rows == [(topic, f"src.{topic}")]


def test_target_topic_with_too_few_partitions_is_refused_before_any_write(source_cluster, target_cluster,
                                                                         tmp_path):
    topic = unique("narrow")
    make_topic(source_cluster.profile, topic, 3)
    make_topic(target_cluster.profile, topic, 1)
    produce_workload(source_cluster.profile, topic, 30)

    with pytest.raises(UsageError, match=r"has 1 partitions but source topic .* has 3"):
        mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic])
    ends = kafka.partition_ends(target_cluster.profile, [(topic, 0)])
    assert ends[(topic, 0)].high == 0


def test_foreign_record_stops_only_its_partition(source_cluster, target_cluster, tmp_path):
    topic = unique("foreign")
    make_topic(source_cluster.profile, topic, 2)
    produce_workload(source_cluster.profile, topic, 100, partitions=2)
    mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic])
    # While the mirror is stopped: a stranger writes into partition 1 of the target,
    # and the source moves on in both partitions.
    stranger = Producer({"bootstrap.servers": target_cluster.bootstrap, "linger.ms": 5})
    stranger.produce(topic, b"not from the source", b"intruder", partition=1)
    stranger.flush(10)
    produce_workload(source_cluster.profile, topic, 100, partitions=2, seed=2)

    result = mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic])

    assert [(f.topic, f.partition, f.kind) for f in result.failures] == [(topic, 1, "diverged")]
    assert "does not match source offset" in result.failures[0].message
    src, tgt = read_contents(source_cluster.profile, topic), read_contents(target_cluster.profile, topic)
    assert tgt[0] == src[0], "the healthy partition is mirrored"
    assert len(tgt[1]) == 51, "the refused partition got nothing after the foreign record"


def test_cli_mirror_reports_unreachable_target_in_one_line(source_cluster, tmp_path):
    topic = unique("unreach")
    make_topic(source_cluster.profile, topic, 1)
    done = run_cli("--state", str(tmp_path / "s.db"), "mirror", "--source", source_cluster.bootstrap,
                   "--target", "127.0.0.1:9", "--topics", topic, "--until-caught-up", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        'error: cannot reach cluster "target" at 127.0.0.1:9 (connection refused); check bootstrap.servers'
    ]


@pytest.mark.slow  # the migrate CLI in a child process
def test_cli_mirror_rejects_a_bad_regex(tmp_path):
    done = run_cli("--state", str(tmp_path / "s.db"), "mirror", "--source", "127.0.0.1:9", "--target",
                   "127.0.0.1:10", "--topics", "wf(", "--until-caught-up")
    assert done.returncode == 2
    assert done.stderr.startswith('error: --topics "wf(" is not a valid regular expression')
    assert "Traceback" not in done.stderr


def test_following_mirror_picks_up_new_matching_topics(source_cluster, target_cluster, tmp_path):
    prefix = unique("grow")
    first, later = f"{prefix}.a", f"{prefix}.b"
    make_topic(source_cluster.profile, first, 1)
    produce_workload(source_cluster.profile, first, 50, partitions=1)
    worker = mirror_process(tmp_path / "state.db", source_cluster.profile, target_cluster.profile,
                            rf"{re.escape(prefix)}\..*", "grow", "--refresh-interval", "1")
    try:
        make_topic(source_cluster.profile, later, 2)
        produce_workload(source_cluster.profile, later, 80, partitions=2)

        def later_mirrored():
            if later not in kafka.list_topics(target_cluster.profile):
                return False
            ends = kafka.partition_ends(target_cluster.profile, [(later, 0), (later, 1)])
            return ends[(later, 0)].high >= 40 and ends[(later, 1)].high >= 40

        wait_until(later_mirrored, timeout=90, interval=0.5, message="the new topic to be mirrored")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert worker.returncode == 0, worker.stderr.read()
    assert read_contents(target_cluster.profile, later) == read_contents(source_cluster.profile, later)
    assert read_contents(target_cluster.profile, first) == read_contents(source_cluster.profile, first)


def test_transactions_mode_commits_records_with_their_map_entries(source_cluster, cluster_pool, tmp_path):
    target = cluster_pool("target", "noida")  # a target whose transactions pass the probe
    topic = unique("txmode")
    make_topic(source_cluster.profile, topic, 2)
    produce_workload(source_cluster.profile, topic, 800, partitions=2, transactions=2, aborted=(1,),
                     txn_id=unique("tx"))

    result = mirror_once(tmp_path / "state.db", source_cluster.profile, target.profile, [topic],
                         transactions=True)

    assert result.ok and result.caught_up
    assert read_contents(target.profile, topic) == read_contents(source_cluster.profile, topic)
    durable = load_maps(target.profile, "default")
    with State(tmp_path / "state.db") as state:
        for partition in (0, 1):
            local = MapStore(state, "default").load(topic, partition)
            assert durable[(topic, partition)].pmap.runs == local.runs


def test_transactions_mode_falls_back_where_the_probe_failed_the_target(source_cluster, target_cluster,
                                                                       tmp_path, caplog):
    from migrate.probe.runner import run_probe
    from migrate.probe.store import save_report

    with State(tmp_path / "state.db") as state:
        save_report(state, run_probe(target_cluster.profile, only=["read-committed-hides-aborted"],
                                     cluster="target"))
    topic = unique("txfallback")
    make_topic(source_cluster.profile, topic, 1)
    produce_workload(source_cluster.profile, topic, 100, partitions=1)

    with caplog.at_level("WARNING", logger="migrate.mirror"):
        result = mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic],
                             transactions=True)

    assert result.ok
    assert "fails the transaction checks (read-committed-hides-aborted)" in caplog.text
    assert read_contents(target_cluster.profile, topic) == read_contents(source_cluster.profile, topic)


def test_resuming_after_an_aborted_transaction_loses_no_committed_record(cluster_pair, tmp_path):
    # noida-db lists old aborted transactions to a read_committed reader that starts after
    # their markers, so the client hides the producer's later commits; the mirror re-reads
    # from the first gap when it resumes, and so sees them (see reconcile.safe_read_start).
    source, target = cluster_pair
    topic = unique("resume-abort")
    make_topic(source.profile, topic, 1)
    producer = Producer({"bootstrap.servers": source.bootstrap, "linger.ms": 5, "transactional.id": unique("tx")})
    producer.init_transactions(30)

    def transaction(tag: bytes, commit: bool) -> None:
        producer.begin_transaction()
        for i in range(2):
            producer.produce(topic, tag + b"-%d" % i, partition=0)
        producer.flush(30)
        (producer.commit_transaction if commit else producer.abort_transaction)(30)

    transaction(b"first", True)
    transaction(b"aborted", False)
    first = mirror_once(tmp_path / "state.db", source.profile, target.profile, [topic])
    transaction(b"second", True)
    transaction(b"third", True)
    second = mirror_once(tmp_path / "state.db", source.profile, target.profile, [topic])

    assert first.ok and second.ok
    values = [c[1] for c in read_contents(target.profile, topic)[0]]
    assert [v for v in values if not v.startswith(b"aborted")] == [
        b"first-0", b"first-1", b"second-0", b"second-1", b"third-0", b"third-1"]


def test_open_transactions_limit_lets_one_slot_write_at_a_time_and_still_copies_exactly(
        source_cluster, target_cluster, tmp_path, monkeypatch):
    from migrate.mirror import writer as writer_module

    topic = unique("gated")
    make_topic(source_cluster.profile, topic, 12)
    produce_workload(source_cluster.profile, topic, 6000, partitions=12, transactions=3, aborted=(1,),
                     txn_id=unique("tx"))
    writers, overlaps, began = [], [], set()
    real_init, real_begin = writer_module.SlotWriter.__init__, writer_module.SlotWriter.begin

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        writers.append(self)

    def begin(self):
        # Seen from the moment a slot opens a transaction: any other slot still open or committing?
        overlaps.extend(w.slot for w in writers if w is not self and (w.open or w.committing))
        began.add(self.slot)
        real_begin(self)

    monkeypatch.setattr(writer_module.SlotWriter, "__init__", init)
    monkeypatch.setattr(writer_module.SlotWriter, "begin", begin)

    result = mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic],
                         slots=4, open_transactions=1, commit_interval_s=0.05)

    assert result.ok and result.caught_up
    assert len(began) >= 2, "the topic must spread over several slots for the limit to matter"
    assert overlaps == [], f"slots {sorted(set(overlaps))} had a transaction open beside another"
    assert read_contents(target_cluster.profile, topic) == read_contents(source_cluster.profile, topic)
    with State(tmp_path / "state.db") as state:
        store = MapStore(state, "default")
        for partition in range(12):
            assert store.load(topic, partition).source_high == kafka.partition_ends(
                source_cluster.profile, [(topic, partition)])[(topic, partition)].high


def test_under_an_open_transactions_limit_a_slot_commits_as_soon_as_another_waits_for_its_turn(
        source_cluster, target_cluster, tmp_path, monkeypatch):
    # Waiting out the commit interval while other slots hold records left them idle (6 backfilling
    # partitions, 1M records: 102-112k records/s, 126-129k with the early turn).  Every partition is read as a backfill
    # (LIVE_LAG 0), so transactions last the 8 s commit interval: a second slot can only commit
    # within 8 s of the first if the first gave up its turn early.
    from migrate.mirror import lanes as lanes_module
    from migrate.mirror import writer as writer_module

    monkeypatch.setattr(lanes_module, "LIVE_LAG", 0)
    interval = 8.0
    topic = unique("turns")
    make_topic(source_cluster.profile, topic, 12)
    produce_workload(source_cluster.profile, topic, 3000, partitions=12)
    commits: list[tuple[float, int]] = []
    real_commit = writer_module.SlotWriter.commit

    def commit(self, timeout=60.0):
        if self.open:
            commits.append((time.monotonic(), self.slot))
        return real_commit(self, timeout)

    monkeypatch.setattr(writer_module.SlotWriter, "commit", commit)

    result = mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile, [topic],
                         slots=4, open_transactions=1, commit_interval_s=interval)

    assert result.ok and result.caught_up
    first_at, first_slot = commits[0]
    second_at = next(at for at, slot in commits if slot != first_slot)
    assert second_at - first_at < interval, f"the second slot committed {second_at - first_at:.1f}s after the first"
    assert read_contents(target_cluster.profile, topic) == read_contents(source_cluster.profile, topic)
