"""How `migrate mirror status` reads at a glance: one row per topic, problems first, one summary line.

The per-partition rows (what `mirror_status` returns, and --format json prints) are folded here
for people: a topic's partitions become one row with its lag, vanished offsets, the states its
partitions are in and how many of its workers are alive.  Errors go below the table, whole.
"""

from __future__ import annotations

import os
from collections import Counter

from migrate.mirror.results import FAILED

TOPIC_COLUMNS = ["topic", "partitions", "lag", "vanished", "states", "workers"]


def _trouble(row: dict) -> tuple[int, int]:
    """Sort key: failed partitions, then errors, dead workers, vanished offsets, lag (worst first)."""
    rank = (0 if row["status"] in FAILED else 1 if row.get("error") else 2 if row.get("worker_alive") is False
            and row["status"] == "mirroring" else 3 if row["vanished"] else 4 if row["lag"] else 5)
    return rank, -row["lag"]


def partitions_first_problems(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (*_trouble(r), r["topic"], r["partition"]))


def shared_prefix(rows: list[dict]) -> str:
    """The dotted prefix all topic names share ("" when none): left out of the topic rows so that they fit."""
    names = sorted({r["topic"] for r in rows})
    if len(names) < 2:
        return ""
    common = os.path.commonprefix(names)
    return common[:common.rfind(".") + 1]


def topic_rows(rows: list[dict], prefix: str = "") -> list[dict]:
    by_topic: dict[str, list[dict]] = {}
    for row in rows:
        by_topic.setdefault(row["topic"], []).append(row)
    out = []
    for topic, parts in by_topic.items():
        states = Counter(p["status"] for p in parts)
        workers = {p["worker"]: p["worker_alive"] for p in parts if p["worker"]}
        alive = sum(1 for a in workers.values() if a)
        name = topic.removeprefix(prefix) if all(p["target_topic"] == topic for p in parts) \
            else f"{topic} -> {parts[0]['target_topic']}"
        out.append((min(_trouble(p) for p in parts), topic, {
            "topic": name, "partitions": len(parts), "lag": sum(p["lag"] for p in parts),
            "vanished": sum(p["vanished"] for p in parts),
            "states": ", ".join(f"{n} {s}" for s, n in sorted(states.items(), key=lambda i: (i[0] not in FAILED, i[0]))),
            "workers": f"{alive}/{len(workers)} alive" if workers else "-",
        }))
    return [row for _, _, row in sorted(out, key=lambda item: (item[0], item[1]))]


def summary(name: str, rows: list[dict]) -> str:
    if not rows:
        return f"mirror {name}: no partitions recorded yet"
    states = Counter(r["status"] for r in rows)
    workers = {r["worker"]: r["worker_alive"] for r in rows if r["worker"]}
    topics = len({r["topic"] for r in rows})
    vanished = sum(r["vanished"] for r in rows)
    return (f"mirror {name}: {topics} topic{'s' if topics != 1 else ''}, {len(rows)} partitions, "
            f"lag {sum(r['lag'] for r in rows):,}"
            + (f", {vanished:,} offsets vanished before they were mirrored" if vanished else "")
            + "; " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
            + (f"; {sum(1 for a in workers.values() if a)} of {len(workers)} workers alive" if workers else ""))


def error_lines(rows: list[dict]) -> list[str]:
    return [f"error: {r['topic']}[{r['partition']}] {r['status']}: {r['error']}"
            for r in partitions_first_problems(rows) if r.get("error")]


def drift_lines(rows: list[dict]) -> list[str]:
    """One line per topic whose configs differ from the source's (migrate.mirror.configsync)."""
    drifted = {r["topic"]: r["config_drift"] for r in rows if r.get("config_drift")}
    return [f"config drift: {topic}: {text}" for topic, text in sorted(drifted.items())]
