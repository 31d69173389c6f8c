"""A validation result as one self-contained HTML page for people.

No network assets, no scripts: inline CSS, a per-topic parity table, the divergence
examples, and an inline SVG chart of records compared and divergences per run over time
(taken from the run history the caller passes in).  Every value is escaped.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

from migrate.validators.divergence import INFO, KINDS, ValidationResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d232a}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5a6570}.verdict{display:inline-block;padding:4px 10px;border-radius:4px;font-weight:600;color:#fff}
.ok{background:#2e7d32}.bad{background:#c62828}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d5dbe1;padding:4px 8px;text-align:left}
th{background:#f1f4f7}td.n{text-align:right;font-variant-numeric:tabular-nums}tr.bad td{background:#fdecea}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int], bad_rows: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f'<td class="n">{_e(v)}</td>' if j in numeric else f"<td>{_e(v)}</td>"
                        for j, v in enumerate(row))
        body.append(f'<tr class="bad">{cells}</tr>' if i in bad_rows else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def chart_svg(runs: Sequence[dict], width: int = 720, height: int = 200) -> str:
    """Bars: records compared per run (left scale); line and dots: divergences (right scale)."""
    runs = list(runs)[-30:]
    if not runs:
        return "<p>No earlier runs recorded.</p>"
    pad_l, pad_r, pad_t, pad_b = 56, 56, 12, 36
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    max_records = max(1, max(int(r.get("records_compared") or 0) for r in runs))
    max_div = max(1, max(int(r.get("divergences") or 0) for r in runs))
    step = inner_w / len(runs)
    bar_w = max(2.0, step * 0.6)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="records compared and divergences per run">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{inner_w}" height="{inner_h}" fill="#fafbfc" stroke="#d5dbe1"/>']
    points = []
    for i, run in enumerate(runs):
        x = pad_l + i * step + (step - bar_w) / 2
        records = int(run.get("records_compared") or 0)
        h = inner_h * records / max_records
        parts.append(f'<rect x="{x:.1f}" y="{pad_t + inner_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                     f'fill="#90caf9"><title>run {_e(run.get("id"))}: {records} records compared</title></rect>')
        cx = pad_l + i * step + step / 2
        cy = pad_t + inner_h - inner_h * int(run.get("divergences") or 0) / max_div
        points.append((cx, cy, run))
        every = max(1, math.ceil(84 / step))  # a "MM-DD HH:MM" label needs about 80 px
        label = _e(str(run.get("started_at") or "")[5:16].replace("T", " "))
        if i % every == 0:
            parts.append(f'<text x="{cx:.1f}" y="{height - 18}" font-size="10" text-anchor="middle" '
                         f'fill="#5a6570">{label}</text>')
    parts.append('<polyline fill="none" stroke="#c62828" stroke-width="2" points="'
                 + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points) + '"/>')
    for x, y, run in points:
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#c62828"><title>run {_e(run.get("id"))}: '
                     f'{_e(run.get("divergences"))} divergences</title></circle>')
    parts.append(f'<text x="{pad_l - 6}" y="{pad_t + 10}" font-size="10" text-anchor="end" fill="#1565c0">'
                 f'{max_records:,}</text><text x="{pad_l - 6}" y="{pad_t + inner_h}" font-size="10" '
                 f'text-anchor="end" fill="#1565c0">0</text>')
    parts.append(f'<text x="{width - pad_r + 6}" y="{pad_t + 10}" font-size="10" fill="#c62828">{max_div:,}</text>'
                 f'<text x="{width - pad_r + 6}" y="{pad_t + inner_h}" font-size="10" fill="#c62828">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def _what(result: ValidationResult) -> str:
    """Which mirror and clusters, and which time window: the page is read by people who did not run it."""
    pairing = f"mirror {result.mirror}" if result.mirror else "records paired by key"
    return (f"{pairing}: source {result.source or '?'} -> target {result.target or '?'}; "
            f"records from {result.range_from or 'the beginning'} to {result.range_to or 'now'}")


def render_html(result: ValidationResult, runs: Sequence[dict] = (), title: str = "Parity report") -> str:
    """The whole page; `runs` are earlier runs (dicts with id, started_at, records_compared, divergences)."""
    problem = result.verdict if result.one_sided else f"{result.divergences:,} DIVERGENT RECORDS"
    verdict = ('<span class="verdict ok">PARITY</span>' if result.parity
               else f'<span class="verdict bad">{_e(problem)}</span>')
    topic_rows = [[t.topic, t.target_topic, t.partitions, f"{t.records_compared:,}",
                   *[t.counts.get(k, 0) for k in KINDS], *[t.info.get(k, 0) for k in INFO],
                   f"only on the {t.only_on}" if t.only_on else "parity" if not t.divergences else "DIVERGED"]
                  for t in result.topics]
    bad = {i for i, t in enumerate(result.topics) if t.divergences or t.only_on}
    topics_table = _table(["topic", "target topic", "partitions", "compared", *KINDS, *INFO, "status"],
                          topic_rows, set(range(2, 4 + len(KINDS) + len(INFO))), bad)
    if result.examples:
        example_rows = [[d["kind"], d["topic"], d["partition"], d["source_offset"], d["target_partition"],
                         d["target_offset"], d["key"], d["field"], d["detail"]]
                        for d in (x.as_dict() for x in result.examples)]
        examples = _table(["kind", "topic", "partition", "source offset", "target partition", "target offset",
                           "key", "field", "detail"], example_rows, {2, 3, 4, 5}, set())
    else:
        examples = "<p>None.</p>"
    history = [dict(r) for r in runs]
    if result.run_id is not None and not any(r.get("id") == result.run_id for r in history):
        history.append({"id": result.run_id, "started_at": result.started_at,
                        "records_compared": result.records_compared, "divergences": result.divergences})
    history.sort(key=lambda r: r.get("id") or 0)
    notes = "".join(f"<li>{_e(n)}</li>" for n in result.notes)
    counts = ", ".join(f"{_e(v)} {k}" for k, v in result.counts.items())
    info = ", ".join(f"{_e(v)} {k}" for k, v in result.info.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>{_e(title)} {verdict}</h1>
<p class="meta">{_e(_what(result))}</p>
<p class="meta">Run {_e(result.run_id)} at {_e(result.started_at)} &middot; {_e(result.mode)} mode &middot;
range {_e(result.range_from)} &rarr; {_e(result.range_to)} &middot; {result.records_compared:,} records compared in
{result.duration_s:.1f} s &middot; {counts} &middot; info: {info}</p>
{f'<ul class="meta">{notes}</ul>' if notes else ''}
<h2>Topics</h2>
{topics_table}
<h2>Divergence examples</h2>
{examples}
<h2>Runs over time</h2>
<p class="legend"><span style="background:#90caf9"></span>records compared
<span style="background:#c62828"></span>divergences</p>
{chart_svg(history)}
</body></html>
"""
