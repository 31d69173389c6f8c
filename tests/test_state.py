"""The state database: WAL mode, self-upgrading schema, and refusing files that are not ours."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from migrate.errors import StateError
from migrate.state import SCHEMA_VERSION, State
from support import run_cli

CLUSTER_ROW = {"name": "source", "platform": "noida", "bootstrap": "127.0.0.1:1", "port": 1, "pid": None,
               "data_dir": None, "log_path": None, "started_at": "2026-11-20T00:00:00+00:00"}


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_state_is_wal_at_the_latest_version(tmp_path):
    path = tmp_path / "deep" / "state.db"
    with State(path) as state:
        assert state.journal_mode == "wal"
        assert state.version == SCHEMA_VERSION
    # The mode is a property of the file, so a plain connection sees it too.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_old_schema_is_upgraded_and_rows_are_kept(tmp_path):
    path = tmp_path / "state.db"
    with State(path, upgrade_to=1) as old:
        assert old.version == 1
        assert "mirrors" not in old.db.table_names()
        old.db["local_clusters"].insert(CLUSTER_ROW)
    with State(path) as state:
        assert state.version == SCHEMA_VERSION
        assert {"mirrors", "validation_runs", "playbook_runs", "probe_results"} <= set(state.db.table_names())
        assert list(state.db.query("SELECT * FROM local_clusters")) == [CLUSTER_ROW]


def test_reopening_is_a_no_op(tmp_path):
    path = tmp_path / "state.db"
    State(path).close()
    with State(path) as state:
        assert state.version == SCHEMA_VERSION


def _foreign_sqlite(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()


def _foreign_meta(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('app', 'someone-else')")
    conn.commit()
    conn.close()


def _not_sqlite(path):
    path.write_bytes(b"this is a text file, not a database\n" * 200)


def _newer(path):
    State(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    conn.commit()
    conn.close()


BAD_FILES = {
    "foreign-sqlite": (_foreign_sqlite, "holds tables that are not ours"),
    "foreign-meta": (_foreign_meta, "was not written by kafka-migrate"),
    "not-sqlite": (_not_sqlite, "is not a migrate state database"),
    "newer-schema": (_newer, "newer than this version"),
}


@pytest.mark.slow  # the migrate CLI in a child process
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_file_that_is_not_ours_is_refused_and_left_untouched(tmp_path, kind):
    make, message = BAD_FILES[kind]
    path = tmp_path / "state.db"
    make(path)
    before = digest(path)
    with pytest.raises(StateError, match=message) as caught:
        State(path)
    assert str(path) in str(caught.value)
    assert digest(path) == before

    result = run_cli("local", "status", env={"MIGRATE_STATE": str(path),
                                             "MIGRATE_CONFIG": str(tmp_path / "migrate.toml")}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: state file ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert digest(path) == before


def test_transaction_rolls_back_on_error(tmp_path):
    with State(tmp_path / "state.db") as state:
        with pytest.raises(RuntimeError):
            with state.transaction() as db:
                db.execute("INSERT INTO local_clusters (name, platform, bootstrap, port) VALUES ('x', 'tansu', 'h:1', 1)")
                raise RuntimeError("boom")
        assert list(state.db.query("SELECT name FROM local_clusters")) == []
