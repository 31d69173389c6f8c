"""The one place that builds confluent-kafka clients and turns their errors into ours.

Everything the tool does on a cluster goes through a client made here, so that profile
settings, safe defaults, logging and redaction are applied the same way everywhere.
It also holds the small Kafka facts that several parts need and that some platforms get
wrong, done the robust way: partition ends are read from a Fetch response (the high
watermark it carries) rather than trusted from ListOffsets, which some Kafka-compatible
platforms answer wrongly after multi-record batches.  One module per idea:

    clients         admin, consumer, producer: every confluent-kafka client, with our defaults;
                    lost_recently: whether a client here lost every broker of a cluster lately
    client_errors   error_of, is_fatal, describe_error, fail, read_failure: client errors into ours
    parallel        at_once: independent calls from a few threads, answers in call order
    metadata        check_reachable, list_topics, wait_for_topic(s), AdminSession: one admin client
    topics          create_topic(s), add_partitions, delete_topics, topic_config_entries, alter_topic_configs
    ends            partition_ends, PartitionEnds: log start and end from Fetch responses
    read_loop       read_assigned, key_of, offset_of: the one loop that reads assigned partitions
    bounded_reads   read_ranges, iter_partition, read_log, read_compacted: reads up to a known end;
                    know_topic (a topic's metadata read before it is assigned: no 1 s wait)

Callers use the names below, `kafka.consumer(...)` after `from migrate import kafka`; a module
of the package looks its neighbours' names up in their own modules, so replacing a name here
(a test's monkeypatch) changes what callers outside the package see, not what the package's
own modules call.
"""

# confluent-kafka's error class, which callers reach as kafka.KafkaError for its codes (_PARTITION_EOF, ...)
from confluent_kafka import KafkaError

from migrate.kafka.bounded_reads import iter_partition, know_topic, read_compacted, read_log, read_ranges
from migrate.kafka.client_errors import describe_error, error_of, fail, is_fatal, read_failure
from migrate.kafka.clients import admin, consumer, lost_recently, producer
from migrate.kafka.ends import ENDS_CHUNK, ENDS_PARALLEL, PartitionEnds, partition_ends
from migrate.kafka.metadata import (REACH_TIMEOUT, AdminSession, TopicInfo, check_reachable, list_topics, wait_for_topic,
                                    wait_for_topics)
from migrate.kafka.parallel import at_once
from migrate.kafka.read_loop import Key, key_of, offset_of, read_assigned
from migrate.kafka.topics import (add_partitions, alter_topic_configs, create_topic, create_topics, delete_topics,
                                  topic_config_entries, topic_config_entries_many, topic_configs)

__all__ = [
    "ENDS_CHUNK", "ENDS_PARALLEL", "REACH_TIMEOUT", "AdminSession", "KafkaError", "Key", "PartitionEnds", "TopicInfo",
    "add_partitions", "admin", "alter_topic_configs", "at_once", "check_reachable", "consumer", "create_topic",
    "create_topics", "delete_topics", "describe_error", "error_of", "fail", "is_fatal", "iter_partition", "know_topic", "key_of",
    "list_topics", "lost_recently", "offset_of", "partition_ends", "producer", "read_assigned", "read_compacted", "read_failure",
    "read_log", "read_ranges", "topic_config_entries", "topic_config_entries_many", "topic_configs", "wait_for_topic",
    "wait_for_topics",
]
