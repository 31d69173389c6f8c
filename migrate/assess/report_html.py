"""An assessment as one self-contained HTML page: readiness first, then the estate, charts and plan.

No network assets and no scripts: inline CSS and inline SVG bar charts (bytes and write rate
per topic, lag per group, record-size distribution).  Every value is escaped.  Tables and
styles are shared with the parity report (migrate.validators.report_html).
"""

from __future__ import annotations

from typing import Sequence

from migrate.assess import summary
from migrate.assess.model import BLOCKER, RISK, SIZE_BUCKET_LABELS, Assessment
from migrate.validators.report_html import _CSS, _e, _table

_MORE_CSS = """
.level{display:inline-block;padding:1px 8px;border-radius:3px;font-weight:600}
.chart{margin:6px 0 18px}.note{color:#5a6570;font-size:12px}
"""
_LEVEL_COLOURS = {"ok": "#2e7d32", "risk": "#ef6c00", "blocker": "#c62828", "not probed": "#5a6570"}


def bar_chart(items: Sequence[tuple[str, float]], unit: str, label: str, colour: str = "#1565c0",
              width: int = 720) -> str:
    """Horizontal bars, one per item, with the value written at the bar's end."""
    items = list(items)
    if not items:
        return '<p class="note">Nothing to chart.</p>'
    row_h, pad_l, pad_r = 22, 230, 110
    height = row_h * len(items) + 8
    peak = max(value for _, value in items) or 1.0
    inner = width - pad_l - pad_r
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">']
    for i, (name, value) in enumerate(items):
        y = 4 + i * row_h
        w = max(1.0, inner * value / peak) if value else 0.0
        shown = name if len(name) <= 34 else name[:15] + "…" + name[-18:]
        parts.append(f'<text x="{pad_l - 6}" y="{y + 14}" font-size="11" text-anchor="end" fill="#1d232a">'
                     f'{_e(shown)}</text>')
        parts.append(f'<rect x="{pad_l}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}">'
                     f'<title>{_e(name)}: {_e(_value(value, unit))}</title></rect>')
        parts.append(f'<text x="{pad_l + w + 6:.1f}" y="{y + 14}" font-size="11" fill="#5a6570">'
                     f'{_e(_value(value, unit))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _value(value: float, unit: str) -> str:
    if unit == "bytes":
        return summary.human_bytes(value)
    if unit == "bytes/s":
        return summary.human_bytes(value) + "/s"
    return f"{value:,.6g} {unit}".strip()


def _readiness(assessment: Assessment) -> str:
    r = assessment.readiness
    if r is None:
        return "<p>No target given: readiness not assessed (pass --target).</p>"
    probe = (f"Probe results: {_e(r.probe.how)} {_e(r.probe.run_id)} at {_e(r.probe.ran_at)}." if r.probe.run_id
             else "The target was not probed: pass --probe, or run <code>migrate probe</code> on it first.")
    rows = summary.readiness_rows(r)
    levelled = [[row["kind"], row["name"], row["readiness"], row["why"]] for row in rows]
    table = _table(["kind", "name", "readiness", "why"], levelled, set(),
                   {i for i, row in enumerate(rows) if row["readiness"] == BLOCKER})
    for level, colour in _LEVEL_COLOURS.items():
        table = table.replace(f"<td>{_e(level)}</td>",
                              f'<td><span class="level" style="color:#fff;background:{colour}">{_e(level)}</span></td>')
    findings = [[f.level, f.kind, f.subject, f.behaviour, f.check, f.evidence, f.remedy]
                for f in r.findings if f.level != "ok"]
    detail = (_table(["level", "kind", "name", "behaviour", "probe check", "evidence", "what to do"], findings,
                     set(), {i for i, f in enumerate(findings) if f[0] == BLOCKER}) if findings
              else "<p>No risks or blockers.</p>")
    return f"<p class=\"meta\">Target {_e(r.target)}. {probe}</p>{table}<h3>Evidence</h3>{detail}"


def _rows_table(rows: list[dict]) -> str:
    if not rows:
        return "<p>None.</p>"
    headers = list(rows[0])
    return _table(headers, [[row[h] for h in headers] for row in rows], set(), set())


def render_html(assessment: Assessment, title: str = "Estate assessment") -> str:
    inv = assessment.inventory
    topics = inv.topics
    buckets = [sum(t.usage.sizes.buckets[i] for t in topics if t.usage.sizes.buckets)
               for i in range(len(SIZE_BUCKET_LABELS))]
    charts = [
        ("Bytes per topic (estimate)", bar_chart([(t.name, t.bytes_estimate) for t in topics], "bytes",
                                                 "bytes per topic")),
        ("Write rate per topic (records/s, measured)",
         bar_chart([(t.name, t.records_per_s) for t in topics if t.records_per_s is not None], "records/s",
                   "write rate per topic", "#00897b")
         if any(t.records_per_s is not None for t in topics) else '<p class="note">Not measured.</p>'),
        ("Lag per group (records)", bar_chart([(g.group, g.lag) for g in inv.groups], "records", "lag per group",
                                              "#ef6c00")),
        ("Record-size distribution (sampled records)",
         bar_chart(list(zip(SIZE_BUCKET_LABELS, buckets)), "records", "record sizes", "#6a1b9a")),
    ]
    chart_html = "".join(f'<h3>{_e(name)}</h3><div class="chart">{svg}</div>' for name, svg in charts)
    notes = "".join(f"<li>{_e(n)}</li>" for n in (*inv.notes, *assessment.notes, *assessment.plan.notes))
    verdict = ""
    if assessment.readiness is not None:
        blockers = len(assessment.readiness.blockers)
        risks = sum(1 for f in assessment.readiness.findings if f.level == RISK)
        verdict = (f'<span class="verdict bad">{blockers} BLOCKERS</span>' if blockers
                   else '<span class="verdict ok">NO BLOCKERS</span>') + f" <span class=\"meta\">{risks} risks</span>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}{_MORE_CSS}</style></head>
<body>
<h1>{_e(title)} {verdict}</h1>
<p class="meta">{_e(summary.headline(assessment))}. Generated {_e(assessment.generated_at)}; sample: at most
{inv.sample_limit} records per partition; write rates over {inv.sample_seconds:g}s. Figures marked ~ are estimates.</p>
<h2>Readiness</h2>
{_readiness(assessment)}
<h2>Topics</h2>
{_rows_table(summary.topic_rows(assessment))}
<h2>Consumer groups</h2>
{_rows_table(summary.group_rows(assessment))}
<h2>Charts</h2>
{chart_html}
<h2>Plan</h2>
{_rows_table(summary.plan_rows(assessment))}
{f'<h2>Notes</h2><ul class="meta">{notes}</ul>' if notes else ''}
</body></html>
"""
