"""Reading many small topics one after another, with and without their metadata read first.

    python benchmarks/topic_reads.py [--topics 20] [--platform noida]

A bounded read (migrate.kafka.iter_partition: assess's sampling, the validators, timestamp
lookups) re-assigns one consumer to one partition after another.  librdkafka fetches a
partition of a topic it has no metadata for only at its next topic scan, up to a second
later; `kafka.know_topic` reads the topic's metadata first.  This fills --topics one-partition
topics with 10 records each and reads them all with one consumer twice, in the same run: the
baseline without know_topic, then with it.  It prints both times and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

from mirror import fill, profile
from migrate import kafka
from migrate.kafka import bounded_reads
from migrate.local import platforms


def read_all(source, topics: list[str]) -> float:
    client = kafka.consumer(source, **{"enable.partition.eof": True, "fetch.wait.max.ms": 10})
    began = time.monotonic()
    try:
        for topic in topics:
            assert sum(1 for _ in kafka.iter_partition(client, source, topic, 0, 0, 10)) == 10
    finally:
        client.close()
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--platform", default="noida", choices=platforms.PLATFORMS)
    args = parser.parse_args()
    work = tempfile.TemporaryDirectory()
    platform = platforms.platform(args.platform)
    broker = platforms.start_broker(platform, "source", die_with_parent=True,
                                    data_dir=Path(work.name) / "source" if platform.keeps_data else None)
    try:
        source = profile("source", broker.bootstrap)
        names = {"baseline": [f"bench-a{i}" for i in range(args.topics)],
                 "know_topic": [f"bench-b{i}" for i in range(args.topics)]}
        for topic in names["baseline"] + names["know_topic"]:
            kafka.create_topic(source, topic, 1, {})
            fill(broker.bootstrap, topic, 10, 100, 1)
        with mock.patch.object(bounded_reads, "know_topic", lambda client, topic: None):
            baseline = read_all(source, names["baseline"])
        known = read_all(source, names["know_topic"])
    finally:
        platforms.stop_broker(broker.pid, broker.port)
        work.cleanup()
    print(f"{args.platform}: {args.topics} topics read one after another")
    print(f"without know_topic: {baseline:.2f} s; with it: {known:.2f} s ({baseline / known:.1f}x faster)")


if __name__ == "__main__":
    main()
