"""An assessment as rows for people: readiness, topics, groups and plan (used by the table and the HTML).

Estimated figures are marked with a leading "~"; exact ones are plain.
"""

from __future__ import annotations

import datetime as dt

from migrate.assess.model import OK, Assessment, Readiness, TopicInventory


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def human_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _day(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")


def _est(topic: TopicInventory, text: str) -> str:
    return text if topic.sample_complete else f"~{text}"


def readiness_rows(readiness: Readiness) -> list[dict[str, str]]:
    """One row per topic and group with a finding: its worst level and what is not ok."""
    subjects: dict[tuple[str, str], list] = {}
    for f in readiness.findings:
        subjects.setdefault((f.kind, f.subject), []).append(f)
    rows = []
    for (kind, subject), found in subjects.items():
        concerns = [f"{f.behaviour} [{f.level}{': ' + f.check if f.check != '-' else ''}]"
                    for f in found if f.level != OK]
        rows.append({"kind": kind, "name": subject, "readiness": readiness.level_of(kind, subject),
                     "why": "; ".join(concerns) or "every behaviour it uses passes on the target"})
    return rows


def finding_lines(readiness: Readiness) -> list[str]:
    return [f"{f.level.upper()} {f.kind} {f.subject}: {f.behaviour}. Evidence: {f.evidence}."
            + (f" Remedy: {f.remedy}." if f.remedy else "")
            for f in readiness.findings if f.level != OK]


def topic_rows(assessment: Assessment) -> list[dict[str, object]]:
    rows = []
    for t in assessment.inventory.topics:
        u = t.usage
        features = [name for name, n in (("tombstones", u.tombstones), ("null keys", u.null_keys),
                                         ("headers", u.with_headers), ("ts backwards", u.backwards_timestamps),
                                         ("near max size", u.near_max_bytes)) if n]
        if u.schema_ids:
            features.append("schema ids " + ",".join(map(str, u.schema_ids)))
        if u.nul_header_names:
            features.append("NUL in header names")
        rows.append({
            "topic": t.name, "partitions": t.partitions, "offsets": t.offsets,
            "records": _est(t, f"{t.records_estimate:,}"), "bytes": _est(t, human_bytes(t.bytes_estimate)),
            "rec/s": "-" if t.records_per_s is None else f"{t.records_per_s:g}",
            "txn": t.transactions + (f" ({u.aborted} aborted)" if u.aborted else ""),
            "size p50/p99/max": f"{u.sizes.p50}/{u.sizes.p99}/{u.sizes.max}",
            "oldest..newest": f"{_day(u.oldest_timestamp)}..{_day(u.newest_timestamp)}",
            "policy": f"{t.configs.get('cleanup.policy')}, retention.ms={t.configs.get('retention.ms')}",
            "uses": ", ".join(features) or "-",
        })
    return rows


def group_rows(assessment: Assessment) -> list[dict[str, object]]:
    return [{"group": g.group, "state": g.state, "members": "not reported" if g.members is None else g.members,
             "topics": ", ".join(f"{t.topic} ({t.partitions}p)" for t in g.topics), "lag": g.lag,
             "outside selection": ", ".join(g.outside) or "-"} for g in assessment.inventory.groups]


def plan_rows(assessment: Assessment) -> list[dict[str, str]]:
    p = assessment.plan
    throughput = (f"{p.throughput_mb_s:g} MB/s per worker ({p.throughput_source})" if p.throughput_mb_s
                  else "not known (pass --throughput MB/s, or probe the target)")
    rows = [
        ("initial copy", f"~{human_bytes(p.copy_bytes_estimate)}, ~{p.copy_records_estimate:,} records"),
        ("copy throughput", throughput),
        ("copy duration", f"~{human_seconds(p.copy_seconds)} with {p.copy_workers} mirror worker"
                          f"{'s' if p.copy_workers != 1 else ''}"
                          + (f" (window {human_seconds(p.copy_window_s)})" if p.copy_window_s else "")
         if p.copy_seconds is not None else "-"),
        ("write rate (measured)", f"~{human_bytes(p.write_bytes_per_s)}/s" if p.write_bytes_per_s is not None
         else "not measured"),
        ("dual-run bandwidth", f"~{human_bytes(p.bandwidth_bytes_per_s)}/s (x{p.headroom:g} headroom)"
         + (f", {p.dual_run_workers} worker{'s' if p.dual_run_workers != 1 else ''}" if p.dual_run_workers else "")
         if p.bandwidth_bytes_per_s is not None else "-"),
        (f"target storage after {p.overlap_days:g} days", f"~{human_bytes(p.target_storage_bytes)} "
                                                         "(under each topic's retention, one replica)"),
    ]
    if p.costs is not None:
        c = p.costs
        cur = f" {c.currency}" if c.currency else ""
        rows += [("overlap cost per month", f"~{c.monthly_total:,.2f}{cur} (storage {c.monthly_storage:,.2f}, "
                                            f"transfer {c.monthly_transfer:,.2f}, workers {c.monthly_workers:,.2f})"),
                 ("copy cost", f"~{c.copy:,.2f}{cur}")]
    else:
        rows.append(("cost", "no prices given (--costs FILE)"))
    rows.append(("playbook vars", ", ".join(f"{k}={v}" for k, v in p.vars.items())))
    return [{"plan": k, "value": v} for k, v in rows]


def headline(assessment: Assessment) -> str:
    inv = assessment.inventory
    records = sum(t.records_estimate for t in inv.topics)
    text = (f"assessed {len(inv.topics)} topics ({sum(t.partitions for t in inv.topics)} partitions, "
            f"~{records:,} records, ~{human_bytes(sum(t.bytes_estimate for t in inv.topics))}) and "
            f"{len(inv.groups)} groups on {assessment.source} in {inv.seconds:.1f}s")
    r = assessment.readiness
    if r is None:
        return text + "; no target given: readiness not assessed"
    counts = {level: sum(1 for f in r.findings if f.level == level) for level in ("blocker", "risk", "not probed")}
    probe = (f"probe: {r.probe.how} {r.probe.run_id} at {r.probe.ran_at}" if r.probe.run_id
             else "probe: target not probed (pass --probe, or run migrate probe)")
    return (text + f"; readiness for {r.target}: {counts['blocker']} blockers, {counts['risk']} risks, "
            f"{counts['not probed']} not probed ({probe})")


def brief(inventory) -> list[str]:
    """A few lines about an estate (what `migrate demo` prints before it mirrors)."""
    topics = inventory.topics
    lines = [f"{len(topics)} topics, {sum(t.partitions for t in topics)} partitions, "
             f"~{sum(t.records_estimate for t in topics):,} records, ~{human_bytes(sum(t.bytes_estimate for t in topics))}"]
    for label, chosen in (("transactional", [t.name for t in topics if t.transactions != "no"]),
                          ("compacted", [t.name for t in topics if t.compacted]),
                          ("large records (>= 100 KB)", [t.name for t in topics if t.usage.sizes.max >= 100_000])):
        if chosen:
            lines.append(f"{label}: {', '.join(chosen)}")
    if inventory.groups:
        lines.append("groups: " + ", ".join(f"{g.group} (lag {g.lag})" for g in inventory.groups))
    return lines
