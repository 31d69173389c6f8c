"""The mirror's source lanes on a real broker: a partition the mirror paused is read again
whenever it is assigned again.

librdkafka keeps a partition's pause through an incremental unassign and a later assign; a
slot whose commit failed while its partitions were paused (held records past the bound)
reopened them paused for good, and a 2,000-partition mirror waited forever in CI.  Each test
pauses, gives up and takes a partition again the way the engine does, then reads it.
"""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from migrate import kafka
from migrate.kafka import PartitionEnds
from migrate.mirror.lanes import LIVE_LAG, Lanes
from mirror_support import make_topic, produce_workload
from support import unique

RECORDS = 60


@pytest.fixture
def lanes(source_cluster):
    topic = unique("lanes")
    make_topic(source_cluster.profile, topic, 1)
    produce_workload(source_cluster.profile, topic, RECORDS, partitions=1)
    made = Lanes(*(kafka.consumer(source_cluster.profile, **{"enable.partition.eof": True,
                                                             "fetch.wait.max.ms": 20})
                   for _ in range(2)))
    yield made, topic
    made.close()


def read_offsets(consumer, polls: int = 40) -> list[int]:
    """Offsets of the records a lane returns until it reports the partition's end."""
    offsets: list[int] = []
    for _ in range(polls):
        for message in consumer.consume(500, timeout=0.25):
            if message.error() is None:
                offsets.append(message.offset())
            elif message.error().code() == kafka.KafkaError._PARTITION_EOF:
                return offsets
    return offsets


def pause_while_reading(lanes_: Lanes, consumer, topic: str) -> None:
    """Pause the partition once its lane has returned records, as a slot that holds records does."""
    assert any(m.error() is None for _ in range(40) for m in consumer.consume(10, timeout=0.25)), "nothing read"
    lanes_.pause([TopicPartition(topic, 0)])
    consumer.consume(500, timeout=0.3)  # the pause is in effect in librdkafka


def ends(topic: str, high: int = RECORDS) -> dict:
    return {("source", (topic, 0)): PartitionEnds(0, high)}


def test_a_paused_partition_given_up_and_assigned_again_is_read_from_its_new_start(lanes):
    lanes_, topic = lanes
    lanes_.assign([TopicPartition(topic, 0, 0)], ends(topic))
    pause_while_reading(lanes_, lanes_.live, topic)
    lanes_.unassign([TopicPartition(topic, 0)])
    lanes_.assign([TopicPartition(topic, 0, 10)], ends(topic))
    assert read_offsets(lanes_.live) == list(range(10, RECORDS))
    assert not lanes_.paused


def test_a_partition_paused_while_not_assigned_is_read_once_assigned(lanes):
    """A slot that holds records pauses all its partitions, one being reopened among them."""
    lanes_, topic = lanes
    lanes_.assign([TopicPartition(topic, 0, 0)], ends(topic))
    lanes_.unassign([TopicPartition(topic, 0)])
    lanes_.pause([TopicPartition(topic, 0)])
    lanes_.assign([TopicPartition(topic, 0, 5)], ends(topic))
    assert read_offsets(lanes_.live) == list(range(5, RECORDS))


def test_a_partition_paused_in_the_backfill_lane_is_read_in_the_live_lane_after_it_moves(lanes):
    lanes_, topic = lanes
    far_behind = ends(topic, high=LIVE_LAG + RECORDS)  # claims a far end: starts in the backfill lane
    lanes_.assign([TopicPartition(topic, 0, 0)], far_behind)
    assert lanes_.backfilling == {(topic, 0)}
    pause_while_reading(lanes_, lanes_.backfill, topic)
    lanes_.move_to_live((topic, 0), 20)
    assert read_offsets(lanes_.live) == list(range(20, RECORDS))
    # and back in the backfill lane later (a slot reopened far behind): not paused there either
    lanes_.unassign([TopicPartition(topic, 0)])
    lanes_.assign([TopicPartition(topic, 0, 30)], far_behind)
    assert read_offsets(lanes_.backfill) == list(range(30, RECORDS))
