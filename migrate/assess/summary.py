"""An assessment as rows for people: readiness, topics, groups and plan (used by the table and the HTML).

Estimated figures are marked with a leading "~"; exact ones (every partition read whole) are
plain.  Records are the committed ones, what the mirror copies; aborted ones are counted apart.
"""

from __future__ import annotations

import datetime as dt
import os

from migrate.assess.model import LEVELS, NOT_PROBED, OK, Assessment, Readiness, TopicInventory, worst


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
    if s < 1:
        return "under 1s"
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


def _all_counted(topics) -> bool:
    return all(t.sample_complete for t in topics)


def records_text(topics) -> str:
    """The records of a set of topics: the committed ones (what the mirror copies) and the aborted apart."""
    mark = "" if _all_counted(topics) else "~"
    committed = sum(t.copied_records for t in topics)
    aborted = sum(t.aborted_records for t in topics)
    return (f"{mark}{committed:,} committed records" + (f" (+{mark}{aborted:,} aborted, not copied)" if aborted else ""))


def bytes_text(topics) -> str:
    return ("" if _all_counted(topics) else "~") + human_bytes(sum(t.copied_bytes for t in topics))


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


def finding_lines(readiness: Readiness, collapse: bool = False) -> list[str]:
    """A line per finding that is not ok, with its evidence and remedy, worst first.

    `collapse`: findings that are "not probed" are left out (see not_probed_lines), and one
    behaviour found alike on several subjects (same level and remedy) is one line naming them.
    """
    found = sorted((f for f in readiness.findings if f.level != OK and not (collapse and f.level == NOT_PROBED)),
                   key=lambda f: -LEVELS.index(f.level))
    alike: dict[tuple[str, str, str, str], list] = {}
    for f in found:
        alike.setdefault((f.level, f.behaviour, f.remedy, f.kind) if collapse else (f.level, f.kind, f.subject,
                                                                                    f.behaviour), []).append(f)
    lines = []
    for group in alike.values():
        f = group[0]
        if len(group) == 1:
            lines.append(f"{f.level.upper()} {f.kind} {f.subject}: {f.behaviour}. Evidence: {f.evidence}."
                         + (f" Remedy: {f.remedy}." if f.remedy else ""))
            continue
        lines.append(f"{f.level.upper()} {f.behaviour} on {len(group)} {f.kind}s: "
                     f"{', '.join(g.subject for g in group)}. Evidence ({f.subject}): {f.evidence}; the others alike "
                     "(--format json has each)." + (f" Remedy: {f.remedy}." if f.remedy else ""))
    return lines


def not_probed_lines(readiness: Readiness) -> list[str]:
    """One line for what many findings share: the target, or some checks, not probed."""
    missing = sorted({f.check for f in readiness.findings if f.level == NOT_PROBED})
    if not missing:
        return []
    target, count = readiness.target, sum(1 for f in readiness.findings if f.level == NOT_PROBED)
    if readiness.probe.run_id is None:
        return [f"the target has not been probed ({count} behaviours of the estate rest on it): run "
                f"`migrate probe --cluster {target}` or add `--probe`"]
    return [f"{count} behaviours rest on checks the stored probe run {readiness.probe.run_id} lacks: run "
            f"`migrate probe --cluster {target} --only {','.join(missing)}` or add `--probe`"]


def readiness_compact_rows(readiness: Readiness, prefix: str = "") -> list[dict[str, str]]:
    """One row per topic and group with something to say, worst first; "not probed" said once elsewhere."""
    subjects: dict[tuple[str, str], list] = {}
    for f in readiness.findings:
        if f.level not in (OK, NOT_PROBED):
            subjects.setdefault((f.kind, f.subject), []).append(f)
    rows = []
    for (kind, subject), found in subjects.items():
        level = worst(f.level for f in found)
        rows.append((-LEVELS.index(level), kind, subject, {
            "kind": kind, "name": _short(subject, prefix), "readiness": level,
            "why": "; ".join(f"{f.behaviour}" + (f" ({f.level})" if f.level != level else "") for f in found)}))
    return [row for *_, row in sorted(rows, key=lambda r: r[:3])]


def ok_line(readiness: Readiness, prefix: str = "") -> str | None:
    """The subjects every behaviour of which passes on the target, in one line."""
    levels: dict[tuple[str, str], str] = {}
    for f in readiness.findings:
        levels[(f.kind, f.subject)] = worst([levels.get((f.kind, f.subject), OK), f.level])
    fine = sorted(_short(subject, prefix) for (_, subject), level in levels.items() if level == OK)
    return f"ok on the target: {', '.join(fine)}" if fine else None


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
            "records": _est(t, f"{t.copied_records:,}"), "aborted": _est(t, f"{t.aborted_records:,}"),
            "bytes": _est(t, human_bytes(t.copied_bytes)),
            "rec/s": "-" if t.records_per_s is None else f"{t.records_per_s:g}",
            "txn": t.transactions + (f" ({u.aborted} aborted)" if u.aborted else ""),
            "size p50/p99/max": f"{u.sizes.p50}/{u.sizes.p99}/{u.sizes.max}",
            "oldest..newest": f"{_day(u.oldest_timestamp)}..{_day(u.newest_timestamp)}",
            "policy": f"{t.configs.get('cleanup.policy')}, retention.ms={t.configs.get('retention.ms')}",
            "uses": ", ".join(features) or "-",
        })
    return rows


def _uses(t: TopicInventory) -> str:
    u = t.usage
    uses = [name for name, n in (("txn", t.transactions != "no"), ("compacted", t.compacted),
                                 ("tombstones", u.tombstones), ("null keys", u.null_keys), ("headers", u.with_headers),
                                 ("ts backwards", u.backwards_timestamps), ("near max size", u.near_max_bytes),
                                 ("schema ids", u.schema_ids), ("NUL in header names", u.nul_header_names)) if n]
    return ", ".join(uses) or "-"


def shared_prefix(assessment: Assessment) -> str:
    """The dotted prefix every topic name of the estate shares ("" when none), which the compact
    tables leave out (of group names too) so that names fit."""
    names = [t.name for t in assessment.inventory.topics]
    if len(names) < 2:
        return ""
    common = os.path.commonprefix(names)
    return common[:common.rfind(".") + 1]


def _short(name: str, prefix: str) -> str:
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


def topic_compact_rows(assessment: Assessment, prefix: str = "") -> list[dict[str, object]]:
    """The columns a person needs: records (committed; aborted apart), bytes, write rate, what it uses."""
    return [{"topic": _short(t.name, prefix), "parts": t.partitions, "records": _est(t, f"{t.copied_records:,}"),
             "aborted": _est(t, f"{t.aborted_records:,}") if t.aborted_records or t.transactions != "no" else "-",
             "bytes": _est(t, human_bytes(t.copied_bytes)),
             "rec/s": "-" if t.records_per_s is None else f"{t.records_per_s:g}", "uses": _uses(t)}
            for t in assessment.inventory.topics]


def group_compact_rows(assessment: Assessment, prefix: str = "") -> list[dict[str, object]]:
    return [{"group": _short(g.group, prefix), "state": g.state, "lag": g.lag,
             "topics": ", ".join(f"{_short(t.topic, prefix)} ({t.partitions}p)" for t in g.topics)}
            for g in sorted(assessment.inventory.groups, key=lambda g: (-g.lag, g.group))]


def topics_total(assessment: Assessment) -> str:
    topics = assessment.inventory.topics
    return (f"{len(topics)} topics, {sum(t.partitions for t in topics)} partitions, {records_text(topics)}, "
            f"{bytes_text(topics)}" + ("" if _all_counted(topics) else " (~: estimated from the sample)")
            + (", every partition read whole: counted, not estimated" if _all_counted(topics) else ""))


def group_rows(assessment: Assessment) -> list[dict[str, object]]:
    return [{"group": g.group, "state": g.state, "members": "not reported" if g.members is None else g.members,
             "topics": ", ".join(f"{t.topic} ({t.partitions}p)" for t in g.topics), "lag": g.lag,
             "outside selection": ", ".join(g.outside) or "-"} for g in assessment.inventory.groups]


def plan_rows(assessment: Assessment) -> list[dict[str, str]]:
    p = assessment.plan
    rate = (f"{p.throughput_mb_s:g} MB/s" + (f", {p.throughput_records_s:,.0f} records/s" if p.throughput_records_s
                                              else "")) if p.throughput_mb_s else ""
    throughput = (f"{rate} per worker ({p.throughput_source})" if p.throughput_mb_s
                  else "not known: pass --throughput MB/s, or add --probe (a real mirror run on the target)")
    mark = "" if p.copy_exact else "~"
    rows = [
        ("initial copy", f"{mark}{p.copy_records_estimate:,} committed records, {mark}{human_bytes(p.copy_bytes_estimate)}"
                         + (f" ({mark}{p.copy_aborted_records:,} aborted records are not copied)"
                            if p.copy_aborted_records else "")),
        ("copy throughput", throughput),
        ("copy duration", f"{'' if (p.copy_seconds or 0) < 1 else '~'}{human_seconds(p.copy_seconds)} with {p.copy_workers} mirror worker"
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
    text = (f"assessed {len(inv.topics)} topics ({sum(t.partitions for t in inv.topics)} partitions, "
            f"{records_text(inv.topics)}, {bytes_text(inv.topics)}) and "
            f"{len(inv.groups)} groups on {assessment.source} in {inv.seconds:.1f}s")
    r = assessment.readiness
    if r is None:
        return text + "; no target given: readiness not assessed"
    counts = {level: sum(1 for f in r.findings if f.level == level) for level in ("blocker", "risk", "not probed")}
    if r.probe.run_id is None:
        return (text + f"; readiness for {r.target}: {counts['blocker']} blockers, {counts['risk']} risks; "
                "the target not probed (add --probe, or run migrate probe)")
    return (text + f"; readiness for {r.target}: {counts['blocker']} blockers, {counts['risk']} risks, "
            f"{counts['not probed']} not probed (probe: {r.probe.how} {r.probe.run_id} at {r.probe.ran_at})")


def brief(inventory) -> list[str]:
    """A few lines about an estate (what `migrate demo` prints before it mirrors)."""
    topics = inventory.topics
    lines = [f"{len(topics)} topics, {sum(t.partitions for t in topics)} partitions, {records_text(topics)}, "
             f"{bytes_text(topics)}"]
    for label, chosen in (("transactional", [t.name for t in topics if t.transactions != "no"]),
                          ("compacted", [t.name for t in topics if t.compacted]),
                          ("large records (>= 100 KB)", [t.name for t in topics if t.usage.sizes.max >= 100_000])):
        if chosen:
            lines.append(f"{label}: {', '.join(chosen)}")
    if inventory.groups:
        lines.append("groups: " + ", ".join(f"{g.group} (lag {g.lag})" for g in inventory.groups))
    return lines
