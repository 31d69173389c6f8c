"""Readiness: each behaviour the estate uses, checked against what the target platform does.

A behaviour found in the inventory (transactions, compaction, LogAppendTime, large records,
headers, codecs, registry-framed values, group offsets) maps to the probe checks it needs
(see migrate.probe.checks).  Each finding is ok, risk or blocker, or "not probed" when the
target's probe results lack the check, and always carries its evidence: the check, what the
platform did, and what the mirror or the playbooks do about it.

The target is only read here (metadata and group listing, for name clashes); probe results
come from the caller (a run it asked for, or the latest stored run).
"""

from __future__ import annotations

import re
import time
from typing import Iterable

from migrate import groups as group_admin
from migrate import kafka
from migrate.assess import applications
from migrate.assess.model import (BLOCKER, NOT_PROBED, OK, RISK, Finding, Inventory, ProbeUsed, Readiness,
                                  TopicInventory)
from migrate.config import ClusterProfile
from migrate.probe.model import PASS, ProbeReport

CODECS = ("gzip", "snappy", "lz4", "zstd")
RETENTION_RISK = 0.5  # unread records older than this share of the retention leave little time to move
_LARGEST = re.compile(r"largest accepted (\d+) B")


def checks_needed(inventory: Inventory) -> list[str]:
    """The probe checks the estate's behaviours rest on (what `assess --probe` runs on the target)."""
    names = {"produce-fetch-fidelity", "max-record-size"}
    for topic in inventory.topics:
        if topic.transactions != "no":
            names |= {"transactions", "read-committed-hides-aborted", "transaction-markers-take-offsets"}
        if topic.compacted:
            names.add("create-topic-configs")
        if _log_append_time(topic):
            names.add("config-log-append-time")
        codec = topic.configs.get("compression.type", "")
        if codec in CODECS:
            names.add(f"compression-{codec}")
    if inventory.groups:
        names |= {"group-offset-commit-inactive-admin", "describe-groups-empty"}
    names |= applications.checks_needed(inventory)
    return sorted(names)


def _log_append_time(topic: TopicInventory) -> bool:
    return topic.configs.get("message.timestamp.type") == "LogAppendTime" or topic.usage.log_append_time > 0


class _Judge:
    """Turns a probe check's results on the target into a level and its evidence text."""

    def __init__(self, report: ProbeReport | None, target: str):
        self.report = report
        self.target = target

    def check(self, name: str, level_if_failed: str) -> tuple[str, str]:
        if self.report is None:
            return NOT_PROBED, f"target not probed; run: migrate probe --cluster {self.target} --only {name}"
        results = self.report.named(name)
        if not results:
            return NOT_PROBED, f"{name} not in the stored probe results; run: migrate probe --cluster " \
                               f"{self.target} --only {name}"
        bad = [r for r in results if r.status != PASS]
        if not bad:
            return OK, f"{name}: pass ({results[0].observed})"
        return level_if_failed, "; ".join(f"{name} {r.status} with {r.client}: expected {r.expected}; "
                                          f"observed {r.observed}" for r in bad)


def assess_readiness(inventory: Inventory, target: ClusterProfile, target_name: str, report: ProbeReport | None,
                     probe: ProbeUsed) -> Readiness:
    judge = _Judge(report, target_name)
    findings: list[Finding] = []
    for topic in inventory.topics:
        findings.extend(topic_findings(topic, judge, report))
    topics = {t.name: t for t in inventory.topics}
    now_ms = int(time.time() * 1000)
    for group in inventory.groups:
        findings.extend(group_findings(group, judge))
        findings.extend(retention_findings(group, topics, now_ms))
    findings.extend(applications.application_findings(inventory, judge, target_name))
    findings.extend(clashes(inventory, target))
    return Readiness(target_name, probe, tuple(findings))


def topic_findings(topic: TopicInventory, judge: _Judge, report: ProbeReport | None) -> Iterable[Finding]:
    name, usage = topic.name, topic.usage

    def finding(level: str, behaviour: str, check: str, evidence: str, remedy: str = "") -> Finding:
        return Finding("topic", name, level, behaviour, check, evidence, remedy)

    if topic.transactions != "no":
        uses = (f"{usage.aborted} aborted records in the sample" if usage.aborted
                else f"{usage.offset_gaps} offset gaps (transaction markers or compaction)")
        level, evidence = judge.check("transactions", BLOCKER)
        yield finding(level, f"transactions ({uses})", "transactions", evidence,
                      "transactional producers cannot move to the target" if level == BLOCKER else "")
        level, evidence = judge.check("read-committed-hides-aborted", RISK)
        yield finding(level, f"read_committed consumers ({uses})", "read-committed-hides-aborted", evidence,
                      "the mirror still copies exactly (aborted records are not copied), but records aborted on "
                      "the target after cutover reach its read_committed consumers" if level == RISK else "")
        level, evidence = judge.check("transaction-markers-take-offsets", RISK)
        yield finding(level, "transaction markers", "transaction-markers-take-offsets", evidence,
                      "offsets on the target differ from Kafka's after transactions; the offset map still "
                      "translates exactly" if level == RISK else "")
    if topic.compacted:
        level, evidence = judge.check("create-topic-configs", BLOCKER)
        if level == OK:
            level = RISK
            evidence = ("cleanup.policy=compact is stored by the target (create-topic-configs pass), but no probe "
                        "check can see compaction happen within a run: confirm the target compacts")
        yield finding(level, f"compaction ({usage.tombstones} tombstones in the sample)", "create-topic-configs",
                      evidence, "a target that does not compact keeps every update and tombstone: storage grows "
                      "and readers of the whole topic see superseded values")
    if _log_append_time(topic):
        level, evidence = judge.check("config-log-append-time", RISK)
        yield finding(level, "LogAppendTime timestamps", "config-log-append-time", evidence,
                      "the mirror copies the source's timestamps; time lookups on the target use them"
                      if level == OK else "records keep producer timestamps on the target: time-based lookups "
                      "and retention behave differently")
    codec = topic.configs.get("compression.type", "")
    if codec in CODECS:
        level, evidence = judge.check(f"compression-{codec}", BLOCKER)
        yield finding(level, f"compression.type={codec}", f"compression-{codec}", evidence)
    yield from _size_findings(topic, judge, report)
    if usage.with_headers or usage.null_keys or usage.tombstones:
        level, evidence = judge.check("produce-fetch-fidelity", BLOCKER)
        what = ", ".join(x for x, n in (("headers", usage.with_headers), ("null keys", usage.null_keys),
                                         ("tombstones", usage.tombstones)) if n)
        yield finding(level, what, "produce-fetch-fidelity", evidence)
    if usage.nul_header_names:
        yield finding(BLOCKER, "header names with NUL bytes", "-",
                      f"header names {', '.join(usage.nul_header_names)} (read whole with kafka-python); "
                      "librdkafka, the mirror's client, cuts a header name at its first NUL byte",
                      "the mirror would write shortened header names: rename the headers before moving, "
                      "or leave this topic out")
    if usage.schema_ids:
        yield finding(RISK, "Schema Registry framed values", "-",
                      f"every sampled value carries the wire-format prefix; schema ids "
                      f"{', '.join(map(str, usage.schema_ids))}",
                      "the registry the target's consumers use must hold these ids with the same schemas")


def _size_findings(topic: TopicInventory, judge: _Judge, report: ProbeReport | None) -> Iterable[Finding]:
    largest = topic.usage.sizes.max
    if not largest:
        return
    level, evidence = judge.check("max-record-size", RISK)
    accepted = None
    if report is not None:
        for result in report.named("max-record-size"):
            found = _LARGEST.search(result.observed)
            if found:
                accepted = int(found.group(1)) if accepted is None else min(accepted, int(found.group(1)))
    if accepted is not None:
        if largest > accepted:
            level, evidence = BLOCKER, f"largest sampled record {largest} B > {accepted} B, the largest the " \
                                       f"target accepted with default settings (max-record-size)"
        elif largest > accepted * 0.8 or topic.usage.near_max_bytes:
            level, evidence = RISK, f"largest sampled record {largest} B; target accepted up to {accepted} B; " \
                                    f"{topic.usage.near_max_bytes} sampled records within 20% of max.message.bytes"
        else:
            level, evidence = OK, f"largest sampled record {largest} B; target accepted up to {accepted} B"
    elif level == OK:
        level = RISK if topic.usage.near_max_bytes else OK
        evidence = f"largest sampled record {largest} B; {evidence}"
    yield Finding("topic", topic.name, level, f"record sizes (max {largest} B)", "max-record-size", evidence,
                  "set max.message.bytes on the target topic (the mirror refuses, and stops on, records the "
                  "target rejects)" if level in (RISK, BLOCKER) else "")


def group_findings(group, judge: _Judge) -> Iterable[Finding]:
    def finding(level: str, behaviour: str, check: str, evidence: str, remedy: str = "") -> Finding:
        return Finding("group", group.group, level, behaviour, check, evidence, remedy)

    level, evidence = judge.check("group-offset-commit-inactive-admin", BLOCKER)
    yield finding(level, "committed offsets (translated by offsets sync)", "group-offset-commit-inactive-admin",
                  evidence, "offsets cannot be written into target groups: consumers would restart from "
                  "auto.offset.reset" if level == BLOCKER else "")
    level, evidence = judge.check("describe-groups-empty", RISK)
    yield finding(level, "group state (the cutover waits for inactive groups)", "describe-groups-empty", evidence)
    behind = [t for t in group.topics if t.behind_log_start]
    if behind:
        yield finding(BLOCKER, "committed offsets within retention", "-",
                      "; ".join(f"{t.topic}: {t.behind_log_start} partitions committed before the log start "
                                "(those records are deleted)" for t in behind),
                      "the group cannot resume where it was on either cluster; reset it before moving")
    if group.outside:
        yield finding(RISK, "commits on topics outside the selection", "-",
                      f"also committed on {', '.join(group.outside)}",
                      "the cutover moves the group but does not translate its offsets on those topics: add them "
                      "to --topics or move them first")


def retention_findings(group, topics: dict[str, TopicInventory], now_ms: int,
                       fraction: float = RETENTION_RISK) -> Iterable[Finding]:
    """A group whose oldest unread record is past `fraction` of its topic's retention may lose it."""
    for lagging in group.topics:
        topic = topics.get(lagging.topic)
        if topic is None or topic.compacted or topic.retention_ms is None or lagging.oldest_unread_timestamp is None:
            continue
        age_ms = now_ms - lagging.oldest_unread_timestamp
        if age_ms >= topic.retention_ms * fraction:
            yield Finding("group", group.group, RISK, "lag within retention", "-",
                          f"on {topic.name} its oldest unread record is {_hours(age_ms)} old; retention.ms is "
                          f"{_hours(topic.retention_ms)} ({lagging.lag} records unread)",
                          "the mirror must copy those records, and the group read them, before the source deletes "
                          "them: let the group catch up before the move")


def _hours(ms: int) -> str:
    return f"{ms / 3_600_000:.1f} h"


def clashes(inventory: Inventory, target: ClusterProfile) -> list[Finding]:
    """Topics and groups of the selection that already exist on the target (read-only)."""
    metadata = kafka.check_reachable(target)
    out = []
    for topic in inventory.topics:
        there = metadata.topics.get(topic.name)
        if there is None or (there.error is not None and there.error.code() != 0):
            continue
        fewer = len(there.partitions) < topic.partitions
        out.append(Finding(
            "topic", topic.name, BLOCKER if fewer else RISK, "name clash on the target", "-",
            f"the target already has {topic.name} with {len(there.partitions)} partitions "
            f"(source: {topic.partitions})",
            "the mirror maps partition to partition: delete or rename the target topic, or map this topic "
            "to a new name" if fewer else "the mirror writes after the records already there: make sure "
            "they are meant to be kept"))
    existing = set(group_admin.list_groups(target))
    for group in inventory.groups:
        if group.group in existing:
            out.append(Finding("group", group.group, RISK, "name clash on the target", "-",
                               f"group {group.group} already exists on the target",
                               "offsets sync overwrites its committed offsets (and refuses while it has members)"))
    return out


def probe_used(report: ProbeReport | None, target: str, how: str) -> ProbeUsed:
    if report is None:
        return ProbeUsed(target, None, None, "not probed")
    return ProbeUsed(target, report.run_id, report.ran_at, how)
