"""Consumer groups on one cluster: list them, read their state and committed offsets, commit.

The one module that talks to the group admin API (confluent-kafka AdminClient).  What it
must get right on every platform:
- Activity is judged by the group STATE (Stable, PreparingRebalance, CompletingRebalance),
  not by the member list: some Kafka-compatible platforms (Tansu) report the state right
  but never list members, so `members` is None there ("not reported"), never a made-up 0.
- ListGroups may omit an active group on such platforms, so `--all-groups` is a listing of
  what the broker admits to; a named group is always described directly.
- Writing offsets is refused by the broker per partition (UNKNOWN_MEMBER_ID when the group
  has live members), not as an exception: every partition's error in the result is checked.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Iterable, Mapping, TypeVar

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import KafkaOperationError

log = logging.getLogger("migrate.groups")

ACTIVE_STATES = frozenset({"STABLE", "PREPARING_REBALANCE", "COMPLETING_REBALANCE"})
TIMEOUT = 30.0
_BATCH = 200  # admin requests in flight at once

Offsets = dict[tuple[str, int], int]


@dataclass(frozen=True)
class GroupInfo:
    group: str
    state: str  # STABLE, EMPTY, DEAD, PREPARING_REBALANCE, COMPLETING_REBALANCE, UNKNOWN
    members: int | None  # None: the platform does not report members

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES or bool(self.members)

    @property
    def members_text(self) -> str:
        if self.members is None:
            return "active (member count not reported by this platform)" if self.active else "0"
        return str(self.members)


def _state_name(state: object) -> str:
    if isinstance(state, ConsumerGroupState):
        return state.name
    return str(state or "UNKNOWN").upper()


_T = TypeVar("_T")


def _results(profile: ClusterProfile, what: str, futures: Mapping[str, Future[_T]]) -> dict[str, _T]:
    out: dict[str, _T] = {}
    for key, future in futures.items():
        try:
            out[key] = future.result(TIMEOUT)
        except KafkaException as exc:
            raise kafka.fail(profile, f'{what} of group "{key}"', exc) from exc
        except FutureTimeout as exc:
            raise KafkaOperationError(
                f'{what} of group "{key}" on cluster "{profile.name}" got no answer within {TIMEOUT:.0f}s'
            ) from exc
    return out


def _chunks(items: list, size: int = _BATCH) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def list_groups(profile: ClusterProfile) -> list[str]:
    """Group ids the cluster lists (may omit active groups on some platforms)."""
    client = kafka.admin(profile)  # held: the future fails if the client is collected first
    try:
        result = client.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    except KafkaException as exc:
        raise kafka.fail(profile, "listing consumer groups", exc) from exc
    if result.errors:
        raise KafkaOperationError(f'listing consumer groups on cluster "{profile.name}" failed: '
                                  + "; ".join(e.str() for e in result.errors))
    return sorted({listing.group_id for listing in result.valid})


def describe(profile: ClusterProfile, groups: Iterable[str]) -> dict[str, GroupInfo]:
    groups = list(dict.fromkeys(groups))
    client = kafka.admin(profile)
    out: dict[str, GroupInfo] = {}
    for chunk in _chunks(groups):
        futures = client.describe_consumer_groups(chunk, request_timeout=TIMEOUT)
        for group, desc in _results(profile, "describing", futures).items():
            state = _state_name(desc.state)
            members = len(desc.members or [])
            # a platform that says STABLE but lists nobody does not report members
            out[group] = GroupInfo(group, state, None if (state in ACTIVE_STATES and members == 0) else members)
    return out


def committed(profile: ClusterProfile, groups: Iterable[str],
              partitions: Mapping[str, Iterable[tuple[str, int]]] | None = None) -> dict[str, Offsets]:
    """Committed offsets per group: all of them, or only `partitions[group]` when given.

    Partitions without a committed offset are left out.
    """
    groups = list(dict.fromkeys(groups))
    client = kafka.admin(profile)
    out: dict[str, Offsets] = {}
    for chunk in _chunks(groups):
        requests = {}
        for group in chunk:
            wanted = None if partitions is None else [TopicPartition(t, p) for t, p in partitions.get(group, ())]
            if wanted == []:
                out[group] = {}
                continue
            requests[group] = client.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, wanted)], request_timeout=TIMEOUT)[group]
        for group, result in _results(profile, "reading committed offsets", requests).items():
            offsets: Offsets = {}
            for tp in result.topic_partitions or []:
                if tp.error is not None:
                    raise KafkaOperationError(
                        f'reading the committed offset of group "{group}" on {tp.topic}[{tp.partition}] '
                        f'on cluster "{profile.name}" failed: {tp.error.str()}')
                if tp.offset >= 0:
                    offsets[(tp.topic, tp.partition)] = tp.offset
            out[group] = offsets
    return out


def commit(profile: ClusterProfile, plans: Mapping[str, Mapping[tuple[str, int], int]]) -> dict[str, str | None]:
    """Write offsets into inactive groups: {group: None when committed, else the reason}.

    A group the broker refuses because it has live members gets "active"; the broker applies
    such a request to no partition of that group.
    """
    client = kafka.admin(profile)
    out: dict[str, str | None] = {}
    items = [(g, o) for g, o in plans.items() if o]
    for chunk in _chunks(items):
        futures = {}
        for group, offsets in chunk:
            tps = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
            futures[group] = client.alter_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, tps)], request_timeout=TIMEOUT)[group]
        for group, future in futures.items():
            try:
                result = future.result(TIMEOUT)
            except KafkaException as exc:
                err = kafka.error_of(exc)
                if err is not None and err.code() in (KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS):
                    out[group] = "active"
                    continue
                raise kafka.fail(profile, f'committing offsets of group "{group}"', exc) from exc
            reasons = set()
            for tp in result.topic_partitions or []:
                if tp.error is None:
                    continue
                if tp.error.code() in (KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS,
                                       KafkaError.ILLEGAL_GENERATION):
                    reasons.add("active")
                else:
                    reasons.add(f"{tp.topic}[{tp.partition}]: {tp.error.str()}")
            if not reasons:
                out[group] = None
            elif reasons == {"active"}:
                out[group] = "active"
            else:
                raise KafkaOperationError(
                    f'committing offsets of group "{group}" on cluster "{profile.name}" failed: '
                    + "; ".join(sorted(reasons - {"active"})))
    return out


def delete(profile: ClusterProfile, groups: Iterable[str]) -> list[str]:
    """Delete groups that exist on the cluster; return the ones deleted (absent ones are not an error)."""
    existing = set(list_groups(profile))
    wanted = [g for g in dict.fromkeys(groups) if g in existing]
    if not wanted:
        return []
    client = kafka.admin(profile)
    deleted = []
    for group, future in client.delete_consumer_groups(wanted, request_timeout=TIMEOUT).items():
        try:
            future.result(TIMEOUT)
        except KafkaException as exc:
            err = kafka.error_of(exc)
            if err is not None and err.code() == KafkaError.GROUP_ID_NOT_FOUND:
                continue
            raise kafka.fail(profile, f'deleting group "{group}"', exc) from exc
        except FutureTimeout as exc:
            raise KafkaOperationError(f'deleting group "{group}" on cluster "{profile.name}" got no answer '
                                      f"within {TIMEOUT:.0f}s") from exc
        deleted.append(group)
    return deleted


def sync_groups_once(state, mirror_name: str, source: ClusterProfile, target: ClusterProfile, group_regex,
                     on_results=None):
    """One round of `migrate mirror --sync-groups`; see migrate.offset_maps.checkpoint.sync_groups_once.

    Kept here because the mirror's CLI imports it from this module; the flow lives with the
    other offset-sync code (imported late: that module builds on this one).
    """
    from migrate.offset_maps.checkpoint import sync_groups_once as run_once

    return run_once(state, mirror_name, source, target, group_regex, on_results)
