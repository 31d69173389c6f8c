"""The same checks with kafka-python, the other client estates use.

Where kafka-python has the API, the probe asks the same question through it, because two
clients can meet different answers from one platform (different request versions, different
handling of a dropped connection).  The runner compares the two clients' statuses and
reports any disagreement as a finding of its own.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.probe import data_checks
from migrate.probe.context import ProbeContext, Rec, Stopwatch, fetch_end, produce, result, short, verdict
from migrate.probe.model import FAIL, KAFKA_PYTHON, PASS, UNSUPPORTED, CheckResult

# librdkafka property -> kafka-python keyword, for the settings that decide whether we can connect.
_SETTINGS = {
    "bootstrap.servers": "bootstrap_servers",
    "client.id": "client_id",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
}


def settings(profile: ClusterProfile, role: str = "consumer") -> dict[str, Any]:
    config = profile.client_config(role)
    out: dict[str, Any] = {"request_timeout_ms": 15_000}
    for key, value in config.items():
        if key in _SETTINGS:
            out[_SETTINGS[key]] = value
    return out


def _consumer(ctx: ProbeContext, **extra: Any):
    from kafka import KafkaConsumer

    return KafkaConsumer(**settings(ctx.profile), enable_auto_commit=False, auto_offset_reset="earliest", **extra)


def _admin(ctx: ProbeContext):
    from kafka.admin import KafkaAdminClient

    # A platform that never answers a request it does not know would otherwise cost 15s per call.
    return KafkaAdminClient(**{**settings(ctx.profile, "admin"), "request_timeout_ms": 3_000})


def _status_of(exc: BaseException) -> tuple[str, str]:
    """kafka-python's ways of saying "not supported": a version error or a dropped connection."""
    from kafka import errors

    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (errors.UnsupportedVersionError, errors.IncompatibleBrokerVersion,
                        errors.KafkaConnectionError, errors.InvalidRequestError)):
        return UNSUPPORTED, text
    if isinstance(exc, errors.KafkaTimeoutError) and "connection" in str(exc).lower():
        return UNSUPPORTED, text
    return FAIL, text


def read(ctx: ProbeContext, topic: str, partition: int = 0, isolation: str = "read_uncommitted",
         timeout: float = 15.0) -> list:
    """Records of one partition up to the high watermark carried by Fetch responses."""
    from kafka import TopicPartition

    consumer = _consumer(ctx, isolation_level=isolation)
    tp = TopicPartition(topic, partition)
    out: list = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200, max_records=5000).values():
                out.extend(records)
            high = consumer.highwater(tp)
            if high is not None and consumer.position(tp) >= high:
                # read_committed stops at the last stable offset; the markers behind it are not records
                break
        return out
    finally:
        consumer.close()


def _summary(records: list) -> list[tuple]:
    return [(r.key, r.value, tuple((h[0], h[1]) for h in (r.headers or ())), (r.timestamp_type + 1, r.timestamp))
            for r in records]


def fidelity(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import KafkaProducer

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-fidelity")
    # kafka-python cannot send a null header value (it demands bytes): that header is left out.
    records = [replace(r, headers=tuple(h for h in r.headers if h[1] is not None) if r.headers else r.headers)
               for r in data_checks.fidelity_records(int(time.time() * 1000) - 3_600_000)]
    producer = KafkaProducer(**settings(ctx.profile, "producer"), linger_ms=5)
    try:
        for rec in records:
            producer.send(topic, value=rec.value, key=rec.key, partition=0,
                          headers=list(rec.headers) if rec.headers else None, timestamp_ms=rec.timestamp)
        producer.flush(15)
    finally:
        producer.close(5)
    got = _summary(read(ctx, topic))
    want = data_checks.expected_summary(records)
    return [verdict("produce-fetch-fidelity", KAFKA_PYTHON, got == want,
                    f"{len(want)} records back identical (written and read with kafka-python; "
                    "no null header value, which kafka-python cannot send)",
                    data_checks._difference(want, got), watch)]


NUL_HEADER = ("trace\x00id", b"span\x00value")


def header_name_nul(ctx: ProbeContext) -> list[CheckResult]:
    """A header name holding a NUL byte, written with kafka-python and read back with both clients.

    The platform may keep it; librdkafka (confluent-kafka, and so the mirror and the
    validators) returns such a name cut at the NUL, so neither can carry or notice it.
    """
    from kafka import KafkaProducer

    from migrate.probe.context import read as read_confluent

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-header-nul")
    producer = KafkaProducer(**settings(ctx.profile, "producer"), linger_ms=5)
    try:
        producer.send(topic, value=b"v", key=b"k", partition=0, headers=[NUL_HEADER])
        producer.flush(15)
    finally:
        producer.close(5)
    expected = f"header {NUL_HEADER[0]!r}: {NUL_HEADER[1]!r} read back byte-identical (kafka-python)"
    kept = [tuple(h) for r in read(ctx, topic) for h in (r.headers or ())]
    seen = [tuple(h) for m in read_confluent(ctx.profile, topic) for h in (m.headers() or ())]
    # The platform is judged by kafka-python; what librdkafka makes of it is a client limit,
    # stated in the evidence (every platform shows it), not a platform failure.
    note = ("" if seen == [NUL_HEADER] else
            f"; confluent-kafka (librdkafka) reads {seen!r}: it cuts header names at a NUL byte, so the mirror "
            "cannot copy such a name and the validators cannot see the difference (migrate assess flags topics "
            "that carry them)")
    return [verdict("header-name-nul", KAFKA_PYTHON, kept == [NUL_HEADER], expected,
                    f"kafka-python read {kept!r}{note}", watch)]


def compression(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import KafkaProducer

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-codecs", partitions=len(data_checks.CODECS))
    base_ts = int(time.time() * 1000) - 3_600_000
    out = []
    for partition, codec in enumerate(data_checks.CODECS):
        name = f"compression-{codec}"
        values = [f"{codec}-{i}-".encode() * 20 for i in range(50)]
        try:
            producer = KafkaProducer(**settings(ctx.profile, "producer"), linger_ms=20, compression_type=codec)
            try:
                for i, value in enumerate(values):
                    producer.send(topic, value=value, key=f"k{i}".encode(), partition=partition, timestamp_ms=base_ts + i)
                producer.flush(15)
            finally:
                producer.close(5)
            got = [r.value for r in read(ctx, topic, partition)]
        except Exception as exc:
            status, text = _status_of(exc)
            out.append(result(name, KAFKA_PYTHON, status, f"50 {codec} records back identical", text, watch))
            continue
        out.append(verdict(name, KAFKA_PYTHON, got == values, f"50 {codec}-compressed records back identical",
                           f"{len(got)} records read" + ("" if got == values else ", values differ"), watch))
    return out


def list_offsets(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import TopicPartition

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-list-offsets")
    base_ts = int(time.time() * 1000) - 3_600_000
    producer = kafka.producer(ctx.profile, **{"enable.idempotence": False, "linger.ms": 50})
    stamps = iter(range(base_ts, base_ts + 9_000, 1000))
    for size in (5, 1, 3):
        produce(ctx.profile, topic, [Rec(b"v", None, None, next(stamps)) for _ in range(size)], producer=producer)
    watch.lap()
    tp = TopicPartition(topic, 0)
    consumer = _consumer(ctx)
    out = []
    try:
        for name, call, want, expected in (
            ("list-offsets-earliest", lambda: consumer.beginning_offsets([tp])[tp], 0, "beginning_offsets = 0"),
            ("list-offsets-latest", lambda: consumer.end_offsets([tp])[tp], 9,
             "end_offsets = 9 after batches of 5, 1, 3 records"),
        ):
            try:
                got = call()
                out.append(verdict(name, KAFKA_PYTHON, got == want, expected, str(got), watch))
            except Exception as exc:
                status, text = _status_of(exc)
                out.append(result(name, KAFKA_PYTHON, status, expected, text, watch))
        lookups = [(base_ts + 1500, 2), (base_ts - 1, 0), (base_ts + 8000, 8), (base_ts + 60_000, None)]
        expected = "offsets_for_times: " + ", ".join(f"T=base{t - base_ts:+d}ms -> {w}" for t, w in lookups)
        try:
            answers = []
            for when, _ in lookups:
                found = consumer.offsets_for_times({tp: when})[tp]
                answers.append(found.offset if found is not None else None)
            ok = answers == [w for _, w in lookups]
            observed = ", ".join(f"T=base{t - base_ts:+d}ms -> {a}" for (t, _), a in zip(lookups, answers))
            out.append(verdict("list-offsets-by-timestamp", KAFKA_PYTHON, ok, expected, observed, watch))
        except Exception as exc:
            status, text = _status_of(exc)
            out.append(result("list-offsets-by-timestamp", KAFKA_PYTHON, status, expected, text, watch))
    finally:
        consumer.close()
    return out


def transactions(ctx: ProbeContext) -> list[CheckResult]:
    """Write the transaction pattern with kafka-python, then read it back with kafka-python."""
    from kafka import KafkaProducer, TopicPartition

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-transactions")
    out = []
    try:
        producer = KafkaProducer(**settings(ctx.profile, "producer"), transactional_id=ctx.scratch_name("kp-txn"),
                                 linger_ms=5)
        try:
            producer.init_transactions()
            for values, commit in (((b"c1", b"c2"), True), ((b"a1", b"a2"), False), ((b"c3",), True)):
                producer.begin_transaction()
                for value in values:
                    producer.send(topic, value=value, partition=0)
                producer.flush(15)
                producer.commit_transaction() if commit else producer.abort_transaction()
        finally:
            producer.close(5)
        out.append(result("transactions", KAFKA_PYTHON, PASS, f"{data_checks.TXN_PATTERN} succeeds",
                          "init, commit, abort, commit succeeded", watch))
    except Exception as exc:
        status, text = _status_of(exc)
        out.append(result("transactions", KAFKA_PYTHON, status, f"{data_checks.TXN_PATTERN} succeeds", text, watch))
        topic = ctx.scratch_topic("kp-transactions-ck")
        data_checks.write_transactions(ctx, topic)  # read the pattern written by the other client instead
    committed = [r.value.decode() for r in read(ctx, topic, isolation="read_committed")]
    uncommitted = [(r.value.decode(), r.offset) for r in read(ctx, topic, isolation="read_uncommitted")]
    out.append(verdict("read-committed-hides-aborted", KAFKA_PYTHON, committed == ["c1", "c2", "c3"],
                       "read_committed reads c1, c2, c3 (aborted a1, a2 hidden)", ", ".join(committed) or "nothing", watch))
    out.append(verdict("read-uncommitted", KAFKA_PYTHON,
                       uncommitted == [("c1", 0), ("c2", 1), ("a1", 3), ("a2", 4), ("c3", 6)],
                       "read_uncommitted reads c1@0 c2@1 a1@3 a2@4 c3@6",
                       " ".join(f"{v}@{o}" for v, o in uncommitted) or "nothing", watch))
    end = fetch_end(ctx.profile, topic)
    out.append(verdict("transaction-markers-take-offsets", KAFKA_PYTHON,
                       [o for _, o in uncommitted] == [0, 1, 3, 4, 6] and end == 8,
                       "records at offsets 0,1,3,4,6 (markers at 2,5,7), end 8",
                       f"offsets {','.join(str(o) for _, o in uncommitted)}, end {end} (Fetch)", watch))
    tp = TopicPartition(topic, 0)
    ends = []
    for isolation in ("read_uncommitted", "read_committed"):
        consumer = _consumer(ctx, isolation_level=isolation)
        try:
            ends.append(consumer.end_offsets([tp])[tp])
        except Exception as exc:
            status, text = _status_of(exc)
            out.append(result("list-offsets-latest-after-transactions", KAFKA_PYTHON, status,
                              "end_offsets = 8 (read_uncommitted and read_committed)", text, watch))
            return out
        finally:
            consumer.close()
    out.append(verdict("list-offsets-latest-after-transactions", KAFKA_PYTHON, ends == [8, 8],
                       "end_offsets = 8 (read_uncommitted and read_committed)",
                       f"read_uncommitted {ends[0]}, read_committed {ends[1]}", watch))
    return out


def groups(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import TopicPartition

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-groups")
    produce(ctx.profile, topic, [Rec(b"v") for _ in range(5)])
    group = ctx.scratch_name("kp-group")
    tp = TopicPartition(topic, 0)
    out = []
    watch.lap()
    consumer = _consumer(ctx, group_id=group, session_timeout_ms=6000, heartbeat_interval_ms=500)
    admin = _admin(ctx)
    try:
        consumer.subscribe([topic])
        started = time.monotonic()
        while not consumer.assignment() and time.monotonic() < started + 30:
            consumer.poll(timeout_ms=100)
        joined = time.monotonic() - started if consumer.assignment() else None
        out.append(verdict("group-join", KAFKA_PYTHON, joined is not None,
                           "a new group's first member gets the partition (session_timeout_ms=6000)",
                           f"joined in {joined:.2f}s" if joined is not None else "no assignment in 30s", watch))
        if joined is None:
            return out
        out.append(_commit(consumer, tp, watch))
        out.append(_describe_groups(admin, group, watch))
        out.append(_list_groups(admin, group, watch))
    finally:
        consumer.close()
    out.append(_inactive_admin(ctx, admin, topic, watch))
    admin.close()
    return out


def _commit(consumer, tp, watch: Stopwatch, attempts: int = 3) -> CheckResult:
    """Commit 3 and read it back; on a busy machine a rebalance can swallow one attempt, so
    a few are allowed and the evidence says how many it took."""
    from kafka.structs import OffsetAndMetadata

    expected = "commit offset 3, committed() answers 3"
    answers = []
    try:
        for _ in range(attempts):
            consumer.poll(timeout_ms=100)  # lets a pending rejoin finish before committing
            consumer.commit({tp: OffsetAndMetadata(3, "probe-metadata", -1)})
            answers.append(consumer.committed(tp))
            if answers[-1] == 3:
                break
    except Exception as exc:
        status, text = _status_of(exc)
        return result("group-offset-commit", KAFKA_PYTHON, status, expected, text, watch)
    observed = f"committed offset {answers[-1]}"
    if len(answers) > 1:
        observed += f" (attempt {len(answers)}; earlier answers {answers[:-1]})"
    return verdict("group-offset-commit", KAFKA_PYTHON, answers[-1] == 3, expected, observed, watch)


def _describe_groups(admin, group: str, watch: Stopwatch) -> CheckResult:
    expected = "describe_groups: the active group is Stable with 1 member"
    try:
        described = admin.describe_groups([group])
        info = described[group] if isinstance(described, dict) else described[0]
        state = info.get("group_state") if isinstance(info, dict) else getattr(info, "state", None)
        members = info.get("members") if isinstance(info, dict) else getattr(info, "members", None)
        ok = str(state).lower() == "stable" and len(members or []) == 1
        return verdict("describe-groups", KAFKA_PYTHON, ok, expected, f"state {state}, {len(members or [])} members", watch)
    except Exception as exc:
        status, text = _status_of(exc)
        return result("describe-groups", KAFKA_PYTHON, status, expected, short(text), watch)


def _list_groups(admin, group: str, watch: Stopwatch) -> CheckResult:
    expected = "list_groups lists the active group as Stable"
    try:
        listed = {g.get("group_id"): g for g in admin.list_groups() if isinstance(g, dict)}
        state = listed[group].get("group_state") if group in listed else None
        return verdict("list-groups", KAFKA_PYTHON, str(state).lower() == "stable", expected,
                       f"listed, state {state}" if group in listed else f"not listed among {len(listed)} groups", watch)
    except Exception as exc:
        status, text = _status_of(exc)
        return result("list-groups", KAFKA_PYTHON, status, expected, short(text), watch)


def _inactive_admin(ctx: ProbeContext, admin, topic: str, watch: Stopwatch) -> CheckResult:
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    group = ctx.scratch_name("kp-synced")
    tp = TopicPartition(topic, 0)
    expected = "alter_group_offsets on a group with no members sets 4; list_group_offsets answers 4"
    try:
        answer = admin.alter_group_offsets(group, {tp: OffsetAndMetadata(4, "", -1)})
        errors = [f"{p.partition}: {e.__name__}" for p, e in answer.items() if getattr(e, "errno", 0)]
        fetched = admin.list_group_offsets({group: [tp]})[group]
        got = fetched[tp].offset if tp in fetched else None
    except Exception as exc:
        status, text = _status_of(exc)
        return result("group-offset-commit-inactive-admin", KAFKA_PYTHON, status, expected, text, watch)
    return verdict("group-offset-commit-inactive-admin", KAFKA_PYTHON, not errors and got == 4, expected,
                   f"errors {errors}" if errors else f"offset {got}", watch)


def create_partitions(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-partitions")
    expected = "create_partitions grows a topic from 1 to 3 partitions"
    admin = _admin(ctx)
    try:
        admin.create_partitions({topic: 3})
        kafka.wait_for_topic(ctx.profile, topic, 3, timeout=10)
    except Exception as exc:
        status, text = _status_of(exc)
        return [result("create-partitions", KAFKA_PYTHON, status, expected, text, watch)]
    finally:
        admin.close()
    return [result("create-partitions", KAFKA_PYTHON, PASS, expected, "3 partitions", watch)]


def delete_records(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import TopicPartition

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-delete-records")
    produce(ctx.profile, topic, [Rec(str(i).encode()) for i in range(5)])
    expected = "delete_records before offset 2 moves the log start to 2"
    tp = TopicPartition(topic, 0)
    admin = _admin(ctx)
    consumer = _consumer(ctx)
    try:
        admin.delete_records({tp: 2}, timeout_ms=10_000)
        low = consumer.beginning_offsets([tp])[tp]
    except Exception as exc:
        status, text = _status_of(exc)
        return [result("delete-records", KAFKA_PYTHON, status, expected, text, watch)]
    finally:
        admin.close()
        consumer.close()
    return [verdict("delete-records", KAFKA_PYTHON, low == 2, expected, f"log start {low}", watch)]


def acl_api(ctx: ProbeContext) -> list[CheckResult]:
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePattern, ResourcePatternFilter, ResourceType)

    watch = Stopwatch()
    expected = "describe_acls and create_acls answer (or SECURITY_DISABLED when no authorizer is configured)"
    admin = _admin(ctx)
    try:
        everything = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
        acls, error = admin.describe_acls(everything)
        name = getattr(error, "__name__", type(error).__name__)
        if getattr(error, "errno", 0) not in (0, 54):  # NoError, SecurityDisabled
            return [result("acl-api", KAFKA_PYTHON, FAIL, expected, f"describe: {name}", watch)]
        steps = [f"describe: {len(acls)} ACLs ({name})"]
        acl = ACL(principal="User:migrate-probe", host="*", operation=ACLOperation.READ,
                  permission_type=ACLPermissionType.ALLOW,
                  resource_pattern=ResourcePattern(ResourceType.TOPIC, f"{ctx.prefix}acl", ACLResourcePatternType.LITERAL))
        answer = admin.create_acls([acl])
        failed = answer.get("failed") or [] if isinstance(answer, dict) else []
        errors = {type(e[1]).__name__ if isinstance(e, tuple) else str(e) for e in failed}
        # No authorizer, or one that refuses us: either way the API is there and answered.
        if failed and not errors <= {"SecurityDisabledError", "ClusterAuthorizationFailedError"}:
            return [result("acl-api", KAFKA_PYTHON, FAIL, expected, "; ".join(steps + [f"create: {sorted(errors)}"]), watch)]
        if not failed:  # an ACL was really created: take it away again
            admin.delete_acls([ACLFilter(principal="User:migrate-probe", host="*", operation=ACLOperation.ANY,
                                         permission_type=ACLPermissionType.ANY,
                                         resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, f"{ctx.prefix}acl",
                                                                                ACLResourcePatternType.LITERAL))])
        steps.append(f"create: present ({', '.join(sorted(errors))})" if failed else "create: ok")
        return [result("acl-api", KAFKA_PYTHON, PASS, expected, "; ".join(steps), watch)]
    except Exception as exc:
        if type(exc).__name__ == "SecurityDisabledError":
            return [result("acl-api", KAFKA_PYTHON, PASS, expected, "present (SecurityDisabledError)", watch)]
        status, text = _status_of(exc)
        return [result("acl-api", KAFKA_PYTHON, status, expected, text, watch)]
    finally:
        admin.close()


def scram_api(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    expected = "describe_user_scram_credentials answers"
    admin = _admin(ctx)
    try:
        answer = admin.describe_user_scram_credentials()
        return [result("scram-api", KAFKA_PYTHON, PASS, expected, f"answered: {short(answer, 80)}", watch)]
    except Exception as exc:
        if type(exc).__name__ == "SecurityDisabledError":
            return [result("scram-api", KAFKA_PYTHON, PASS, expected, "present (SecurityDisabledError)", watch)]
        status, text = _status_of(exc)
        return [result("scram-api", KAFKA_PYTHON, status, expected, text, watch)]
    finally:
        admin.close()


def idempotent_producer(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import KafkaProducer

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-idempotent")
    expected = "idempotent producer writes 200 records in order, no duplicates, offsets 0..199"
    try:
        producer = KafkaProducer(**settings(ctx.profile, "producer"), enable_idempotence=True, acks="all", linger_ms=5)
        try:
            futures = [producer.send(topic, value=str(i).encode(), partition=0) for i in range(200)]
            producer.flush(15)
            offsets = [f.get(timeout=15).offset for f in futures]
        finally:
            producer.close(5)
        values = [r.value for r in read(ctx, topic)]
    except Exception as exc:
        status, text = _status_of(exc)
        return [result("idempotent-producer", KAFKA_PYTHON, status, expected, text, watch)]
    ok = values == [str(i).encode() for i in range(200)] and offsets == list(range(200))
    return [verdict("idempotent-producer", KAFKA_PYTHON, ok, expected,
                    f"{len(values)} records read, offsets {min(offsets, default=-1)}..{max(offsets, default=-1)}", watch)]


def topic_configs(ctx: ProbeContext) -> list[CheckResult]:
    """Create with the mirrored configs and describe them, through kafka-python's admin client."""
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    from migrate.probe.admin_checks import MIRRORED_TOPIC_CONFIGS

    watch = Stopwatch()
    admin = _admin(ctx)
    topic, plain = ctx.scratch_name("kp-configs"), ctx.scratch_name("kp-defaults")
    expected = f"{len(MIRRORED_TOPIC_CONFIGS)} configs set at creation are stored"
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs=dict(MIRRORED_TOPIC_CONFIGS)), NewTopic(plain, 1, 1)])
        kafka.wait_for_topic(ctx.profile, topic, 1)
        kafka.wait_for_topic(ctx.profile, plain, 1)
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic),
                                            ConfigResource(ConfigResourceType.TOPIC, plain)], config_filter="all")
    except Exception as exc:
        status, text = _status_of(exc)
        return [result("create-topic-configs", KAFKA_PYTHON, status, expected, text, watch)]
    finally:
        admin.close()
    entries, defaults = described["topic"][topic], described["topic"][plain]
    wrong = {k: entries.get(k, {}).get("value") for k, v in MIRRORED_TOPIC_CONFIGS.items()
             if entries.get(k, {}).get("value") != v}
    out = [verdict("create-topic-configs", KAFKA_PYTHON, not wrong, expected,
                   f"all {len(MIRRORED_TOPIC_CONFIGS)} stored" if not wrong else f"differs: {short(wrong)}", watch)]
    sources = sorted({entries[k]["config_source"] for k in MIRRORED_TOPIC_CONFIGS if k in entries})
    out.append(verdict("describe-configs", KAFKA_PYTHON, not wrong and sources == ["DYNAMIC_TOPIC_CONFIG"],
                       "describe_configs returns each set key with its value, source DYNAMIC_TOPIC_CONFIG",
                       f"{len(entries)} entries; sources of set keys {sources}", watch))
    missing = [k for k in ("retention.ms", "cleanup.policy", "max.message.bytes", "segment.bytes") if k not in defaults]
    out.append(verdict("describe-configs-defaults", KAFKA_PYTHON, not missing,
                       "describe_configs of a topic created without configs reports defaults",
                       f"{len(defaults)} entries" + (f"; missing {missing}" if missing else ""), watch))
    return out
