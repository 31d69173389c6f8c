"""The registry of mirrors: what a mirror is, how far it got, and how its maps are opened.

The one owner of the `mirrors`, `topic_mappings` and `mirror_progress` tables: every other
module (CLI, engine, offset sync, validation, playbooks) asks here.  The truth a fleet
shares lives in Kafka on the target (migrate.mirror.fleet for status, the map topic for
maps); the local tables are an index and cache of it, rebuilt from Kafka when missing.

Rules:
1. Maps: a partition's map is the longer (further `source_high`) of the local index and the
   durable map topic; both are prefixes of the truth, so the longer one is the better.
2. Progress: per partition, the newer of the local row and the fleet's row (by update time).
3. Liveness: a partition marked "mirroring" whose worker has no recent heartbeat in the
   fleet status is reported "stopped".
4. Lag: source end minus mirrored-up-to (minus the source log start when nothing is mirrored).
5. Which mirror a command means when none is named: the only one the state knows; with none or
   several, one line naming those that exist, never a guess (a guess once made `validate` compare
   topics that were never mirrored).  Rehearsal shadow mirrors (`<name>.rh-<id>`) are never chosen
   by default; among several, the one called `default` is the one a user who never passed --name made.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from migrate.config import ClusterProfile
from migrate.errors import ClusterUnreachable, KafkaOperationError, UsageError
from migrate.mirror import fleet
from migrate.mirror.spec import DEFAULT_NAME
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.store import MapStore
from migrate.offset_maps.topic import load_maps
from migrate.state import State

log = logging.getLogger("migrate.mirror")

FAILED = ("diverged", "data-loss", "blocked")


@dataclass(frozen=True)
class MirrorRecord:
    """A mirror as the state database remembers it (cluster specs as the user gave them)."""

    name: str
    source: str
    target: str
    topics: dict[str, str]  # source topic -> target topic


def record(state: State, spec, plans) -> None:
    """Remember the mirror and its topic mapping (plans: source_topic, target_topic, partitions)."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    _record(state, spec.name, spec.source_spec or spec.source.bootstrap, spec.target_spec or spec.target.bootstrap,
            list(spec.topics), list(spec.exclude), spec.rename,
            [(p.source_topic, p.target_topic, p.partitions) for p in plans], now)


def _record(state: State, name: str, source: str, target: str, topics: list, exclude: list, rename: str,
            mappings: list[tuple[str, str, int]], now: str) -> None:
    with state.transaction() as db:
        db.execute(
            "INSERT INTO mirrors (name, source, target, topics, exclude, rename, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET source = excluded.source, "
            "target = excluded.target, topics = excluded.topics, exclude = excluded.exclude, "
            "rename = excluded.rename, updated_at = excluded.updated_at",
            [name, source, target, json.dumps(topics), json.dumps(exclude), rename, now, now],
        )
        for source_topic, target_topic, partitions in mappings:
            db.execute(
                "INSERT OR REPLACE INTO topic_mappings (mirror, source_topic, target_topic, partitions) "
                "VALUES (?, ?, ?, ?)", [name, source_topic, target_topic, partitions],
            )


def get(state: State, name: str) -> MirrorRecord | None:
    row = state.db.execute("SELECT name, source, target FROM mirrors WHERE name = ?", [name]).fetchone()
    mappings = dict(state.db.execute(
        "SELECT source_topic, target_topic FROM topic_mappings WHERE mirror = ?", [name]).fetchall())
    if not mappings:  # fall back to what the progress rows say
        mappings = dict(state.db.execute(
            "SELECT DISTINCT topic, target_topic FROM mirror_progress WHERE mirror = ?", [name]).fetchall())
    if row is None and not mappings:
        return None
    source, target = (row[1], row[2]) if row else ("", "")
    return MirrorRecord(name, source, target, mappings)


def names(state: State) -> list[str]:
    return [r[0] for r in state.db.execute("SELECT name FROM mirrors ORDER BY name").fetchall()]


def topics(state: State, name: str) -> dict[str, tuple[str, int]]:
    """Source topic -> (target topic, partition count)."""
    rows = state.db.execute("SELECT source_topic, target_topic, partitions FROM topic_mappings WHERE mirror = ?",
                            [name]).fetchall()
    return {s: (t, n) for s, t, n in rows}


def reverse_of(state: State, forward: MirrorRecord) -> list[str]:
    """Mirrors that copy from `forward`'s target back to its source (by the specs recorded)."""
    if not forward.source or not forward.target:
        return []
    rows = state.db.execute(
        "SELECT name FROM mirrors WHERE source = ? AND target = ? AND name != ? ORDER BY name",
        [forward.target, forward.source, forward.name]).fetchall()
    return [r[0] for r in rows]


# --- maps: one rule -------------------------------------------------------------------------------


def longer(local: PartitionMap | None, durable: PartitionMap | None) -> PartitionMap | None:
    """Rule 1: the map that accounts for more of the source (ties go to the local index)."""
    if durable is None:
        return local
    if local is None or (durable.source_high or 0) > (local.source_high or 0):
        return durable
    return local


def open_maps(state: State | None, name: str, target: ClusterProfile | None = None
              ) -> dict[tuple[str, int], tuple[PartitionMap, str]]:
    """Every partition map of a mirror with its target topic, by rule 1.

    The durable map topic is read when `target` is given; without it, the local index only.
    """
    out: dict[tuple[str, int], tuple[PartitionMap, str]] = {}
    if state is not None:
        store = MapStore(state, name)
        for row in store.progress():
            key = (row["topic"], row["partition"])
            out[key] = (store.load(*key), row["target_topic"])
    if target is not None:
        for key, loaded in load_maps(target, name).items():
            current = out.get(key)
            chosen = longer(current[0] if current else None, loaded.pmap)
            assert chosen is not None  # longer() returns a map whenever the durable one is given
            if current is None or chosen is not current[0]:
                out[key] = (chosen, loaded.target_topic or (current[1] if current else key[0]))
    return out


# --- progress ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionProgress:
    topic: str
    partition: int
    target_topic: str
    source_low: int | None
    source_high: int | None
    target_high: int | None
    status: str  # mirroring | stopped | diverged | data-loss
    error: str
    worker: str
    alive: bool | None  # None: no fleet status to tell
    updated_at: str


def local_progress(state: State, name: str) -> list[dict]:
    return MapStore(state, name).progress()


def read_fleet(target: ClusterProfile, name: str, reader: fleet.StatusReader | None = None
               ) -> fleet.FleetStatus | None:
    """The fleet status, or None when the target cannot be read (the local index answers then).

    With a `reader` kept by the caller, only what was appended since its last read is read.
    """
    try:
        return (reader or fleet.StatusReader(target, name)).refresh()
    except (ClusterUnreachable, KafkaOperationError) as exc:
        log.warning('fleet status of mirror "%s" unreadable (%s); using the local state only', name, exc)
        return None


def progress(state: State | None, name: str, status: fleet.FleetStatus | None = None) -> list[PartitionProgress]:
    """Rules 2 and 3 over the local rows and the fleet status."""
    rows: dict[tuple[str, int], dict] = {}
    for row in (local_progress(state, name) if state is not None else []):
        rows[(row["topic"], row["partition"])] = dict(row)
    # The mirror is what its definition maps: fleet rows of topics it no longer maps (an earlier
    # mirror of the same name writing to the same target) are not part of it.
    mapped = set(topics(state, name)) if state is not None else set()
    for key, row in (status.partitions.items() if status is not None else ()):
        if mapped and key[0] not in mapped:
            continue
        local = rows.get(key)
        if local is None or (row.get("updated_at") or "") > (local.get("updated_at") or ""):
            rows[key] = {"topic": key[0], "partition": key[1], **row}
    out = []
    for key in sorted(rows):
        row = rows[key]
        alive = status.alive(row.get("worker")) if status is not None else None
        state_now = row.get("status") or "mirroring"
        if state_now == "mirroring" and alive is False:
            state_now = "stopped"
        out.append(PartitionProgress(key[0], key[1], row.get("target_topic") or key[0], row.get("source_low"),
                                     row.get("source_high"), row.get("target_high"), state_now,
                                     row.get("error") or "", row.get("worker") or "", alive,
                                     row.get("updated_at") or ""))
    return out


def lag(rows: list[PartitionProgress], ends: dict, wanted: list[tuple[str, int]] | None = None
        ) -> tuple[int, dict[str, int], list[str]]:
    """Rule 4: (total lag, lag per partition, problems) against the source `ends`."""
    highs = {(r.topic, r.partition): r.source_high for r in rows}
    problems = [f"{r.topic}[{r.partition}] {r.status}: {r.error}".strip() for r in rows
                if r.status in FAILED or r.error]
    per = {}
    for tp in (wanted if wanted is not None else sorted(highs)):
        end = ends[tp]
        high = highs.get(tp)
        per[f"{tp[0]}[{tp[1]}]"] = max(0, end.high - (high if high is not None else end.low))
    return sum(per.values()), per, problems


def adopt_definition(state: State, name: str, status: fleet.FleetStatus) -> bool:
    """Rebuild the local record of a mirror from the fleet status (a machine that never ran it)."""
    definition = status.definition
    if definition is None:
        return False
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    _record(state, name, definition["source"], definition["target"], definition.get("topics", []),
            definition.get("exclude", []), definition.get("rename", "{topic}"),
            [(s, t, n) for s, (t, n) in definition.get("mappings", {}).items()], now)
    return True


# --- which mirror a command means ------------------------------------------------------------

SHADOW_MARK = ".rh-"


def recorded_mirrors(state: State) -> list[str]:
    """Every mirror name the state has a record, a mapping or progress for, sorted."""
    names: set[str] = set()
    for sql in ("SELECT name FROM mirrors", "SELECT DISTINCT mirror FROM topic_mappings",
                "SELECT DISTINCT mirror FROM mirror_progress"):
        names.update(row[0] for row in state.db.execute(sql).fetchall())
    return sorted(names)


def known_text(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def choose_mirror(state: State, name: str | None) -> str:
    """`name` when given and recorded; the only production mirror when not given; else UsageError."""
    names = recorded_mirrors(state)
    if name is not None:
        if name not in names:
            raise UsageError(f'no mirror named "{name}" in {state.path} (mirrors: {known_text(names)}); '
                             f"run migrate mirror --name {name} first, or pass one of those")
        return name
    production = [n for n in names if SHADOW_MARK not in n]
    if len(production) == 1:
        return production[0]
    if DEFAULT_NAME in production:
        return DEFAULT_NAME
    if not production:
        raise UsageError(f"no mirror is recorded in {state.path}; run migrate mirror first, or pass --name")
    raise UsageError(f"several mirrors are recorded ({known_text(production)}); pass --name with one of them")
