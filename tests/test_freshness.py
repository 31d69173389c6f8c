"""Freshness: live partitions reach the target while the mirror is still copying a large backlog.

Assertions are on the order of events, read by an independent client (kafka-python), never
on wall-clock thresholds: the live records must be on the target while the backlogged
partition is still far from its end.  With one shared fetch queue (measured before the
lanes), no live record reached the target until the whole backlog was copied.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).parent / "faults"))
from fault_support import StreamTail, wait_for  # noqa: E402
from mirror_support import make_topic, mirror_once, mirror_process, read_contents  # noqa: E402
from support import unique  # noqa: E402

from migrate import kafka  # noqa: E402

BACKLOG = 400_000


def fill(profile, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": profile.bootstrap, "linger.ms": 5, "batch.size": 1_000_000,
                         "queue.buffering.max.kbytes": 262144})
    for i in range(count):
        while True:
            try:
                producer.produce(topic, b"b" * 100, b"k%d" % (i % 100), partition=0)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def target_end(profile, topic: str) -> int:
    """The end of partition 0 as a Fetch response reports it (kafka-python's highwater); 0 before the
    mirror created the topic (asked first through the admin API: a kafka-python metadata request for a
    missing topic makes Tansu create it with 4 partitions, whatever allow_auto_create_topics says)."""
    import time

    if topic not in kafka.list_topics(profile):
        return 0

    # no auto-creation: Tansu would create a missing topic with 4 partitions before the mirror does
    consumer = KafkaConsumer(bootstrap_servers=profile.bootstrap, enable_auto_commit=False,
                             fetch_max_wait_ms=100, allow_auto_create_topics=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_end(tp)  # Tansu's answer is too small, never too large: a fetch from there is in range
        deadline = time.monotonic() + 5
        while consumer.highwater(tp) is None and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200, max_records=1)
        return consumer.highwater(tp) or 0  # no answer: the topic is not there yet
    finally:
        consumer.close()


def live_records_on_target(profile, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=profile.bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=300, allow_auto_create_topics=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        return [r.value for r in consumer]
    finally:
        consumer.close()


def test_live_records_reach_the_target_long_before_a_concurrent_backfill_ends(source_cluster, target_cluster,
                                                                                tmp_path):
    backlog, live, name = unique("backlog"), unique("live"), unique("m")
    make_topic(source_cluster.profile, backlog, 1, {"retention.ms": "-1"})
    make_topic(source_cluster.profile, live, 1)
    fill(source_cluster.profile, backlog, BACKLOG)
    worker = mirror_process(tmp_path / "state.db", source_cluster.profile, target_cluster.profile,
                            f"({backlog}|{live})", name)
    err = StreamTail(worker.stderr)
    try:
        wait_for(lambda: target_end(target_cluster.profile, backlog) > 0, 120, "the backfill to begin", err)
        producer = Producer({"bootstrap.servers": source_cluster.bootstrap, "linger.ms": 1})
        sent = [b"live-%d" % i for i in range(20)]
        for value in sent:
            producer.produce(live, value, partition=0)
        producer.flush(30)
        wait_for(lambda: live_records_on_target(target_cluster.profile, live) == sent, 120,
                 "the live records on the target", err)
        copied = target_end(target_cluster.profile, backlog)
        # the backlog's target end also counts transaction markers: it overstates the records copied
        assert copied < BACKLOG * 0.9, f"the live records arrived only after {copied} of {BACKLOG} backlog records"
        wait_for(lambda: target_end(target_cluster.profile, backlog) >= BACKLOG, 300, "the backfill to end", err)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    assert worker.returncode == 0, err.text()[-3000:]


def test_sigkill_during_a_backfill_with_live_traffic_then_restart_is_exact(source_cluster, target_cluster, tmp_path):
    backlog, live, name = unique("backlog"), unique("live"), unique("m")
    make_topic(source_cluster.profile, backlog, 1, {"retention.ms": "-1"})
    make_topic(source_cluster.profile, live, 2)
    fill(source_cluster.profile, backlog, 200_000)
    worker = mirror_process(tmp_path / "state.db", source_cluster.profile, target_cluster.profile,
                            f"({backlog}|{live})", name, "--worker-id", "fresh-worker")
    err = StreamTail(worker.stderr)
    producer = Producer({"bootstrap.servers": source_cluster.bootstrap, "linger.ms": 2})
    try:
        wait_for(lambda: target_end(target_cluster.profile, backlog) > 10_000, 120, "the backfill under way", err)
        for i in range(500):
            producer.produce(live, b"live-%d" % i, partition=i % 2)
            if i == 250:
                producer.flush(30)
                worker.send_signal(signal.SIGKILL)
        producer.flush(30)
    finally:
        worker.kill()
        worker.wait(30)
    result = mirror_once(tmp_path / "state.db", source_cluster.profile, target_cluster.profile,
                         [f"({backlog}|{live})"], name=name, worker_id="fresh-worker")
    assert result.ok and result.caught_up
    assert read_contents(target_cluster.profile, live) == read_contents(source_cluster.profile, live)
    assert target_end(target_cluster.profile, backlog) >= 200_000
    assert read_contents(target_cluster.profile, backlog) == read_contents(source_cluster.profile, backlog)
