"""Admin checks with kafka-python: create partitions, delete records, the ACL and SCRAM APIs,
topic configs set at creation and described (with defaults).  The same questions as
`admin_checks`, asked through the other client.
"""

from __future__ import annotations

from migrate import kafka
from migrate.probe.context import ProbeContext, Rec, Stopwatch, produce, result, short, verdict
from migrate.probe.kafka_python_client import make_admin, make_consumer, status_of
from migrate.probe.model import FAIL, KAFKA_PYTHON, PASS, CheckResult


def create_partitions(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-partitions")
    expected = "create_partitions grows a topic from 1 to 3 partitions"
    admin = make_admin(ctx)
    try:
        admin.create_partitions({topic: 3})
        kafka.wait_for_topic(ctx.profile, topic, 3, timeout=10)
    except Exception as exc:
        status, text = status_of(exc)
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
    admin = make_admin(ctx)
    consumer = make_consumer(ctx)
    try:
        admin.delete_records({tp: 2}, timeout_ms=10_000)
        low = consumer.beginning_offsets([tp])[tp]
    except Exception as exc:
        status, text = status_of(exc)
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
    admin = make_admin(ctx)
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
        status, text = status_of(exc)
        return [result("acl-api", KAFKA_PYTHON, status, expected, text, watch)]
    finally:
        admin.close()


def scram_api(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    expected = "describe_user_scram_credentials answers"
    admin = make_admin(ctx)
    try:
        answer = admin.describe_user_scram_credentials()
        return [result("scram-api", KAFKA_PYTHON, PASS, expected, f"answered: {short(answer, 80)}", watch)]
    except Exception as exc:
        if type(exc).__name__ == "SecurityDisabledError":
            return [result("scram-api", KAFKA_PYTHON, PASS, expected, "present (SecurityDisabledError)", watch)]
        status, text = status_of(exc)
        return [result("scram-api", KAFKA_PYTHON, status, expected, text, watch)]
    finally:
        admin.close()


def topic_configs(ctx: ProbeContext) -> list[CheckResult]:
    """Create with the mirrored configs and describe them, through kafka-python's admin client."""
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    from migrate.probe.admin_checks import MIRRORED_TOPIC_CONFIGS

    watch = Stopwatch()
    admin = make_admin(ctx)
    topic, plain = ctx.scratch_name("kp-configs"), ctx.scratch_name("kp-defaults")
    expected = f"{len(MIRRORED_TOPIC_CONFIGS)} configs set at creation are stored"
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs=dict(MIRRORED_TOPIC_CONFIGS)), NewTopic(plain, 1, 1)])
        kafka.wait_for_topic(ctx.profile, topic, 1)
        kafka.wait_for_topic(ctx.profile, plain, 1)
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic),
                                            ConfigResource(ConfigResourceType.TOPIC, plain)], config_filter="all")
    except Exception as exc:
        status, text = status_of(exc)
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
