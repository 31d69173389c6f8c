"""What a target platform lacks that the source platform has, from two probe reports.

A gap is a check that passes on the source and does not pass on the target with the same
client (fails, is unsupported, errors, or was never probed there).  Behaviour the source
lacks too is not a gap: the estate cannot be relying on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrate.probe.checks import FIGURES
from migrate.probe.model import CONFLUENT, PASS, ProbeReport

NOT_PROBED = "not probed"


@dataclass(frozen=True)
class ProbeGap:
    check: str
    client: str
    source: str
    target: str
    expected: str
    target_observed: str


def probe_diff(source: ProbeReport, target: ProbeReport) -> list[ProbeGap]:
    gaps = []
    for mine in source.results:
        if mine.status != PASS:
            continue
        theirs = target.get(mine.name, mine.client)
        if theirs is None:
            gaps.append(ProbeGap(mine.name, mine.client, mine.status, NOT_PROBED, mine.expected, ""))
        elif theirs.status != PASS:
            gaps.append(ProbeGap(mine.name, mine.client, mine.status, theirs.status, theirs.expected, theirs.observed))
    return gaps


@dataclass(frozen=True)
class FigureRow:
    check: str
    source: str
    target: str


def figure_comparison(source: ProbeReport, target: ProbeReport, client: str = CONFLUENT) -> list[FigureRow]:
    """Side by side, the figures (join time, latency, throughput, limits) both platforms reported."""
    rows = []
    for name in FIGURES:
        mine, theirs = source.get(name, client), target.get(name, client)
        if mine is not None and theirs is not None:
            rows.append(FigureRow(name, mine.observed, theirs.observed))
    return rows
