"""Consumer-group checks with kafka-python: a group joins, commits and reads back its offset,
is described and listed as Stable; offsets of a group with no members are set by the admin
client.  The same questions as `group_checks`, asked through the other client.
"""

from __future__ import annotations

import time

from migrate.probe.context import ProbeContext, Rec, Stopwatch, produce, result, short, verdict
from migrate.probe.kafka_python_client import make_admin, make_consumer, status_of
from migrate.probe.model import KAFKA_PYTHON, CheckResult


def groups(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import TopicPartition

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-groups")
    produce(ctx.profile, topic, [Rec(b"v") for _ in range(5)])
    group = ctx.scratch_name("kp-group")
    tp = TopicPartition(topic, 0)
    out = []
    watch.lap()
    consumer = make_consumer(ctx, group_id=group, session_timeout_ms=6000, heartbeat_interval_ms=500)
    admin = make_admin(ctx)
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
        status, text = status_of(exc)
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
        status, text = status_of(exc)
        return result("describe-groups", KAFKA_PYTHON, status, expected, short(text), watch)


def _list_groups(admin, group: str, watch: Stopwatch) -> CheckResult:
    expected = "list_groups lists the active group as Stable"
    try:
        listed = {g.get("group_id"): g for g in admin.list_groups() if isinstance(g, dict)}
        state = listed[group].get("group_state") if group in listed else None
        return verdict("list-groups", KAFKA_PYTHON, str(state).lower() == "stable", expected,
                       f"listed, state {state}" if group in listed else f"not listed among {len(listed)} groups", watch)
    except Exception as exc:
        status, text = status_of(exc)
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
        status, text = status_of(exc)
        return result("group-offset-commit-inactive-admin", KAFKA_PYTHON, status, expected, text, watch)
    return verdict("group-offset-commit-inactive-admin", KAFKA_PYTHON, not errors and got == 4, expected,
                   f"errors {errors}" if errors else f"offset {got}", watch)
