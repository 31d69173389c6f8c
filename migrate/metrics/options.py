"""Where metrics go: the flags of the commands and the config file's `[metrics]` table.

    [metrics]
    port = 9464                 # migrate mirror serves /metrics here (flag: --metrics-port)
    host = "127.0.0.1"          # --metrics-host
    detail = "partition"        # --metrics-detail: partition | topic
    pushgateway = "http://pushgateway:9091"   # batch commands push here (--pushgateway)

A flag wins over the file.  Everything is checked here, once, so that a bad value is one
clear line before anything runs.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, cast
from urllib.parse import urlparse

from migrate.errors import ConfigError, UsageError

DETAILS = ("partition", "topic")
KEYS = ("port", "host", "detail", "pushgateway")


@dataclass(frozen=True)
class ServeOptions:
    """How a long-running command serves /metrics (port None: it does not)."""

    port: int | None
    host: str = "127.0.0.1"
    detail: str = "partition"  # per-partition series, or per-topic sums only (cardinality)

    @property
    def enabled(self) -> bool:
        return self.port is not None


@dataclass(frozen=True)
class BatchOptions:
    """Where a batch command leaves its outcome (neither: nowhere)."""

    file: Path | None = None
    pushgateway: str | None = None

    @property
    def enabled(self) -> bool:
        return self.file is not None or self.pushgateway is not None


def _table(table: Mapping[str, object]) -> Mapping[str, object]:
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"config [metrics]: unknown key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    return table


def serve_options(port: int | None, host: str | None, detail: str | None,
                  table: Mapping[str, object]) -> ServeOptions:
    table = _table(table)
    # the file's values are unchecked objects until the tests below
    port_value = port if port is not None else table.get("port")
    host_value = host or table.get("host") or "127.0.0.1"
    detail_value = detail or table.get("detail") or "partition"
    if port_value is not None and (not isinstance(port_value, int) or isinstance(port_value, bool)
                                   or not 0 <= port_value <= 65535):
        raise ConfigError(f"metrics port {port_value!r} must be a number from 0 to 65535 (0 picks a free port)")
    if not isinstance(host_value, str):
        raise ConfigError("config [metrics]: host must be a string, e.g. \"127.0.0.1\"")
    if detail_value not in DETAILS:
        raise ConfigError(f"metrics detail {detail_value!r} must be one of: {', '.join(DETAILS)}")
    return ServeOptions(port_value, host_value, cast(str, detail_value))  # one of DETAILS


def batch_options(file: str | None, pushgateway: str | None, table: Mapping[str, object]) -> BatchOptions:
    table = _table(table)
    gateway = pushgateway or table.get("pushgateway")
    if gateway is not None:
        parsed = urlparse(str(gateway))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"--pushgateway {gateway}: give a URL like http://pushgateway:9091")
    path = Path(file) if file else None
    if path is not None:
        check_writable(path)
    return BatchOptions(path, str(gateway) if gateway else None)


def check_writable(path: Path) -> None:
    """Refuse a metrics file that could not be written, before the command does its work."""
    if path.suffix != ".prom":
        raise UsageError(f"--metrics-file {path}: name it *.prom (the node-exporter textfile collector reads "
                         "only those)")
    if path.is_dir():
        raise UsageError(f"--metrics-file {path} is a directory; give a file path ending in .prom")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"--metrics-file {path}: directory {folder} does not exist; create it or pick another path")
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=folder)
    except OSError as exc:
        raise UsageError(f"--metrics-file {path}: cannot write in {folder} ({exc.strerror}); "
                         "pick a writable path") from exc
    os.close(handle)
    os.unlink(probe)
