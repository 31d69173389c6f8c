"""The inventory of an estate, measured read-only: topics, their records and write rates, groups and lag.

Read-only means: metadata, DescribeConfigs, Fetch (assign only, no group, no commit),
ListGroups, DescribeGroups and OffsetFetch.  Nothing is written, nothing committed, no group
joined.  Partition ends come from Fetch responses (migrate.kafka.partition_ends), not from
ListOffsets, which some platforms answer wrongly; write rates are the growth of those ends
over the sampling interval.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from typing import Callable, Iterable

from migrate import groups as group_admin
from migrate import kafka
from migrate.assess import sampling
from migrate.assess.model import GroupInventory, GroupTopic, Inventory, PartitionFigures, TopicInventory
from migrate.config import ClusterProfile
from migrate.errors import UsageError

log = logging.getLogger("migrate.assess")

# The topic configs that decide how a topic can be moved and what the target must honour.
MOVE_CONFIGS = ("cleanup.policy", "retention.ms", "retention.bytes", "max.message.bytes",
                "message.timestamp.type", "compression.type")
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's default, for platforms that report only set keys
NOT_REPORTED = "(default)"
TOOL_GROUP_PREFIX = "migrate.mirror."  # MirrorSpec.group_id
ENDS_CHUNK = 20  # partitions whose ends are read in one go (see _ends)

Progress = Callable[[str], None]


def compile_patterns(patterns: Iterable[str], flag: str) -> list[re.Pattern]:
    out = []
    for pattern in patterns:
        try:
            out.append(re.compile(pattern))
        except re.error as exc:
            raise UsageError(f"{flag} {pattern!r} is not a valid regular expression ({exc}); fix the pattern") from exc
    return out


def select_topics(names: Iterable[str], include: Iterable[str], exclude: Iterable[str], cluster: str) -> list[str]:
    """Topics whose whole name matches an include pattern (all when none) and no exclude pattern.

    Internal topics (`__consumer_offsets`, the tool's own `__migrate.*`) are part of no estate
    unless a pattern names them.
    """
    include, exclude = list(include), list(exclude)
    wanted = compile_patterns(include, "--topics")
    unwanted = compile_patterns(exclude, "--exclude")
    chosen = sorted(
        name for name in names
        if (any(p.fullmatch(name) for p in wanted) if wanted else not name.startswith("__"))
        and not any(p.fullmatch(name) for p in unwanted)
    )
    if not chosen:
        asked = " ".join(f"--topics {p!r}" for p in include) or "(all topics)"
        if exclude:
            asked += " " + " ".join(f"--exclude {p!r}" for p in exclude)
        raise UsageError(f'no topic on cluster "{cluster}" matches {asked}; list them with: '
                         "kafka-topics --list, or widen the pattern")
    return chosen


def move_configs(entries: dict[str, tuple[str, bool]]) -> dict[str, str]:
    return {key: entries[key][0] if key in entries else NOT_REPORTED for key in MOVE_CONFIGS}


def _max_message_bytes(configs: dict[str, str]) -> int:
    value = configs.get("max.message.bytes", NOT_REPORTED)
    return DEFAULT_MAX_MESSAGE_BYTES if value == NOT_REPORTED else int(value)


def _ends(profile: ClusterProfile, partitions: list[tuple[str, int]]) -> dict:
    """Partition ends (read_uncommitted), asked for a chunk of partitions at a time.

    Each partition's answer is the whole record batch holding its last offset (up to about 1 MB), and
    the reader holds every assigned partition's answer at once: 500 partitions of noida-db peaked at
    150 MB in one request, so memory stays bounded only in chunks.
    """
    ends = {}
    for i in range(0, len(partitions), ENDS_CHUNK):
        ends.update(kafka.partition_ends(profile, partitions[i:i + ENDS_CHUNK], isolation="read_uncommitted"))
    return ends


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def take_inventory(profile: ClusterProfile, include: Iterable[str] = (), exclude: Iterable[str] = (),
                   sample_seconds: float = 30.0, sample_limit: int = sampling.DEFAULT_LIMIT,
                   progress: Progress | None = None) -> Inventory:
    """Measure the estate on one cluster; raises ClusterUnreachable or UsageError before reading records."""
    say = progress or (lambda _line: None)
    began = time.monotonic()
    metadata = kafka.check_reachable(profile)
    names = select_topics(metadata.topics, include, exclude, profile.name)
    shape = {name: metadata.topics[name].partitions for name in names}
    configs = {name: move_configs(kafka.topic_config_entries(profile, name)) for name in names}
    partitions = [(name, p) for name in names for p in sorted(shape[name])]

    say(f"reading the ends of {len(partitions)} partitions in {len(names)} topics")
    first_ends = _ends(profile, partitions)
    first_at = time.monotonic()

    say(f"sampling at most {sample_limit} records per partition")
    accumulators = {name: sampling.SampleAccumulator(_max_message_bytes(configs[name])) for name in names}
    plan = [sampling.PartitionWindows(t, p, sampling.sample_windows(first_ends[(t, p)].low, first_ends[(t, p)].high,
                                                                     sample_limit)) for t, p in partitions]
    sampled: dict[tuple[str, int], int] = {}
    with_gaps: list[sampling.PartitionWindows] = []
    with_headers: list[sampling.PartitionWindows] = []
    for item, window, records in sampling.read_uncommitted(profile, plan):
        acc = accumulators[item.topic]
        gaps_before, headers_before = acc.gaps, acc.with_headers
        key = (item.topic, item.partition)
        sampled[key] = sampled.get(key, 0) + acc.add_window(item.partition, window, records)
        if acc.gaps > gaps_before and (not with_gaps or with_gaps[-1] is not item):
            with_gaps.append(item)
        if acc.with_headers > headers_before and (not with_headers or with_headers[-1] is not item):
            with_headers.append(item)

    if with_gaps:
        say(f"counting aborted records in {len(with_gaps)} partitions with offset gaps (read_committed)")
        offsets = {(i.topic, i.partition): accumulators[i.topic].offsets.get(i.partition, ()) for i in with_gaps}
        for (topic, partition), aborted in sampling.aborted_offsets(profile, with_gaps, offsets).items():
            accumulators[topic].add_aborted(partition, aborted)
    if with_headers:
        say(f"reading header names with kafka-python in {len(with_headers)} partitions")
        for topic, names_seen in sampling.header_names_kafka_python(profile, with_headers).items():
            accumulators[topic].nul_header_names = {n for n in names_seen if "\x00" in n}

    remaining = sample_seconds - (time.monotonic() - first_at)
    if sample_seconds > 0 and remaining > 0:
        say(f"measuring write rates: waiting {remaining:.0f}s more of the {sample_seconds:g}s interval")
        time.sleep(remaining)
    if sample_seconds > 0:
        last_ends = _ends(profile, partitions)
        elapsed = time.monotonic() - first_at
    else:
        last_ends, elapsed = first_ends, 0.0

    topics = []
    for name in names:
        parts = sorted(shape[name])
        usage = accumulators[name].usage()
        topics.append(_topic(name, metadata.topics[name], configs[name], usage, parts, first_ends, last_ends,
                             sampled, elapsed))
    say("reading consumer groups and their committed offsets")
    found_groups = _groups(profile, set(names), last_ends)
    notes = []
    if not all(t.sample_complete for t in topics):
        notes.append(f"records and bytes marked ~ are extrapolated from the sample (partitions over {sample_limit} "
                     "records are read at head and tail; partitions written to while sampled grew since); "
                     "the others are counted")
    return Inventory(profile.name, profile.bootstrap, _now(), sample_seconds, sample_limit, tuple(topics),
                     tuple(found_groups), round(time.monotonic() - began, 2), tuple(notes))


def _topic(name, meta, configs, usage, parts, first_ends, last_ends, sampled, elapsed) -> TopicInventory:
    offsets = sum(last_ends[(name, p)].high - last_ends[(name, p)].low for p in parts)
    complete = usage.offsets_covered == sum(first_ends[(name, p)].high - first_ends[(name, p)].low for p in parts)
    per_offset = usage.sampled / usage.offsets_covered if usage.offsets_covered else 1.0
    if complete and offsets == usage.offsets_covered:
        records, size_sum = usage.sampled, usage.sampled_bytes
    else:
        records = round(offsets * per_offset)
        size_sum = round(records * usage.sampled_bytes / usage.sampled) if usage.sampled else 0
    rate = bytes_rate = None
    if elapsed > 0:
        grown = sum(last_ends[(name, p)].high - first_ends[(name, p)].high for p in parts)
        rate = round(grown / elapsed, 2)
        bytes_rate = round(rate * per_offset * usage.sampled_bytes / usage.sampled, 1) if usage.sampled else 0.0
    replicas = {len(meta.partitions[p].replicas) for p in parts if meta.partitions[p].replicas}
    transactions = "yes" if usage.aborted else ("likely" if usage.offset_gaps else "no")
    figures = tuple(PartitionFigures(p, last_ends[(name, p)].low, last_ends[(name, p)].high, sampled.get((name, p), 0))
                    for p in parts)
    exact = complete and offsets == usage.offsets_covered
    if exact:
        aborted, aborted_bytes = usage.aborted, usage.aborted_bytes
    else:  # the sample's share of aborted records and bytes, over the whole topic
        aborted = round(records * usage.aborted / usage.sampled) if usage.sampled else 0
        aborted_bytes = round(size_sum * usage.aborted_bytes / usage.sampled_bytes) if usage.sampled_bytes else 0
    return TopicInventory(name, len(parts), max(replicas) if replicas else None, configs, offsets, records, size_sum,
                          exact, rate, bytes_rate, transactions, usage, figures,
                          committed_records=records - aborted, aborted_records=aborted,
                          committed_bytes=size_sum - aborted_bytes)


def _groups(profile: ClusterProfile, selected: set[str], ends) -> list[GroupInventory]:
    """Groups the cluster lists, with their lag on the selection's topics.

    ListGroups may omit an active group on some platforms (see migrate.groups); those are not
    in the inventory.  For each partition a group lags on, one record is read: the oldest it has
    yet to read, whose age readiness compares with the topic's retention.
    """
    # the tool's own groups (a mirror's, on its source) are not the estate's: nothing to move
    names = [g for g in group_admin.list_groups(profile) if not g.startswith(TOOL_GROUP_PREFIX)]
    if not names:
        return []
    described = group_admin.describe(profile, names)
    committed = group_admin.committed(profile, names)
    out = []
    lagging: set[tuple[str, int, int]] = set()  # (topic, partition, committed offset) with records after it
    for group in names:
        offsets = committed.get(group, {})
        per_topic: dict[str, list[tuple[int, int]]] = {}
        outside = set()
        for (topic, partition), offset in offsets.items():
            if topic in selected and (topic, partition) in ends:
                per_topic.setdefault(topic, []).append((partition, offset))
                if ends[(topic, partition)].low <= offset < ends[(topic, partition)].high:
                    lagging.add((topic, partition, offset))
            else:
                outside.add(topic)
        if per_topic:  # else a group of another estate (or of the tool itself)
            info = described.get(group)
            out.append((group, info, per_topic, outside))
    unread = sampling.timestamps_at(profile, sorted(lagging))
    groups = []
    for group, info, per_topic, outside in out:
        topics = []
        for topic, items in sorted(per_topic.items()):
            stamps = [unread[(topic, p, o)] for p, o in items if (topic, p, o) in unread]
            topics.append(GroupTopic(
                topic, len(items), sum(max(0, ends[(topic, p)].high - o) for p, o in items),
                sum(1 for p, o in items if o < ends[(topic, p)].low), min(stamps) if stamps else None))
        groups.append(GroupInventory(group, info.state if info else "UNKNOWN", info.members if info else None,
                                     tuple(topics), tuple(sorted(outside))))
    return groups
