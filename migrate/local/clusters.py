"""Embedded local clusters: start, find and stop named single-broker clusters.

`migrate local up` and the test fixtures both come here.  Each named cluster is one broker
process on a free loopback port, recorded in the state (pid, port, platform, data dir) and
written as a profile into the config file.  `up` is idempotent: a cluster that is recorded
and still answering is left alone.  `down` stops only processes that are really ours
(the recorded pid must be one of our broker binaries on the recorded port).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from migrate.config import write_cluster_profile
from migrate.errors import LocalClusterError, UsageError
from migrate.local import platforms
from migrate.state import State

DEFAULT_CLUSTERS = (("source", "noida"), ("target", "tansu"))


@dataclass(frozen=True)
class LocalCluster:
    name: str
    platform: str
    bootstrap: str
    port: int
    pid: int | None
    running: bool
    data_dir: str | None = None


def parse_specs(specs: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """`NAME[=PLATFORM]` items; a bare name keeps its recorded platform or its default."""
    if not specs:
        return list(DEFAULT_CLUSTERS)
    defaults = dict(DEFAULT_CLUSTERS)
    parsed = []
    for spec in specs:
        name, _, plat = spec.partition("=")
        if not name:
            raise UsageError(f'"{spec}" is not NAME[=PLATFORM]; for example source=noida')
        plat = plat or defaults.get(name, "")
        parsed.append((name, platforms.platform(plat).name if plat else ""))
    return parsed


class LocalClusters:
    def __init__(self, state: State, config_path: Path):
        self.state = state
        self.config_path = Path(config_path)
        self.base_dir = state.path.parent.resolve() / "local"

    def _row(self, name: str) -> dict | None:
        rows = list(self.state.db.query("SELECT * FROM local_clusters WHERE name = ?", [name]))
        return rows[0] if rows else None

    def _describe(self, row: dict) -> LocalCluster:
        running = bool(row["pid"]) and platforms.is_our_broker(row["pid"], row["port"])
        return LocalCluster(row["name"], row["platform"], row["bootstrap"], row["port"],
                            row["pid"], running, row["data_dir"])

    def status(self) -> list[LocalCluster]:
        rows = self.state.db.query("SELECT * FROM local_clusters ORDER BY name")
        return [self._describe(row) for row in rows]

    def up(self, specs: list[tuple[str, str]]) -> list[LocalCluster]:
        return [self._up_one(name, plat) for name, plat in specs]

    def _up_one(self, name: str, plat_name: str) -> LocalCluster:
        row = self._row(name)
        if row and not plat_name:
            plat_name = row["platform"]
        if not plat_name:
            plat_name = "tansu"
        if row and row["platform"] != plat_name:
            raise UsageError(
                f'local cluster "{name}" already exists on {row["platform"]}; '
                f"run: migrate local down {name} --wipe, then up again with {plat_name}"
            )
        if row:
            current = self._describe(row)
            if current.running and platforms.answers_kafka(current.port):
                return current
        plat = platforms.platform(plat_name)
        folder = self.base_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        port = row["port"] if row and platforms.port_is_free(row["port"]) else None
        broker = platforms.start_broker(
            plat, name, port=port,
            data_dir=folder / "data" if plat.keeps_data else None,
            log_path=folder / "broker.log",
        )
        self.state.db.table("local_clusters").upsert(
            {"name": name, "platform": plat.name, "bootstrap": broker.bootstrap, "port": broker.port,
             "pid": broker.pid, "data_dir": broker.data_dir, "log_path": broker.log_path,
             "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
            pk="name",
        )
        write_cluster_profile(self.config_path, name, {"bootstrap.servers": broker.bootstrap})
        return LocalCluster(name, plat.name, broker.bootstrap, broker.port, broker.pid, True, broker.data_dir)

    def down(self, names: list[str] | tuple[str, ...] = (), wipe: bool = False) -> list[LocalCluster]:
        rows = list(self.state.db.query("SELECT * FROM local_clusters ORDER BY name"))
        known = {row["name"]: row for row in rows}
        wanted = list(names) or list(known)
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise LocalClusterError(
                f'no local cluster named {", ".join(unknown)}; see: migrate local status'
            )
        stopped = []
        for name in wanted:
            row = known[name]
            if row["pid"]:
                platforms.stop_broker(row["pid"], row["port"])
            self.state.db.execute("UPDATE local_clusters SET pid = NULL WHERE name = ?", [name])
            if wipe:
                platforms.remove_data(row["data_dir"])
                self.state.db.execute("DELETE FROM local_clusters WHERE name = ?", [name])
            stopped.append(LocalCluster(name, row["platform"], row["bootstrap"], row["port"], None, False,
                                        row["data_dir"]))
        return stopped
