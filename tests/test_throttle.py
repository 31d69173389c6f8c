"""--max-bytes-per-second with real brokers: a backfill read at the limit, live records not starved.

The rate is measured independently of the mirror: a reader on the target notes when each copied
record arrives (read_uncommitted, so records count when written, not when their transaction
commits), and the rate is the bytes between the backlog's 10% and 90% arrivals over the time
between them.  No wall-clock threshold: the rate is compared with the limit, and live records
are checked against the backlog's progress.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from metrics_support import MetricsMirror
from mirror_support import make_topic
from support import unique, wait_until

LIMIT = 1_000_000  # bytes per second: well under what either platform serves on a loaded 2-core machine (1.7 MB/s seen)
SIZE = 1000  # key (8 B) + value (992 B): what the limit counts
BACKLOG = 8_000  # records: 8 s at the limit
LIVE = 60
PAIRS = [("noida", "tansu"), ("tansu", "noida")]


class ArrivalReader(threading.Thread):
    """Notes when each record of the given one-partition target topics arrives."""

    def __init__(self, bootstrap: str, topics: list[str]):
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("arrivals"),
                                  "enable.auto.commit": False, "isolation.level": "read_uncommitted",
                                  "fetch.wait.max.ms": 10, "receive.message.max.bytes": 2_147_483_647,
                                  "topic.metadata.refresh.interval.ms": 200})
        self.topics = topics
        self.arrived: dict[str, list[float]] = {t: [] for t in topics}
        self.stop = threading.Event()

    def run(self) -> None:
        self.consumer.assign([TopicPartition(t, 0, 0) for t in self.topics])
        while not self.stop.is_set():
            for message in self.consumer.consume(1000, 0.05):
                if message.error() is None:
                    self.arrived[message.topic()].append(time.monotonic())
        self.consumer.close()


def produce(bootstrap: str, topic: str, count: int, pace: float = 0.0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, b"v" * (SIZE - 8), b"k%07d" % i, partition=0)
        if pace:
            producer.poll(0)
            time.sleep(pace)
        elif i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def test_a_backfill_is_read_at_the_byte_limit_and_live_records_are_not_starved(pair, cluster_pool, tmp_path):
    source_cluster, target_cluster = cluster_pool("source", pair[0]), cluster_pool("target", pair[1])
    source, target = source_cluster.profile, target_cluster.profile
    backlog, live = unique("backlog"), unique("live")
    for topic in (backlog, live):
        make_topic(source, topic, 1, {"retention.ms": "-1"})
        make_topic(target, topic, 1)  # so the reader can be assigned before the mirror starts
    produce(source.bootstrap, backlog, BACKLOG)
    reader = ArrivalReader(target.bootstrap, [backlog, live])
    reader.start()
    mirror = MetricsMirror(tmp_path / "state.db", source, target, f"({backlog}|{live})", unique("m"),
                           "--max-bytes-per-second", f"{LIMIT // 1000}KB", "--refresh-interval", "1")
    try:
        arrived = reader.arrived
        wait_until(lambda: len(arrived[backlog]) >= BACKLOG // 10, timeout=120, interval=0.1,
                   message="the backfill to be under way")
        produce(source.bootstrap, live, LIVE, pace=0.05)  # about 3 s of live records during the backfill
        middle = mirror.scrape()
        wait_until(lambda: len(arrived[backlog]) >= BACKLOG and len(arrived[live]) >= LIVE, timeout=120,
                   interval=0.2, message=f"everything to be mirrored\n{mirror.stderr()}")
        scrape = mirror.scrape()
    finally:
        reader.stop.set()
        reader.join(10)
        assert mirror.stop() == 0, mirror.stderr()
    times = arrived[backlog]
    assert len(times) == BACKLOG and len(arrived[live]) == LIVE  # once each
    first, last = BACKLOG // 10, BACKLOG * 9 // 10
    rate = (last - first) * SIZE / (times[last] - times[first])
    assert 0.9 <= rate / LIMIT <= 1.1, f"backfill read at {rate:,.0f} B/s under a limit of {LIMIT:,} B/s"
    # Live records are not held behind the throttled backlog: every one is on the target while
    # the backlog still has most of a second of records to go.
    assert max(arrived[live]) < times[BACKLOG - LIMIT // SIZE // 2]
    assert scrape.value("migrate_mirror_max_bytes_per_second") == LIMIT
    assert scrape.value("migrate_mirror_source_bytes_total", lane="backfill") == BACKLOG * SIZE
    assert scrape.value("migrate_mirror_source_bytes_total", lane="live") == LIVE * SIZE
    assert scrape.value("migrate_mirror_throttled_seconds_total") > 0
    fetched, taken = (middle.value("migrate_mirror_source_fetched_bytes_total"),
                      middle.value("migrate_mirror_source_bytes_total"))
    if source_cluster.platform == "tansu":
        # A platform that honours Fetch size limits is fetched at the limit too: what the clients
        # fetched is what the mirror took, plus at most the bounded prefetch of its two lanes.
        assert fetched <= taken + 2 * 1_200_000, (fetched, taken)
    # noida-db ignores Fetch size limits: one Fetch brings the partition's whole backlog into the
    # client (migrate.mirror.throttle), so there only what the mirror reads and writes is paced.
