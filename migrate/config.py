"""Cluster profiles: where they come from, how secrets stay out of sight.

A profile is a named set of librdkafka properties read from `migrate.toml`:

    [clusters.source]
    "bootstrap.servers" = "kafka-1:9093,kafka-2:9093"
    "security.protocol" = "SASL_SSL"
    "sasl.mechanism" = "SCRAM-SHA-512"
    "sasl.username" = "migrator"
    "sasl.password" = "${SOURCE_PASSWORD}"

    [clusters.source.producer]      # optional per-role overrides
    "linger.ms" = "20"

    [metrics]                       # optional defaults of the metrics flags (migrate.metrics.options)
    port = 9464

A command may also name a cluster by a bare bootstrap string (`host:port[,host:port]`).
Values of the form `${VAR}` are read from the environment.  Every secret value met while
resolving a profile is registered with `redact_text`, so that it is scrubbed from logs,
errors, state and reports wherever it would otherwise show up.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from migrate.errors import ConfigError

DEFAULT_CONFIG = "migrate.toml"
DEFAULT_STATE = ".migrate/state.db"
ROLES = ("producer", "consumer", "admin")
REDACTED = "***"

_SECRET_KEY = re.compile(r"(password|secret|token|credential|\.key\.pem|jaas)", re.IGNORECASE)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BOOTSTRAP = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d+(,[A-Za-z0-9_.\-\[\]:]+:\d+)*$")
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_known_secrets: set[str] = set()


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def register_secret(value: str) -> None:
    if value and len(value) >= 3:
        _known_secrets.add(value)


def redact_text(text: str) -> str:
    """Replace every known secret value in text (longest first, so no fragment survives)."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_settings(settings: Mapping[str, object]) -> dict[str, object]:
    return {k: (REDACTED if is_secret_key(k) else v) for k, v in settings.items()}


@dataclass(frozen=True)
class ClusterProfile:
    """A resolved cluster: its name and the librdkafka properties to reach it."""

    name: str
    settings: Mapping[str, str]
    role_overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.settings["bootstrap.servers"]

    def client_config(self, role: str, **overrides: object) -> dict[str, object]:
        """librdkafka properties for one client role, profile overrides applied last but one."""
        config: dict[str, object] = dict(self.settings)
        config.update(self.role_overrides.get(role, {}))
        config.update(overrides)
        return config

    def redacted(self) -> dict[str, object]:
        return redact_settings(self.settings)

    def __repr__(self) -> str:  # never print secrets by accident
        return f"ClusterProfile(name={self.name!r}, settings={self.redacted()!r})"


@dataclass(frozen=True)
class Config:
    path: Path
    clusters: Mapping[str, Mapping[str, object]]
    exists: bool
    metrics: Mapping[str, object] = field(default_factory=dict)  # the [metrics] table, checked where used

    def profile_names(self) -> list[str]:
        return sorted(self.clusters)


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("MIGRATE_CONFIG") or DEFAULT_CONFIG)


def state_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("MIGRATE_STATE") or DEFAULT_STATE)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read the config file; a missing file is an empty config, a malformed one an error."""
    resolved = config_path(path)
    if not resolved.exists():
        return Config(resolved, MappingProxyType({}), exists=False)
    try:
        data = tomllib.loads(resolved.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {resolved} is not valid TOML ({exc}); fix the file") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {resolved} ({exc.strerror})") from exc
    clusters = data.get("clusters", {})
    if not isinstance(clusters, dict):
        raise ConfigError(f"config file {resolved}: [clusters] must be a table of profiles")
    for name, table in clusters.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config file {resolved}: clusters.{name} must be a table of librdkafka properties")
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ConfigError(f"config file {resolved}: [metrics] must be a table (port, host, detail, pushgateway)")
    return Config(resolved, MappingProxyType(clusters), exists=True, metrics=MappingProxyType(metrics))


def looks_like_bootstrap(spec: str) -> bool:
    return bool(_BOOTSTRAP.match(spec))


def resolve_cluster(spec: str | None, config: Config, role: str = "cluster") -> ClusterProfile:
    """Turn a profile name or a bootstrap string into a profile.

    `role` ("source", "target", "cluster") names the flag in error messages.
    """
    if not spec:
        env = {"source": "MIGRATE_SOURCE", "target": "MIGRATE_TARGET"}.get(role)
        hint = f" or set {env}" if env else ""
        raise ConfigError(f"no {role} cluster given; pass --{role} NAME|HOST:PORT{hint}")
    if spec in config.clusters:
        return _profile_from_table(spec, config.clusters[spec], config.path)
    if looks_like_bootstrap(spec):
        return ClusterProfile(name=role, settings=MappingProxyType({"bootstrap.servers": spec}))
    known = ", ".join(config.profile_names()) or "none"
    where = config.path if config.exists else f"{config.path} (file not found)"
    raise ConfigError(
        f'unknown cluster profile "{spec}" in {where}; known profiles: {known}; '
        f"or pass a bootstrap string HOST:PORT"
    )


def _profile_from_table(name: str, table: Mapping[str, object], path: Path) -> ClusterProfile:
    settings: dict[str, str] = {}
    overrides: dict[str, dict[str, str]] = {}
    for key, value in table.items():
        if key in ROLES and isinstance(value, dict):
            overrides[key] = {k: _resolve_value(name, f"{key}.{k}", v, path) for k, v in value.items()}
        else:
            settings[key] = _resolve_value(name, key, value, path)
    if "bootstrap.servers" not in settings:
        raise ConfigError(f'cluster profile "{name}" in {path} has no "bootstrap.servers"; add it')
    return ClusterProfile(
        name=name,
        settings=MappingProxyType(settings),
        role_overrides=MappingProxyType({k: MappingProxyType(v) for k, v in overrides.items()}),
    )


def _resolve_value(profile: str, key: str, value: object, path: Path) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, str)):
        text = str(value)
    else:
        raise ConfigError(f'cluster profile "{profile}" in {path}: "{key}" must be a string, number or boolean')

    def substitute(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in os.environ:
            raise ConfigError(
                f'cluster profile "{profile}": "{key}" refers to ${{{var}}}, which is not set; export {var}'
            )
        return os.environ[var]

    text = _ENV_REF.sub(substitute, text)
    if is_secret_key(key):
        register_secret(text)
    return text


def write_cluster_profile(path: str | os.PathLike, name: str, settings: Mapping[str, str]) -> None:
    """Add or replace one `[clusters.NAME]` table, keeping the rest of the file as it was."""
    if not _PROFILE_NAME.match(name):
        raise ConfigError(f'cluster name "{name}" may hold only letters, digits, ".", "_" and "-"')
    target = Path(path)
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    if text:
        load_config(target)  # refuse to edit a file we cannot parse
    text = _remove_table(text, name)
    body = "".join(f'"{k}" = "{_toml_escape(v)}"\n' for k, v in settings.items())
    block = f"[clusters.{name}]\n{body}"
    text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


def _remove_table(text: str, name: str) -> str:
    """Drop `[clusters.NAME]` and its sub-tables, up to the next unrelated table header."""
    out: list[str] = []
    skipping = False
    header = re.compile(r"^\s*\[\s*(.+?)\s*\]\s*$")
    for line in text.splitlines(keepends=True):
        match = header.match(line)
        if match:
            table = match.group(1).strip('"')
            skipping = table == f"clusters.{name}" or table.startswith(f"clusters.{name}.")
        if not skipping:
            out.append(line)
    return "".join(out)


def _toml_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
