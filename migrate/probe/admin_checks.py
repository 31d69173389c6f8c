"""Checks of topic administration, limits and security APIs with confluent-kafka.

Some of these requests make a platform hang up or make the client library abort the whole
process (ACLs, DeleteRecords, SCRAM on some platforms): the registry marks those checks to
run isolated in a child process, so here they are written plainly.
"""

from __future__ import annotations

import time
import warnings

from confluent_kafka import TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AlterConfigOpType,
                                   ConfigEntry, ConfigResource, ConfigSource, NewPartitions, NewTopic, OffsetSpec, ResourcePatternType,
                                   ResourceType)

from migrate import kafka
from migrate.probe.context import ProbeContext, Rec, Stopwatch, classify, produce, read, result, short, verdict
from migrate.probe.model import CONFLUENT, PASS, CheckResult

# Topic configs a mirror copies to the target (the usual MirrorMaker 2 allow-list shape):
# the probe creates a topic with all of them and expects each one back.
MIRRORED_TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "retention.ms": "604800001",
    "retention.bytes": "1073741825",
    "max.message.bytes": "2097153",
    "min.compaction.lag.ms": "1001",
    "max.compaction.lag.ms": "86400001",
    "delete.retention.ms": "86400002",
    "message.timestamp.type": "CreateTime",
    "compression.type": "producer",
}
RECORD_SIZES = (512 * 1024, 1_000_000, 2 * 1024 * 1024, 8 * 1024 * 1024)


def _describe(ctx: ProbeContext, topic: str) -> dict[str, ConfigEntry]:
    client = kafka.admin(ctx.profile)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return client.describe_configs([resource], request_timeout=10)[resource].result(15)


def topic_configs(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    out = []
    expected = f"{len(MIRRORED_TOPIC_CONFIGS)} configs set at creation (cleanup.policy=compact, retention.*, ...) are stored"
    try:
        topic = ctx.scratch_topic("configs", configs=MIRRORED_TOPIC_CONFIGS)
        entries = _describe(ctx, topic)
    except Exception as exc:
        status, text = classify(exc)
        return [result("create-topic-configs", CONFLUENT, status, expected, text, watch)]
    wrong = {k: (entries[k].value if k in entries else None) for k, v in MIRRORED_TOPIC_CONFIGS.items()
             if k not in entries or entries[k].value != v}
    out.append(verdict("create-topic-configs", CONFLUENT, not wrong, expected,
                       f"all {len(MIRRORED_TOPIC_CONFIGS)} stored" if not wrong else f"differs: {short(wrong)}", watch))
    sources = {k: getattr(entries[k], "source", None) for k in MIRRORED_TOPIC_CONFIGS if k in entries}
    not_marked = [k for k, e in entries.items() if k in MIRRORED_TOPIC_CONFIGS and e.is_default]
    out.append(verdict("describe-configs", CONFLUENT, not wrong and not not_marked,
                       "DescribeConfigs returns each set key with its value, marked as not default",
                       f"{len(entries)} entries; set keys marked default: {not_marked or 'none'}; "
                       f"sources {sorted({_source_name(s) for s in sources.values()})}", watch))
    out.extend(_defaults(ctx, watch))
    out.extend(_alter(ctx, topic, watch))
    return out


def _source_name(source: object) -> str:
    try:
        return ConfigSource(source).name
    except ValueError:
        return str(source)


def _defaults(ctx: ProbeContext, watch: Stopwatch) -> list[CheckResult]:
    expected = "DescribeConfigs of a topic created without configs reports defaults (retention.ms, cleanup.policy, ...)"
    try:
        entries = _describe(ctx, ctx.scratch_topic("defaults"))
    except Exception as exc:
        status, text = classify(exc)
        return [result("describe-configs-defaults", CONFLUENT, status, expected, text, watch)]
    wanted = ("retention.ms", "cleanup.policy", "max.message.bytes", "segment.bytes")
    missing = [k for k in wanted if k not in entries]
    return [verdict("describe-configs-defaults", CONFLUENT, not missing, expected,
                    f"{len(entries)} entries" + (f"; missing {missing}" if missing else ""), watch)]


def _alter(ctx: ProbeContext, topic: str, watch: Stopwatch) -> list[CheckResult]:
    out = []
    client = kafka.admin(ctx.profile)
    expected = "IncrementalAlterConfigs SET retention.ms=3600000 shows in DescribeConfigs"
    try:
        entry = ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
        client.incremental_alter_configs([resource], request_timeout=10)[resource].result(15)
        got = _wait_for_value(ctx, topic, "retention.ms", "3600000")
        out.append(verdict("alter-configs", CONFLUENT, got == "3600000", expected, f"retention.ms={got}", watch))
    except Exception as exc:
        status, text = classify(exc)
        out.append(result("alter-configs", CONFLUENT, status, expected, text, watch))
    expected = "legacy AlterConfigs sets retention.ms=7200000 (and shows in DescribeConfigs)"
    try:
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.ms": "7200000"})
        with warnings.catch_warnings():  # the deprecated request is the point of this check
            warnings.simplefilter("ignore", DeprecationWarning)
            futures = client.alter_configs([resource], request_timeout=10)
        futures[resource].result(15)
        got = _wait_for_value(ctx, topic, "retention.ms", "7200000")
        out.append(verdict("alter-configs-legacy", CONFLUENT, got == "7200000", expected, f"retention.ms={got}", watch))
    except Exception as exc:
        status, text = classify(exc)
        out.append(result("alter-configs-legacy", CONFLUENT, status, expected, text, watch))
    return out


def _wait_for_value(ctx: ProbeContext, topic: str, key: str, want: str, timeout: float = 5.0) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        entry = _describe(ctx, topic).get(key)
        got = entry.value if entry else None
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def topic_validation(ctx: ProbeContext) -> list[CheckResult]:
    """A platform that creates what Kafka refuses lets mistakes through silently."""
    watch = Stopwatch()
    client = kafka.admin(ctx.profile)
    answers = []
    for label, topic, kwargs in (
        ("invalid name", f"{ctx.prefix}bad name!", {}),
        ("replication factor 99", ctx.scratch_name("rf"), {"replication_factor": 99}),
        ("validate_only", ctx.scratch_name("validate"), {"validate_only": True}),
    ):
        new = NewTopic(topic, 1, kwargs.get("replication_factor", -1))
        try:
            client.create_topics([new], request_timeout=10, validate_only=kwargs.get("validate_only", False))[topic].result(15)
            created = topic in kafka.list_topics(ctx.profile)
            answers.append((label, "created" if created else "accepted, not created"))
        except Exception as exc:
            err = kafka.error_of(exc)
            answers.append((label, f"refused ({err.name() if err else type(exc).__name__})"))
    ok = answers[0][1].startswith("refused") and answers[1][1].startswith("refused") and answers[2][1] != "created"
    return [verdict("create-topic-validation", CONFLUENT, ok,
                    "invalid name and replication factor 99 refused; validate_only creates nothing",
                    "; ".join(f"{label}: {answer}" for label, answer in answers), watch)]


def log_append_time(ctx: ProbeContext) -> list[CheckResult]:
    """message.timestamp.type=LogAppendTime must replace the producer's timestamp (configs applied, not only stored)."""
    watch = Stopwatch()
    topic = ctx.scratch_topic("log-append-time", configs={"message.timestamp.type": "LogAppendTime"})
    old = int(time.time() * 1000) - 3_600_000
    before = int(time.time() * 1000)
    produce(ctx.profile, topic, [Rec(b"v", timestamp=old)])
    messages = read(ctx.profile, topic)
    stamp = messages[0].timestamp() if messages else None
    ok = stamp is not None and stamp[0] == 2 and stamp[1] >= before - 1000
    kinds = {0: "none", 1: "CreateTime", 2: "LogAppendTime"}
    observed = (f"timestamp type {kinds.get(stamp[0], stamp[0])}, {stamp[1] - before:+d} ms from the write"
                if stamp else "no record")
    return [verdict("config-log-append-time", CONFLUENT, ok,
                    "a topic with message.timestamp.type=LogAppendTime stamps records with the broker's time",
                    observed, watch)]


def create_partitions(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("partitions")
    expected = "CreatePartitions grows a topic from 1 to 3 partitions"
    try:
        client = kafka.admin(ctx.profile)
        client.create_partitions([NewPartitions(topic, 3)], request_timeout=10)[topic].result(15)
        kafka.wait_for_topic(ctx.profile, topic, 3, timeout=10)
    except Exception as exc:
        status, text = classify(exc)
        return [result("create-partitions", CONFLUENT, status, expected, text, watch)]
    return [result("create-partitions", CONFLUENT, PASS, expected, "3 partitions", watch)]


def delete_records(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("delete-records")
    produce(ctx.profile, topic, [Rec(str(i).encode()) for i in range(5)])
    expected = "DeleteRecords before offset 2 moves the log start to 2"
    tp = TopicPartition(topic, 0, 2)
    try:
        client = kafka.admin(ctx.profile)
        client.delete_records([tp], request_timeout=10)[tp].result(15)
        futures = client.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()}, request_timeout=10)
        low = futures[TopicPartition(topic, 0)].result(15).offset
    except Exception as exc:
        status, text = classify(exc)
        return [result("delete-records", CONFLUENT, status, expected, text, watch)]
    return [verdict("delete-records", CONFLUENT, low == 2, expected, f"log start {low}", watch)]


def delete_topics(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("delete-topic")
    expected = "DeleteTopics removes the topic from metadata"
    try:
        kafka.delete_topics(ctx.profile, [topic])
        deadline = time.monotonic() + 10
        with kafka.AdminSession(ctx.profile) as session:
            while topic in session.list_topics() and time.monotonic() < deadline:
                time.sleep(0.1)
            gone = topic not in session.list_topics()
    except Exception as exc:
        status, text = classify(exc)
        return [result("delete-topics", CONFLUENT, status, expected, text, watch)]
    return [verdict("delete-topics", CONFLUENT, gone, expected, "gone" if gone else "still listed after 10s", watch)]


def max_record_size(ctx: ProbeContext) -> list[CheckResult]:
    """Largest record accepted by a topic with default settings (Kafka's default is about 1 MB)."""
    watch = Stopwatch()
    topic = ctx.scratch_topic("max-record")
    accepted, refused = 0, ""
    for size in RECORD_SIZES:
        try:
            produce(ctx.profile, topic, [Rec(b"x" * size)], timeout=30,
                    **{"message.max.bytes": 32 * 1024 * 1024, "compression.type": "none"})
            accepted = size
        except Exception as exc:
            refused = f"{size} B refused ({kafka.describe_error(exc).split(':')[0]})"
            break
    observed = f"largest accepted {accepted} B" + (f"; {refused}" if refused else " (largest tried)")
    return [verdict("max-record-size", CONFLUENT, accepted >= 1_000_000,
                    "a 1,000,000 B record is accepted with default topic settings (figure: largest accepted)",
                    observed, watch)]


def acl_api(ctx: ProbeContext) -> list[CheckResult]:
    """DescribeAcls and CreateAcls answer (SECURITY_DISABLED counts: the API is there, no authorizer)."""
    watch = Stopwatch()
    expected = "DescribeAcls and CreateAcls answer (or SECURITY_DISABLED when no authorizer is configured)"
    client = kafka.admin(ctx.profile)
    steps = []
    try:
        # None matches any value in a filter (AclBindingFilter's docs); its stub keeps AclBinding's str
        everything = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
            AclOperation.ANY, AclPermissionType.ANY)
        found = client.describe_acls(everything, request_timeout=10).result(15)
        steps.append(f"describe: {len(found)} ACLs")
    except Exception as exc:
        status, text = _security_answer(exc)
        if status != PASS:
            return [result("acl-api", CONFLUENT, status, expected, f"describe: {text}", watch)]
        steps.append(f"describe: {text}")
    binding = AclBinding(ResourceType.TOPIC, f"{ctx.prefix}acl", ResourcePatternType.LITERAL, "User:migrate-probe",
                         "*", AclOperation.READ, AclPermissionType.ALLOW)
    try:
        client.create_acls([binding], request_timeout=10)[binding].result(15)
        steps.append("create: ok")
        client.delete_acls([AclBindingFilter(ResourceType.TOPIC, f"{ctx.prefix}acl", ResourcePatternType.LITERAL,
                                             None, None,  # type: ignore[arg-type]  # None: any (as above)
                                             AclOperation.ANY, AclPermissionType.ANY)],
                           request_timeout=10)
    except Exception as exc:
        status, text = _security_answer(exc)
        if status != PASS:
            return [result("acl-api", CONFLUENT, status, expected, "; ".join(steps + [f"create: {text}"]), watch)]
        steps.append(f"create: {text}")
    return [result("acl-api", CONFLUENT, PASS, expected, "; ".join(steps), watch)]


def _security_answer(exc: BaseException) -> tuple[str, str]:
    err = kafka.error_of(exc)
    if err is not None and err.name() in ("SECURITY_DISABLED", "CLUSTER_AUTHORIZATION_FAILED"):
        return PASS, f"present ({err.name()})"
    return classify(exc)


def scram_api(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    expected = "DescribeUserScramCredentials answers (SCRAM users can be managed through the API)"
    try:
        client = kafka.admin(ctx.profile)  # must outlive the future
        # without `users` the stub's Future-or-dict answer is one Future
        users = client.describe_user_scram_credentials(request_timeout=10).result(15)  # type: ignore[union-attr]
    except Exception as exc:
        status, text = _security_answer(exc)
        return [result("scram-api", CONFLUENT, status, expected, text, watch)]
    return [result("scram-api", CONFLUENT, PASS, expected, f"answered: {len(users)} users", watch)]


def auto_create_on_produce(ctx: ProbeContext) -> list[CheckResult]:
    """Figure: does producing to an unknown topic create it, and with how many partitions?

    Kafka does so when `auto.create.topics.enable` is on, with `num.partitions` partitions; a
    mirror or a playbook must create its topics explicitly rather than rely on either answer.
    """
    watch = Stopwatch()
    topic = ctx.scratch_name("auto-create")
    expected = "figure: whether a produce to an unknown topic creates it, and its partition count"
    try:
        produce(ctx.profile, topic, [Rec(b"v", partition=-1)], timeout=10, **{"message.timeout.ms": 5000})
    except Exception as exc:
        return [result("auto-create-on-produce", CONFLUENT, PASS, expected,
                       f"not auto-created ({kafka.describe_error(exc).split(':')[0]})", watch)]
    found = kafka.list_topics(ctx.profile).get(topic)
    plural = "" if found and found.partitions == 1 else "s"
    observed = f"auto-created with {found.partitions} partition{plural}" if found else "accepted, topic not listed"
    return [result("auto-create-on-produce", CONFLUENT, PASS, expected, observed, watch)]
