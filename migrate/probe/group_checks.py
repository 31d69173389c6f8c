"""Checks of consumer groups with confluent-kafka: join, rebalance, commits, admin.

One live group walks through what an estate relies on (join, commit, describe, list, a
second member joining, deletion being refused while members are joined), and one group
that never had members takes offsets through the admin API, which is how `offsets sync`
writes translated positions.  Join and rebalance times are reported as figures.
"""

from __future__ import annotations

import time

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from migrate import kafka
from migrate.probe.context import GROUP_SESSION_TIMEOUT_MS, ProbeContext, Rec, Stopwatch, classify, produce, result, verdict
from migrate.probe.model import CONFLUENT, CheckResult

JOIN_DEADLINE = 30.0


class _Member:
    """A subscribed consumer and the partitions it currently owns."""

    def __init__(self, ctx: ProbeContext, group: str, topic: str):
        self.owned: set[int] = set()
        self.client = kafka.consumer(ctx.profile, **{"group.id": group, "auto.offset.reset": "earliest",
                                                    **ctx.group_settings()})
        self.client.subscribe([topic], on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, _consumer, partitions) -> None:
        self.owned = {tp.partition for tp in partitions}

    def _revoked(self, _consumer, partitions) -> None:
        self.owned -= {tp.partition for tp in partitions}

    def poll(self) -> None:
        self.client.poll(0.05)


def _poll_until(members: list[_Member], done, deadline: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() < started + deadline:
        for member in members:
            member.poll()
        if done():
            return time.monotonic() - started
    return None


def groups(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("groups", partitions=2)
    produce(ctx.profile, topic, [Rec(b"v", partition=p) for p in (0, 1) for _ in range(5)])
    group = ctx.scratch_name("group")
    settings = f"session.timeout.ms={GROUP_SESSION_TIMEOUT_MS}"
    watch.lap()
    first = _Member(ctx, group, topic)
    members = [first]
    out: list[CheckResult] = []
    try:
        joined = _poll_until(members, lambda: first.owned == {0, 1}, JOIN_DEADLINE)
        out.append(verdict("group-join", CONFLUENT, joined is not None,
                           f"a new group's first member gets both partitions ({settings})",
                           f"joined in {joined:.2f}s" if joined is not None else f"no assignment in {JOIN_DEADLINE:.0f}s",
                           watch))
        if joined is None:
            return out
        out.extend(_commits(ctx, first, topic, watch))
        out.extend(_describe_and_list(ctx, group, watch))
        out.append(_refused_into_active(ctx, group, topic, watch))
        second = _Member(ctx, group, topic)
        members.append(second)
        moved = _poll_until(members, lambda: len(first.owned) == 1 and len(second.owned) == 1, JOIN_DEADLINE)
        out.append(verdict("group-rebalance", CONFLUENT, moved is not None,
                           f"a second member joins and each member owns one partition ({settings})",
                           f"rebalanced in {moved:.2f}s" if moved is not None else f"not balanced in {JOIN_DEADLINE:.0f}s",
                           watch))
        out.append(_delete_groups(ctx, group, members, watch))
    finally:
        for member in members:
            member.client.close()
    return out


def _commits(ctx: ProbeContext, member: _Member, topic: str, watch: Stopwatch) -> list[CheckResult]:
    out = []
    expected = "commit offset 3 of partition 0, OffsetFetch answers 3"
    try:
        member.client.commit(offsets=[TopicPartition(topic, 0, 3, "probe-metadata")], asynchronous=False)
        got = member.client.committed([TopicPartition(topic, 0)], timeout=10)[0]
    except Exception as exc:
        status, text = classify(exc)
        return [result("group-offset-commit", CONFLUENT, status, expected, text, watch)]
    out.append(verdict("group-offset-commit", CONFLUENT, got.offset == 3, expected, f"committed offset {got.offset}", watch))
    out.append(verdict("group-offset-commit-metadata", CONFLUENT, got.metadata == "probe-metadata",
                       "commit metadata 'probe-metadata' is returned by OffsetFetch", f"metadata {got.metadata!r}", watch))
    expected = "a commit for partition 7 of a 2-partition topic is refused (UNKNOWN_TOPIC_OR_PART)"
    try:
        answer = member.client.commit(offsets=[TopicPartition(topic, 7, 1)], asynchronous=False)
        errors = [tp.error for tp in answer or [] if tp.error is not None]
        observed = f"refused: {errors[0].name()}" if errors else "accepted"
        ok = bool(errors)
    except Exception as exc:
        observed, ok = f"refused: {kafka.describe_error(exc)}", True
    out.append(verdict("group-offset-commit-unknown-partition", CONFLUENT, ok, expected, observed, watch))
    return out


def _describe_and_list(ctx: ProbeContext, group: str, watch: Stopwatch) -> list[CheckResult]:
    client = kafka.admin(ctx.profile)
    out = []
    expected = "an active group is STABLE with 1 member owning partitions 0,1"
    try:
        described = client.describe_consumer_groups([group], request_timeout=10)[group].result(15)
        owned = sorted(tp.partition for m in described.members for tp in m.assignment.topic_partitions)
        observed = f"state {described.state.name}, {len(described.members)} members, partitions {owned}"
        ok = described.state == ConsumerGroupState.STABLE and len(described.members) == 1 and owned == [0, 1]
        out.append(verdict("describe-groups", CONFLUENT, ok, expected, observed, watch))
    except Exception as exc:
        status, text = classify(exc)
        out.append(result("describe-groups", CONFLUENT, status, expected, text, watch))
    expected = "ListGroups lists the active group as STABLE"
    try:
        listed = client.list_consumer_groups(request_timeout=10).result(15)
        found = [g for g in listed.valid if g.group_id == group]
        observed = f"listed, state {found[0].state.name}" if found else f"not listed among {len(listed.valid)} groups"
        ok = bool(found) and found[0].state == ConsumerGroupState.STABLE
        out.append(verdict("list-groups", CONFLUENT, ok, expected, observed, watch))
    except Exception as exc:
        status, text = classify(exc)
        out.append(result("list-groups", CONFLUENT, status, expected, text, watch))
    return out


def _refused_into_active(ctx: ProbeContext, group: str, topic: str, watch: Stopwatch) -> CheckResult:
    """Kafka refuses admin offset writes into a group with members; `offsets sync` relies on it."""
    expected = "admin offset write into an active group is refused (per partition or whole)"
    client = kafka.admin(ctx.profile)
    try:
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])
        answer = client.alter_consumer_group_offsets([request], request_timeout=10)[group].result(15)
        errors = [tp.error for tp in answer.topic_partitions if tp.error is not None]
        observed = f"refused per partition: {errors[0].name()}" if errors else "accepted"
        ok = bool(errors)
    except Exception as exc:
        observed, ok = f"refused: {kafka.describe_error(exc)}", True
    return verdict("group-offset-commit-active-refused", CONFLUENT, ok, expected, observed, watch)


def _delete_groups(ctx: ProbeContext, group: str, members: list[_Member], watch: Stopwatch) -> CheckResult:
    expected = "DeleteGroups on an active group is refused (NON_EMPTY_GROUP); on an empty group it succeeds"
    client = kafka.admin(ctx.profile)
    try:
        client.delete_consumer_groups([group], request_timeout=10)[group].result(15)
        active = "accepted"
    except Exception as exc:
        active = f"refused ({kafka.describe_error(exc).split(':')[0]})"
    for member in members:
        member.client.close()
    members.clear()
    empty = _delete_when_empty(client, group)
    ok = active.startswith("refused") and empty == "deleted"
    return verdict("delete-groups", CONFLUENT, ok, expected, f"active group: {active}; empty group: {empty}", watch)


def _delete_when_empty(client, group: str, timeout: float = 5.0) -> str:
    """Delete a group whose members just left; a busy broker may still count them for a moment."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.delete_consumer_groups([group], request_timeout=10)[group].result(15)
            return "deleted"
        except Exception as exc:
            text = kafka.describe_error(exc)
            if "NON_EMPTY_GROUP" not in text or time.monotonic() > deadline:
                return f"failed ({text})"
            time.sleep(0.2)


def inactive_group_offsets(ctx: ProbeContext) -> list[CheckResult]:
    """What `offsets sync` needs: write offsets for a group with no members, read them back."""
    watch = Stopwatch()
    topic = ctx.scratch_topic("admin-offsets", partitions=2)
    produce(ctx.profile, topic, [Rec(b"v", partition=p) for p in (0, 1) for _ in range(5)])
    group = ctx.scratch_name("synced")
    client = kafka.admin(ctx.profile)
    expected = "AlterConsumerGroupOffsets on a group with no members sets 4 and 2; OffsetFetch answers 4, 2"
    watch.lap()
    try:
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 2)])
        answer = client.alter_consumer_group_offsets([request], request_timeout=10)[group].result(15)
        errors = [f"p{tp.partition}: {tp.error.name()}" for tp in answer.topic_partitions if tp.error is not None]
        fetched = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                     request_timeout=10)[group].result(15)
    except Exception as exc:
        status, text = classify(exc)
        return [result("group-offset-commit-inactive-admin", CONFLUENT, status, expected, text, watch)]
    offsets = sorted((tp.partition, tp.offset) for tp in fetched.topic_partitions if tp.topic == topic)
    observed = f"errors {errors}" if errors else f"offsets {[o for _, o in offsets]}"
    out = [verdict("group-offset-commit-inactive-admin", CONFLUENT, not errors and offsets == [(0, 4), (1, 2)],
                   expected, observed, watch)]
    expected = "a group that only has committed offsets is described as EMPTY"
    try:
        described = client.describe_consumer_groups([group], request_timeout=10)[group].result(15)
        out.append(verdict("describe-groups-empty", CONFLUENT, described.state == ConsumerGroupState.EMPTY,
                           expected, f"state {described.state.name}", watch))
    except Exception as exc:
        status, text = classify(exc)
        out.append(result("describe-groups-empty", CONFLUENT, status, expected, text, watch))
    return out

