"""The catalogue of checks: stable names, what each one asks, and how each is run.

A check name is a stable kebab-case id that playbooks and the mirror use as a requirement
(`requires: [transactions, list-offsets-latest]`).  One entry of the catalogue is one
function that yields results for one or more names with one client; entries marked
`isolated` run in a child process (see migrate.probe.isolation) because the request they
make can crash or hang the client library on some platforms.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Iterable

from migrate.errors import UsageError
from migrate.probe import admin_checks as admin
from migrate.probe import data_checks as data
from migrate.probe import freshness_checks as fresh
from migrate.probe import group_checks as groups
from migrate.probe import kafka_python_checks as kp
from migrate.probe import mirror_checks
from migrate.probe import wire_checks as wire
from migrate.probe.context import ProbeContext
from migrate.probe.model import CONFLUENT, KAFKA_PYTHON, WIRE, CheckResult

CHECK_NAMES: dict[str, str] = {
    "produce-fetch-fidelity": "keys, binary values, null and empty values, duplicate/binary/null headers, CreateTime",
    "header-name-nul": "a header name with a NUL byte comes back byte-identical (librdkafka cuts it)",
    "compression-gzip": "gzip batches written and read back",
    "compression-snappy": "snappy batches written and read back",
    "compression-lz4": "lz4 batches written and read back",
    "compression-zstd": "zstd batches written and read back",
    "list-offsets-earliest": "ListOffsets EARLIEST",
    "list-offsets-latest": "ListOffsets LATEST after multi-record batches",
    "list-offsets-latest-after-transactions": "ListOffsets LATEST after committed and aborted transactions",
    "list-offsets-by-timestamp": "ListOffsets by timestamp finds the first record at or after T",
    "list-offsets-max-timestamp": "ListOffsets MAX_TIMESTAMP (KIP-734)",
    "offset-out-of-range": "a fetch past the end answers OFFSET_OUT_OF_RANGE",
    "idempotent-producer": "idempotent producer: in order, no duplicates",
    "transactions": "transactional producer: init, commit, abort",
    "init-producer-id-old-versions": "InitProducerId v0/v1, what kafkajs 2.x and aiokafka producers send",
    "read-committed-hides-aborted": "read_committed does not return aborted records",
    "transaction-markers-take-offsets": "transaction markers take offsets (gaps in offsets)",
    "read-uncommitted": "read_uncommitted returns aborted records too, at their offsets",
    "group-join": "a new group's member gets an assignment (figure: join time)",
    "group-rebalance": "a second member joins and partitions move (figure: rebalance time)",
    "group-offset-commit": "OffsetCommit and OffsetFetch by a member",
    "group-offset-commit-metadata": "commit metadata is kept",
    "group-offset-commit-unknown-partition": "commits for partitions that do not exist are refused",
    "group-offset-commit-active-refused": "admin offset writes into an active group are refused",
    "group-offset-commit-inactive-admin": "admin offset writes into a group with no members (offsets sync)",
    "describe-groups": "DescribeGroups: state and members of an active group",
    "describe-groups-empty": "DescribeGroups: a group with only offsets is EMPTY",
    "list-groups": "ListGroups lists an active group as STABLE",
    "delete-groups": "DeleteGroups refused for an active group, done for an empty one",
    "create-topic-configs": "CreateTopics stores the configs a mirror copies (cleanup.policy=compact, ...)",
    "describe-configs": "DescribeConfigs returns set keys as not default",
    "describe-configs-defaults": "DescribeConfigs returns defaults for keys not set",
    "alter-configs": "IncrementalAlterConfigs",
    "alter-configs-legacy": "legacy AlterConfigs",
    "create-topic-validation": "invalid names and replication factors refused; validate_only creates nothing",
    "config-log-append-time": "message.timestamp.type=LogAppendTime is applied",
    "create-partitions": "CreatePartitions",
    "delete-records": "DeleteRecords moves the log start",
    "delete-topics": "DeleteTopics",
    "auto-create-on-produce": "whether producing to an unknown topic creates it, with how many partitions (figure)",
    "max-record-size": "largest record accepted (figure)",
    "acl-api": "ACL API answers (DescribeAcls, CreateAcls)",
    "scram-api": "SCRAM user API answers (DescribeUserScramCredentials)",
    "produce-latency": "produce latency p50/p99 (figure)",
    "end-to-end-latency": "producer-to-consumer latency p50/p99 (figure)",
    "throughput": "short produce and consume throughput (figure)",
    "mirror-throughput": "what one mirror worker copies: a short real mirror run on scratch topics (figure)",
    "client-agreement": "confluent-kafka and kafka-python see the same behaviour",
}
# Checks whose observed text carries a figure worth comparing between platforms.
FIGURES = ("group-join", "group-rebalance", "produce-latency", "end-to-end-latency", "throughput", "max-record-size",
           "auto-create-on-produce", "mirror-throughput")


@dataclass(frozen=True)
class Check:
    id: str
    names: tuple[str, ...]
    client: str
    run: Callable[[ProbeContext], list[CheckResult]]
    isolated: bool = False
    timeout_s: float = 60.0
    expected: str = "the request is answered (the client survives it)"  # evidence when the child dies


def _c(id: str, names: Iterable[str], run, client: str = CONFLUENT, isolated: bool = False,
       timeout_s: float = 60.0, expected: str | None = None) -> Check:
    if expected is None:
        return Check(id, tuple(names), client, run, isolated, timeout_s)
    return Check(id, tuple(names), client, run, isolated, timeout_s, expected)


CODEC_NAMES = tuple(f"compression-{codec}" for codec in data.CODECS)
_TXN_NAMES = ("transactions", "read-committed-hides-aborted", "transaction-markers-take-offsets", "read-uncommitted",
              "list-offsets-latest-after-transactions")
_GROUP_NAMES = ("group-join", "group-offset-commit", "group-offset-commit-metadata",
                "group-offset-commit-unknown-partition", "describe-groups", "list-groups",
                "group-offset-commit-active-refused", "group-rebalance", "delete-groups")
_LIST_OFFSETS = ("list-offsets-earliest", "list-offsets-latest", "list-offsets-by-timestamp")
_CONFIG_NAMES = ("create-topic-configs", "describe-configs", "describe-configs-defaults", "alter-configs",
                 "alter-configs-legacy")

CHECKS: tuple[Check, ...] = (
    _c("fidelity", ["produce-fetch-fidelity"], data.produce_fetch_fidelity),
    _c("compression", CODEC_NAMES, data.compression),
    _c("list-offsets", _LIST_OFFSETS, data.list_offsets),
    # Some platforms drop the connection on MAX_TIMESTAMP.
    _c("list-offsets-max-timestamp", ["list-offsets-max-timestamp"], data.list_offsets_max_timestamp, isolated=True,
       timeout_s=30, expected="ListOffsets MAX_TIMESTAMP answers offset 2 (the record with the largest timestamp)"),
    _c("offset-out-of-range", ["offset-out-of-range"], data.offset_out_of_range),
    _c("idempotent", ["idempotent-producer"], data.idempotent_producer),
    _c("transactions", _TXN_NAMES, data.transactions),
    _c("init-producer-id-old-versions", ["init-producer-id-old-versions"], wire.init_producer_id_old_versions, WIRE),
    _c("groups", _GROUP_NAMES, groups.groups),
    _c("inactive-group", ["group-offset-commit-inactive-admin", "describe-groups-empty"], groups.inactive_group_offsets),
    _c("configs", _CONFIG_NAMES, admin.topic_configs),
    _c("topic-validation", ["create-topic-validation"], admin.topic_validation),
    _c("log-append-time", ["config-log-append-time"], admin.log_append_time),
    _c("create-partitions", ["create-partitions"], admin.create_partitions),
    # DeleteRecords: some platforms drop the connection; run apart so a hang cannot stall the probe.
    _c("delete-records", ["delete-records"], admin.delete_records, isolated=True, timeout_s=30,
       expected="DeleteRecords before offset 2 moves the log start to 2"),
    _c("delete-topics", ["delete-topics"], admin.delete_topics),
    _c("auto-create-on-produce", ["auto-create-on-produce"], admin.auto_create_on_produce),
    _c("max-record-size", ["max-record-size"], admin.max_record_size),
    # confluent-kafka's create_acls aborts the whole process on some platforms (librdkafka assertion).
    _c("acl-api", ["acl-api"], admin.acl_api, isolated=True, timeout_s=30,
       expected="DescribeAcls and CreateAcls answer (or SECURITY_DISABLED when no authorizer is configured)"),
    _c("scram-api", ["scram-api"], admin.scram_api, isolated=True, timeout_s=30,
       expected="DescribeUserScramCredentials answers"),
    _c("produce-latency", ["produce-latency"], fresh.produce_latency),
    _c("end-to-end-latency", ["end-to-end-latency"], fresh.end_to_end_latency),
    _c("throughput", ["throughput"], fresh.throughput),
    _c("mirror-throughput", ["mirror-throughput"], mirror_checks.mirror_throughput, timeout_s=120),
    _c("kp-fidelity", ["produce-fetch-fidelity"], kp.fidelity, KAFKA_PYTHON),
    _c("kp-header-name-nul", ["header-name-nul"], kp.header_name_nul, KAFKA_PYTHON),
    _c("kp-compression", CODEC_NAMES, kp.compression, KAFKA_PYTHON),
    _c("kp-list-offsets", _LIST_OFFSETS, kp.list_offsets, KAFKA_PYTHON),
    _c("kp-idempotent", ["idempotent-producer"], kp.idempotent_producer, KAFKA_PYTHON),
    _c("kp-transactions", ("transactions", "read-committed-hides-aborted", "transaction-markers-take-offsets",
                           "read-uncommitted", "list-offsets-latest-after-transactions"), kp.transactions, KAFKA_PYTHON),
    _c("kp-groups", ("group-join", "group-offset-commit", "describe-groups", "list-groups",
                     "group-offset-commit-inactive-admin"), kp.groups, KAFKA_PYTHON),
    _c("kp-configs", ("create-topic-configs", "describe-configs", "describe-configs-defaults"), kp.topic_configs,
       KAFKA_PYTHON),
    _c("kp-create-partitions", ["create-partitions"], kp.create_partitions, KAFKA_PYTHON),
    _c("kp-delete-records", ["delete-records"], kp.delete_records, KAFKA_PYTHON, isolated=True, timeout_s=30,
       expected="delete_records before offset 2 moves the log start to 2"),
    _c("kp-acl-api", ["acl-api"], kp.acl_api, KAFKA_PYTHON, isolated=True, timeout_s=30,
       expected="describe_acls and create_acls answer (or SECURITY_DISABLED when no authorizer is configured)"),
    _c("kp-scram-api", ["scram-api"], kp.scram_api, KAFKA_PYTHON, isolated=True, timeout_s=30,
       expected="describe_user_scram_credentials answers"),
)
_BY_ID = {check.id: check for check in CHECKS}


def by_id(check_id: str) -> Check:
    """A catalogue entry, or a check given as `module:function` (checks kept outside the catalogue)."""
    if check_id in _BY_ID:
        return _BY_ID[check_id]
    module_name, _, function = check_id.partition(":")
    module = importlib.import_module(module_name)
    return Check(check_id, (function,), CONFLUENT, getattr(module, function))


def is_known(name: str) -> bool:
    return name in CHECK_NAMES or name.startswith("client-agreement-") and name[17:] in CHECK_NAMES


def validate_names(names: Iterable[str], what: str = "check") -> list[str]:
    """The names, or a UsageError naming the unknown ones and where to find the known ones."""
    names = [n.strip() for n in names if n and n.strip()]
    unknown = [n for n in names if not is_known(n)]
    if unknown:
        raise UsageError(f"unknown {what} name(s): {', '.join(unknown)}; "
                         f"known: {', '.join(CHECK_NAMES)}")
    return names


def select(only: Iterable[str] | None) -> tuple[list[Check], set[str] | None]:
    """The catalogue entries to run for `only` (all when None) and the result names to keep."""
    if not only:
        return list(CHECKS), None
    wanted = set(validate_names(only))
    base = {n[17:] if n.startswith("client-agreement-") else n for n in wanted}
    if "client-agreement" in base:
        base.discard("client-agreement")
        base |= {n for c in CHECKS if c.client == KAFKA_PYTHON for n in c.names}
    return [c for c in CHECKS if base & set(c.names)], base
