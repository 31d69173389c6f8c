"""The decisions behind real sources, on plain data: vanished offsets, read starts, callback errors."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from migrate.config import ClusterProfile
from migrate.errors import KafkaOperationError, MirrorLoop, UsageError
from migrate.mirror.engine import Mirror
from migrate.mirror.loops import mirrors_writing_into
from migrate.mirror.reconcile import safe_read_start, skip_vanished
from migrate.mirror.spec import MirrorSpec
from migrate.offset_maps.runs import PartitionMap, Run
from migrate.state import State


def test_offsets_deleted_past_the_end_of_the_map_are_skipped_and_returned():
    pmap = PartitionMap([Run(0, 0, 100)])
    assert skip_vanished(pmap, 150) == (100, 150)
    assert pmap.source_high == 150 and pmap.record_count == 100


def test_a_log_start_inside_the_mirrored_range_skips_nothing():
    pmap = PartitionMap([Run(0, 0, 100)])
    assert skip_vanished(pmap, 40) is None and pmap.source_high == 100


def test_an_empty_map_started_at_the_log_start_skips_nothing():
    pmap = PartitionMap()
    pmap.start_at(8, 0)
    assert skip_vanished(pmap, 8) is None and pmap.source_high == 8


def test_a_read_never_starts_below_the_log_start():
    # a gap at 100..149 (vanished) and the source now starts at 150
    pmap = PartitionMap([Run(0, 0, 100), Run(150, 100, 50)])
    assert safe_read_start(pmap, 200) == 100  # the first gap: where abort markers could lie
    assert safe_read_start(pmap, 200, log_start=150) == 150
    assert safe_read_start(pmap, 200, log_start=500) == 200  # never past the resume point


def test_map_topics_on_a_cluster_name_the_mirrors_that_write_into_it():
    names = ["orders", "__migrate.estate.offset-map", "__migrate.rollback.offset-map", "__migrate..offset-map",
             "__consumer_offsets"]
    assert mirrors_writing_into(names) == ["estate", "rollback"]


def test_mirror_loop_is_a_usage_error():
    assert issubclass(MirrorLoop, UsageError)


class RefusingConsumer:
    """A consumer whose assign() fails, as librdkafka's can inside a rebalance callback."""

    def assign(self, partitions):
        raise KafkaException(KafkaError(KafkaError._STATE, "Erroneous state"))


def test_an_exception_in_the_assign_callback_is_kept_and_raised_as_one_line(tmp_path):
    profile = ClusterProfile(name="source", settings={"bootstrap.servers": "127.0.0.1:1"})
    spec = MirrorSpec(name="m", source=profile, target=ClusterProfile(name="target", settings={
        "bootstrap.servers": "127.0.0.1:2"}), topics=("t",))
    with State(tmp_path / "state.db") as state:
        mirror = Mirror(spec, state)
        mirror.ownership.on_assign(RefusingConsumer(), [TopicPartition("t", 0)])  # must not raise into librdkafka
        assert isinstance(mirror.ownership.callback_error, KafkaException)
        with pytest.raises(KafkaOperationError) as raised:
            mirror.ownership.raise_callback_error()
    message = str(raised.value)
    assert "assignment" in message and "_STATE" in message and "\n" not in message
