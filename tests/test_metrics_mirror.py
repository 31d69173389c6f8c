"""`migrate mirror --metrics-port`: the exposition, exact lag across a restart, freshness, bad input.

Real brokers throughout: noida-db as the source, Tansu (or noida-db where the target must
refuse a record) as the target.  Figures are checked against kafka-python, which reads
both clusters to the Fetch high watermark on its own.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from migrate.metrics.mirror import Figures

from metrics_support import KEEP_TARGET_LIMIT, MetricsMirror, counts, raise_limit, stuck_topic  # noqa: F401 (a fixture)
from mirror_support import make_topic, produce_workload
from support import run_cli, unique, wait_until

PARTITIONS = 3


def produce_per_partition(profile, topic: str, per_partition: dict[int, int], start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": profile.bootstrap, "linger.ms": 5})
    for partition, count in per_partition.items():
        for i in range(count):
            producer.produce(topic, f"later-{start + i}".encode(), f"k{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


def test_lag_is_exact_from_the_first_scrape_after_a_kill_and_restart(source_cluster, target_cluster, tmp_path):
    source, target = source_cluster.profile, target_cluster.profile
    topic, name, state = unique("lag"), unique("m"), tmp_path / "state.db"
    make_topic(source, topic, PARTITIONS)
    produce_workload(source, topic, 300, PARTITIONS)
    # A static member (--worker-id): noida-db never expires a SIGKILLed dynamic member.
    first = MetricsMirror(state, source, target, topic, name, "--commit-interval", "0.2", "--worker-id", "w1")
    try:
        wait_until(lambda: first.scrape().per_partition("migrate_mirror_lag_records", topic) == {0: 0, 1: 0, 2: 0},
                   timeout=60, message="the first run to catch up (lag 0 on every partition)")
        caught_up = first.scrape()
        assert caught_up.value("migrate_mirror_records_total", topic=topic) == 300
        assert caught_up.per_partition("migrate_mirror_lag_seconds", topic) == {0: 0, 1: 0, 2: 0}
        assert caught_up.value("migrate_mirror_partitions", state="mirroring") == PARTITIONS
        assert all(v >= 1 for v in caught_up.per_partition("migrate_mirror_map_runs", topic).values())
        assert sum(counts(target, topic).values()) == 300
    finally:
        first.kill()

    produced = {0: 7, 1: 11, 2: 4}
    produce_per_partition(source, topic, produced)
    # Long transactions: nothing commits for several seconds, so the lag the restarted mirror
    # must report (everything produced while it was down) holds still long enough to scrape.
    second = MetricsMirror(state, source, target, topic, name, "--commit-interval", "10", "--worker-id", "w1")
    try:
        seen: list[dict[int, float]] = []

        def scrape_until_caught_up():
            lag = second.scrape().per_partition("migrate_mirror_lag_records", topic)
            if lag:
                seen.append(lag)
            return lag == {0: 0, 1: 0, 2: 0}

        wait_until(scrape_until_caught_up, timeout=60, interval=0.1, message="the restarted mirror to catch up")
        # From the first scrape on, each partition showed exactly what was produced while the
        # mirror was down (or no figure, before it had an answer: never a made-up 0), and then
        # 0 once its transaction committed, never anything else.
        assert seen[0] == produced, seen[:3]
        for p in produced:
            values = [lag[p] for lag in seen if p in lag]
            committed_at = values.index(0)
            assert set(values[:committed_at]) == {produced[p]} and set(values[committed_at:]) == {0}, values
        done = second.scrape()
        # Counters restart from 0 in a new process (Prometheus handles the reset); this one counts
        # exactly what it mirrored.
        assert done.value("migrate_mirror_records_total", topic=topic) == sum(produced.values())
        assert done.per_partition("migrate_mirror_lag_seconds", topic) == {0: 0, 1: 0, 2: 0}
    finally:
        assert second.stop() == 0, second.stderr()
    source_counts, target_counts = counts(source, topic), counts(target, topic)
    assert source_counts == target_counts == {p: 100 + produced[p] for p in range(PARTITIONS)}


def test_freshness_grows_while_a_partition_is_stuck_and_returns_to_zero(stuck_topic, tmp_path):
    source, target, topic = stuck_topic
    mirror = MetricsMirror(tmp_path / "state.db", source.profile, target.profile, topic, unique("m"),
                           "--commit-interval", "0.2", *KEEP_TARGET_LIMIT)
    try:
        wait_until(lambda: mirror.scrape().value("migrate_mirror_retries_total", topic=topic,
                                                 reason="record-refused") >= 1,
                   timeout=60, message="the oversized record to be refused and retried")
        stuck = mirror.scrape()
        assert stuck.value("migrate_mirror_partitions", state="retrying") == 1
        behind = sum(counts(source.profile, topic).values()) - sum(counts(target.profile, topic).values())
        assert behind >= 6  # the refused record and everything after it
        assert stuck.per_partition("migrate_mirror_lag_records", topic) == {0: behind}
        before = stuck.per_partition("migrate_mirror_lag_seconds", topic)[0]
        assert before >= 55  # the oldest unmirrored record was written a minute ago
        wait_until(lambda: mirror.scrape().per_partition("migrate_mirror_lag_seconds", topic)[0] >= before + 2,
                   timeout=30, message="freshness to grow while the partition is stuck")
        # The config sync has seen the lower limit and left it (without KEEP_TARGET_LIMIT it would
        # have set the source's back, and the record would have gone through on its own).
        wait_until(lambda: mirror.scrape().value("migrate_mirror_config_drift", topic=topic, key="max.message.bytes",
                                                 state="reported") == 1,
                   timeout=30, message="the target's lower max.message.bytes to be reported as drift")
        assert mirror.scrape().value("migrate_mirror_partitions", state="retrying") == 1
        raise_limit(target.profile, topic)
        wait_until(lambda: mirror.scrape().per_partition("migrate_mirror_lag_records", topic) == {0: 0},
                   timeout=90, message="lag 0 once the target accepts the record")
        after = mirror.scrape()
        assert after.per_partition("migrate_mirror_lag_seconds", topic) == {0: 0}
        assert after.value("migrate_mirror_partitions", state="retrying") == 0
    finally:
        assert mirror.stop() == 0, mirror.stderr()
    assert counts(source.profile, topic) == counts(target.profile, topic) == {0: 11}


@pytest.mark.slow  # the migrate CLI in a child process
def test_a_metrics_port_in_use_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--state", str(tmp_path / "state.db"), "mirror", "--source", "127.0.0.1:1",
                         "--target", "127.0.0.1:2", "--topics", "t", "--metrics-port", str(port), timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot serve metrics on 127.0.0.1:{port} (")
    assert "--metrics-port" in lines[0]


@pytest.mark.slow  # the migrate CLI in a child process
def test_bad_metrics_settings_in_the_config_file_are_one_line(tmp_path):
    config = tmp_path / "migrate.toml"
    config.write_text('[metrics]\nport = "nine"\n')
    result = run_cli("--config", str(config), "--state", str(tmp_path / "s.db"), "mirror", "--source",
                     "127.0.0.1:1", "--target", "127.0.0.1:2", "--topics", "t", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: metrics port 'nine' must be a number from 0 to 65535 (0 picks a free port)"
    config.write_text('[metrics]\nprot = 9464\n')
    result = run_cli("--config", str(config), "--state", str(tmp_path / "s.db"), "mirror", "--source",
                     "127.0.0.1:1", "--target", "127.0.0.1:2", "--topics", "t", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: config [metrics]: unknown key 'prot'; known keys: port, host, detail, "
                                     "pushgateway")


def test_freshness_under_a_large_backlog_follows_what_an_independent_reader_sees(source_cluster, cluster_pool,
                                                                                 tmp_path):
    """While a backlog is copied, each scrape's lag and freshness lie within what kafka-python reads
    on both clusters just before and just after it.

    The backlog's first half carries one old timestamp (freshness grows with the wall clock while
    it is copied), the second half timestamps 1 ms apart up to a few seconds ago (freshness falls
    faster than the clock runs).  The independent reader takes the target's last record, whose
    value is its source offset, before and after each scrape: the scrape's mirrored-up-to lies
    between, so its lag and freshness are bracketed exactly.  The target is noida-db, whose
    ListOffsets is right (Tansu's is not, deviation 1).
    """
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTopicPartition

    source, target = source_cluster.profile, cluster_pool("target", "noida").profile
    topic = unique("backlog")
    make_topic(source, topic, 1)
    half = 250_000
    now_ms = int(time.time() * 1000)
    stamps = [now_ms - 300_000] * half + [now_ms - 5_000 - (half - i) for i in range(half)]
    producer = Producer({"bootstrap.servers": source.bootstrap, "linger.ms": 20, "batch.size": 1_000_000})
    for offset, stamp in enumerate(stamps):
        producer.produce(topic, str(offset).encode(), partition=0, timestamp=stamp)
        if offset % 20_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    del producer  # destroyed now: it would retry its connection after the broker stops
    total = len(stamps)

    reader = KafkaConsumer(bootstrap_servers=target.bootstrap, enable_auto_commit=False,
                           isolation_level="read_committed", consumer_timeout_ms=500)
    tp = KafkaTopicPartition(topic, 0)

    def mirrored_to() -> int:
        """The source offset right after the target's last committed record (its value)."""
        if topic not in (reader.topics() or set()):
            return 0
        reader.assign([tp])
        end = reader.end_offsets([tp])[tp]
        if end == 0:
            return 0
        reader.seek(tp, max(0, end - 2_000))
        last = None
        while reader.position(tp) < end:
            for records in reader.poll(timeout_ms=500, max_records=5_000).values():
                last = records[-1] if records else last
        return int(last.value) + 1 if last is not None else 0

    mirror = MetricsMirror(tmp_path / "state.db", source, target, topic, unique("m"), "--commit-interval", "0.2")
    checked = []
    try:
        while True:
            low, t_low = mirrored_to(), time.time()
            scraped = mirror.scrape()
            high, t_high = mirrored_to(), time.time()
            lag = scraped.per_partition("migrate_mirror_lag_records", topic).get(0)
            fresh = scraped.per_partition("migrate_mirror_lag_seconds", topic).get(0)
            if lag is not None and fresh is not None:
                assert total - high <= lag <= total - low, (low, lag, high)
                if lag:
                    oldest_low, oldest_high = stamps[low] / 1000, stamps[min(high, total - 1)] / 1000
                    assert t_low - oldest_high - 0.01 <= fresh <= t_high - oldest_low + 0.01, (low, high, fresh)
                else:
                    assert fresh == 0
                checked.append((lag, fresh))
            if lag == 0 and low == total:
                break
            assert len(checked) < 2_000, "the backlog was not copied"
    finally:
        reader.close()
        assert mirror.stop() == 0, mirror.stderr()
    backlog = [f for lag, f in checked if lag]
    # Scraped more than once while the backlog was copied: 200k records went by in one round of
    # reads in CI, so the backlog is 500k records (six scrapes or more in runs here).
    assert len(backlog) >= 2, checked
    assert backlog[0] >= 295 and checked[-1] == (0, 0)
    old_half = [f for lag, f in checked if lag > half]
    if len(old_half) >= 2:  # grows with the clock while the records with the old timestamp are copied
        assert old_half[-1] > old_half[0], checked


def test_topic_detail_serves_per_topic_sums_and_group_syncs_are_counted(source_cluster, target_cluster, tmp_path):
    source, target = source_cluster.profile, target_cluster.profile
    topic, group = unique("detail"), unique("g")
    make_topic(source, topic, PARTITIONS)
    produce_workload(source, topic, 90, PARTITIONS)
    committer = Consumer({"bootstrap.servers": source.bootstrap, "group.id": group, "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition(topic, p, 20) for p in range(PARTITIONS)], asynchronous=False)
    committer.close()
    mirror = MetricsMirror(tmp_path / "state.db", source, target, topic, unique("m"), "--commit-interval", "0.2",
                           "--metrics-detail", "topic", "--sync-groups", group, "--sync-interval", "1")
    try:
        wait_until(lambda: mirror.scrape().value("migrate_mirror_records_total", topic=topic) == 90, timeout=60,
                   message="the topic to be mirrored")
        wait_until(lambda: [s.value for s in mirror.scrape().samples("migrate_mirror_lag_records", topic=topic)]
                   == [0], timeout=30, message="one lag series for the topic, at 0")
        scraped = mirror.scrape()
        for family in ("migrate_mirror_lag_records", "migrate_mirror_lag_seconds", "migrate_mirror_map_runs"):
            samples = scraped.samples(family)
            assert samples and all("partition" not in s.labels for s in samples), (family, samples)
        assert scraped.value("migrate_mirror_map_runs", topic=topic) >= PARTITIONS
        # the group's three committed offsets are translated and committed on the target once
        wait_until(lambda: mirror.scrape().value("migrate_mirror_group_offset_syncs_total", outcome="committed")
                   == PARTITIONS, timeout=60, message="the group's offsets to be synced")
    finally:
        assert mirror.stop() == 0, mirror.stderr()
    reader = Consumer({"bootstrap.servers": target.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = reader.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    finally:
        reader.close()
    assert all(tp.offset >= 20 for tp in committed), committed


class HeldCommits:
    """A slot's real producer, whose commit_transaction waits while `hold` is set: a slow target commit."""

    def __init__(self, producer, hold: threading.Event, entered: threading.Event, release: threading.Event):
        self._producer, self._hold, self._entered, self._release = producer, hold, entered, release

    def __getattr__(self, name):
        return getattr(self._producer, name)

    def commit_transaction(self, *args):
        if self._hold.is_set():
            self._entered.set()
            assert self._release.wait(60)
        return self._producer.commit_transaction(*args)


def test_a_scrape_during_a_slow_commit_counts_none_of_its_records_as_mirrored(
        source_cluster, target_cluster, tmp_path, monkeypatch):
    # Before the maps grew only after the commit returned, a slot's map was extended before
    # commit_transaction was sent: a scrape meanwhile counted records whose transaction could
    # still abort as mirrored (lag 0 where 50 records were not committed on the target).
    from migrate.metrics.mirror import MirrorMetrics
    from migrate.mirror import Mirror, MirrorSpec
    from migrate.mirror import writer as writer_module
    from migrate.state import State
    from prometheus_client import CollectorRegistry

    source, target = source_cluster.profile, target_cluster.profile
    topic = unique("slow-commit")
    make_topic(source, topic, 1)
    produce_per_partition(source, topic, {0: 100})
    hold, entered, release = threading.Event(), threading.Event(), threading.Event()
    real_init = writer_module.SlotWriter.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.producer = HeldCommits(self.producer, hold, entered, release)

    monkeypatch.setattr(writer_module.SlotWriter, "__init__", init)
    spec = MirrorSpec(name=unique("m"), source=source, target=target, topics=(topic,), commit_interval_s=0.05)
    metrics = MirrorMetrics(CollectorRegistry(), source)
    stop, failed = threading.Event(), []

    def run():
        try:
            with State(tmp_path / "state.db") as state:
                Mirror(spec, state, stop=stop, metrics=metrics).run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failed.append(exc)

    def lag() -> int | None:
        snapshot = metrics.snapshot()
        if snapshot is None:
            return None
        return metrics.figures(snapshot.partitions, time.time()).get((topic, 0), Figures(None, None)).lag

    thread = threading.Thread(target=run, name="mirror")
    thread.start()
    try:
        wait_until(lambda: failed or lag() == 0, timeout=60, message="the first 100 records to be mirrored")
        assert not failed, failed
        hold.set()
        produce_per_partition(source, topic, {0: 50}, start=100)
        assert entered.wait(60), "a commit of the new records to reach commit_transaction"
        # The 50 records are flushed to the target and their transaction is being committed: not mirrored yet.
        assert lag() == 50
        release.set()
        wait_until(lambda: lag() == 0, timeout=60, message="lag 0 once the commit returned")
    finally:
        release.set()
        stop.set()
        thread.join(60)
    assert not failed, failed
    assert counts(target, topic) == {0: 150}
