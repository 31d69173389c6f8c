"""The local index of offset maps in the state database.

Runs live in `offset_runs`; each partition's head (source_low, source_high, target_high,
status) lives in `mirror_progress`.  Saving writes only the runs that changed since the
last save (normally just the last one, which grew), in one short transaction.
"""

from __future__ import annotations

import datetime as dt

from migrate.offset_maps.runs import PartitionMap, Run
from migrate.state import State


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class MapStore:
    def __init__(self, state: State, mirror: str):
        self.state = state
        self.mirror = mirror

    def load(self, topic: str, partition: int) -> PartitionMap:
        db = self.state.db
        rows = db.execute(
            "SELECT source_start, target_start, length FROM offset_runs "
            "WHERE mirror = ? AND topic = ? AND partition = ? ORDER BY source_start",
            [self.mirror, topic, partition],
        ).fetchall()
        head = db.execute(
            "SELECT source_low, source_high, target_high FROM mirror_progress "
            "WHERE mirror = ? AND topic = ? AND partition = ?",
            [self.mirror, topic, partition],
        ).fetchone()
        runs = [Run(*row) for row in rows]
        pmap = PartitionMap(runs, *(head or (None, None, None)))
        pmap.mark_saved()
        return pmap

    def partitions(self) -> list[tuple[str, int]]:
        rows = self.state.db.execute(
            "SELECT topic, partition FROM mirror_progress WHERE mirror = ? ORDER BY topic, partition",
            [self.mirror],
        ).fetchall()
        return [(t, p) for t, p in rows]

    def save(self, topic: str, partition: int, pmap: PartitionMap, target_topic: str,
             status: str = "mirroring", worker: str | None = None, error: str | None = None) -> None:
        runs = pmap.dirty_runs()
        with self.state.transaction() as db:
            db.conn.executemany(
                "INSERT OR REPLACE INTO offset_runs (mirror, topic, partition, source_start, target_start, length) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(self.mirror, topic, partition, r.source_start, r.target_start, r.length) for r in runs],
            )
            self._delete_pruned(db, topic, partition, pmap)
            self._write_head(db, topic, partition, pmap, target_topic, status, worker, error)
        pmap.mark_saved()

    def save_many(self, items: list[tuple[str, int, PartitionMap, str, str, str | None]],
                  worker: str | None = None) -> None:
        """Save several partitions (topic, partition, map, target topic, status, error) in one transaction."""
        with self.state.transaction() as db:
            db.conn.executemany(
                "INSERT OR REPLACE INTO offset_runs (mirror, topic, partition, source_start, target_start, length) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(self.mirror, topic, partition, r.source_start, r.target_start, r.length)
                 for topic, partition, pmap, *_ in items for r in pmap.dirty_runs()],
            )
            for topic, partition, pmap, target_topic, status, error in items:
                self._delete_pruned(db, topic, partition, pmap)
                self._write_head(db, topic, partition, pmap, target_topic, status, worker, error)
        for item in items:
            item[2].mark_saved()

    def replace(self, topic: str, partition: int, pmap: PartitionMap, target_topic: str,
                status: str = "mirroring") -> None:
        """Overwrite a partition's map entirely (used when rebuilding from the map topic)."""
        with self.state.transaction() as db:
            db.execute("DELETE FROM offset_runs WHERE mirror = ? AND topic = ? AND partition = ?",
                       [self.mirror, topic, partition])
            db.conn.executemany(
                "INSERT INTO offset_runs (mirror, topic, partition, source_start, target_start, length) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(self.mirror, topic, partition, r.source_start, r.target_start, r.length) for r in pmap.runs],
            )
            self._write_head(db, topic, partition, pmap, target_topic, status, None, None)
        pmap.mark_saved()

    def record_vanished(self, topic: str, partition: int, first: int, end: int) -> None:
        """Source offsets [first, end) were deleted before they were mirrored."""
        with self.state.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO vanished_offsets (mirror, topic, partition, first_offset, end_offset, "
                "found_at) VALUES (?, ?, ?, ?, ?, ?)", [self.mirror, topic, partition, first, end, _now()])

    def vanished(self) -> dict[tuple[str, int], list[tuple[int, int]]]:
        """Per partition, the source offset ranges [first, end) deleted before they were mirrored."""
        out: dict[tuple[str, int], list[tuple[int, int]]] = {}
        for topic, partition, first, end in self.state.db.execute(
                "SELECT topic, partition, first_offset, end_offset FROM vanished_offsets WHERE mirror = ? "
                "ORDER BY topic, partition, first_offset", [self.mirror]).fetchall():
            out.setdefault((topic, partition), []).append((first, end))
        return out

    def progress(self) -> list[dict]:
        return list(self.state.db.query(
            "SELECT * FROM mirror_progress WHERE mirror = ? ORDER BY topic, partition", [self.mirror]))

    def _delete_pruned(self, db, topic: str, partition: int, pmap: PartitionMap) -> None:
        """The rows of runs pruned from the map (runs.py): every row below its first kept run."""
        if pmap.pruned and pmap.runs:
            db.execute("DELETE FROM offset_runs WHERE mirror = ? AND topic = ? AND partition = ? AND source_start < ?",
                       [self.mirror, topic, partition, pmap.runs[0].source_start])

    def _write_head(self, db, topic, partition, pmap, target_topic, status, worker, error) -> None:
        db.execute(
            "INSERT INTO mirror_progress (mirror, topic, partition, target_topic, source_low, source_high, "
            "target_high, status, error, worker, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (mirror, topic, partition) DO UPDATE SET target_topic = excluded.target_topic, "
            "source_low = excluded.source_low, source_high = excluded.source_high, "
            "target_high = excluded.target_high, status = excluded.status, error = excluded.error, "
            "worker = COALESCE(excluded.worker, worker), updated_at = excluded.updated_at",
            [self.mirror, topic, partition, target_topic, pmap.source_low, pmap.source_high,
             pmap.target_high, status, error, worker, _now()],
        )
