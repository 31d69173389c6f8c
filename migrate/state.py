"""The state database: everything the tool remembers, in one SQLite file.

It holds the local cluster registry, mirror definitions and topic mappings, the offset
map index, validation history and cursors, the playbook journal and probe results.  The
file carries its own schema version and upgrades itself on open, one numbered migration at
a time, each in its own transaction.  WAL mode and a busy timeout let several processes on
one machine (mirror workers, a validator, a playbook) share it safely; writers keep their
transactions short.

A file that is not ours (not SQLite, or SQLite without our marker) or that was written by a
newer version is refused with a StateError rather than touched.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

from migrate.errors import StateError

APP_MARKER = "kafka-migrate"


def _v1_foundation(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE local_clusters (
            name TEXT PRIMARY KEY, platform TEXT NOT NULL, bootstrap TEXT NOT NULL,
            port INTEGER NOT NULL, pid INTEGER, data_dir TEXT, log_path TEXT,
            started_at TEXT)"""
    )


def _v2_mirrors(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE mirrors (
            name TEXT PRIMARY KEY, source TEXT NOT NULL, target TEXT NOT NULL,
            topics TEXT NOT NULL, exclude TEXT NOT NULL, rename TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE topic_mappings (
            mirror TEXT NOT NULL, source_topic TEXT NOT NULL, target_topic TEXT NOT NULL,
            partitions INTEGER NOT NULL, PRIMARY KEY (mirror, source_topic))"""
    )
    db.execute(
        """CREATE TABLE offset_runs (
            mirror TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
            source_start INTEGER NOT NULL, target_start INTEGER NOT NULL, length INTEGER NOT NULL,
            PRIMARY KEY (mirror, topic, partition, source_start))"""
    )
    db.execute(
        "CREATE INDEX offset_runs_by_target ON offset_runs (mirror, topic, partition, target_start)"
    )
    db.execute(
        """CREATE TABLE mirror_progress (
            mirror TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
            target_topic TEXT NOT NULL, source_low INTEGER, source_high INTEGER, target_high INTEGER,
            status TEXT NOT NULL, error TEXT, worker TEXT, updated_at TEXT NOT NULL,
            PRIMARY KEY (mirror, topic, partition))"""
    )


def _v3_validation(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE validation_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
            source TEXT NOT NULL, target TEXT NOT NULL, topics TEXT NOT NULL, mode TEXT NOT NULL,
            range_from TEXT, range_to TEXT, records_compared INTEGER NOT NULL DEFAULT 0,
            divergences INTEGER NOT NULL DEFAULT 0, duration_s REAL, result TEXT NOT NULL,
            summary TEXT, scope TEXT NOT NULL DEFAULT '', incremental INTEGER NOT NULL DEFAULT 0,
            counts TEXT, error TEXT)"""
    )
    db.execute(
        """CREATE TABLE validation_cursors (
            scope TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
            source_next INTEGER NOT NULL, target_next INTEGER NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (scope, topic, partition))"""
    )


def _v4_playbooks(db: sqlite_utils.Database) -> None:
    # `plan` is the resolved playbook (JSON, secrets redacted) so that a resume runs exactly
    # what the interrupted run planned, even if the file changed since.
    db.execute(
        """CREATE TABLE playbook_runs (
            id TEXT PRIMARY KEY, playbook TEXT NOT NULL, path TEXT NOT NULL, mode TEXT NOT NULL,
            vars TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER,
            started_at TEXT NOT NULL, finished_at TEXT, plan TEXT NOT NULL DEFAULT '{}',
            digest TEXT, shadow_tag TEXT, parent TEXT, error TEXT)"""
    )
    db.execute(
        """CREATE TABLE playbook_steps (
            run_id TEXT NOT NULL, phase TEXT NOT NULL DEFAULT 'main', idx INTEGER NOT NULL,
            name TEXT NOT NULL, action TEXT NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, started_at TEXT,
            finished_at TEXT, duration_s REAL, output TEXT, error TEXT, data TEXT,
            PRIMARY KEY (run_id, phase, idx))"""
    )
    db.execute(
        """CREATE TABLE playbook_processes (
            key TEXT PRIMARY KEY, pid INTEGER NOT NULL, command TEXT NOT NULL, log_path TEXT,
            run_id TEXT, started_at TEXT NOT NULL)"""
    )


def _v5_probe(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE probe_results (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, cluster TEXT NOT NULL,
            bootstrap TEXT NOT NULL, ran_at TEXT NOT NULL, check_name TEXT NOT NULL,
            client TEXT NOT NULL, status TEXT NOT NULL, expected TEXT, observed TEXT,
            duration_s REAL)"""
    )
    db.execute("CREATE INDEX probe_results_by_cluster ON probe_results (cluster, ran_at)")


def _v6_vanished(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE vanished_offsets (
            mirror TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
            first_offset INTEGER NOT NULL, end_offset INTEGER NOT NULL, found_at TEXT NOT NULL,
            PRIMARY KEY (mirror, topic, partition, first_offset))"""
    )


def _v7_probe_cluster_id(db: sqlite_utils.Database) -> None:
    # A stored probe run belongs to the cluster it probed (its id and bootstrap), not to a profile
    # name: a profile may point at a new cluster (a local one started again on another port).
    db.execute("ALTER TABLE probe_results ADD COLUMN cluster_id TEXT")
    db.execute("CREATE INDEX probe_results_by_bootstrap ON probe_results (bootstrap, ran_at)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_foundation,
    _v2_mirrors,
    _v3_validation,
    _v4_playbooks,
    _v5_probe,
    _v6_vanished,
    _v7_probe_cluster_id,
]
SCHEMA_VERSION = len(MIGRATIONS)


class State:
    """An open state database.  `db` is a sqlite_utils.Database for the owning modules."""

    def __init__(self, path: str | os.PathLike, *, upgrade_to: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 30000")
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"state file {self.path} is not a migrate state database ({exc}); "
                "move it away or pass --state with another path"
            ) from exc
        self.db = sqlite_utils.Database(conn)
        try:
            # Checked before anything writes: switching to WAL rewrites the header of a foreign file.
            self._upgrade(SCHEMA_VERSION if upgrade_to is None else upgrade_to)
            self.journal_mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise

    @property
    def version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _upgrade(self, wanted: int) -> None:
        try:
            tables = set(self.db.table_names())
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"state file {self.path} is not a migrate state database ({exc}); "
                "move it away or pass --state with another path"
            ) from exc
        if tables and "meta" not in tables:
            raise StateError(
                f"state file {self.path} holds tables that are not ours; "
                "move it away or pass --state with another path"
            )
        if "meta" in tables:
            marker = self.db.execute("SELECT value FROM meta WHERE key = 'app'").fetchone()
            if not marker or marker[0] != APP_MARKER:
                raise StateError(
                    f"state file {self.path} was not written by kafka-migrate; "
                    "move it away or pass --state with another path"
                )
        current = self.version
        if current > SCHEMA_VERSION:
            raise StateError(
                f"state file {self.path} has schema version {current}, newer than this version of "
                f"kafka-migrate understands ({SCHEMA_VERSION}); upgrade kafka-migrate"
            )
        for number in range(current + 1, wanted + 1):
            with self.transaction(immediate=True):
                if self.version >= number:  # another process upgraded meanwhile
                    continue
                MIGRATIONS[number - 1](self.db)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", [str(number)]
                )
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('app', ?)", [APP_MARKER])

    @contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite_utils.Database]:
        """A short write transaction; BEGIN IMMEDIATE takes the write lock up front."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield self.db
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
