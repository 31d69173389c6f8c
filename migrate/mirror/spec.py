"""What a mirror is asked to do: a plain description, validated once, used everywhere."""

from __future__ import annotations

import re
from dataclasses import dataclass

from migrate.config import ClusterProfile
from migrate.errors import UsageError

DEFAULT_NAME = "default"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


@dataclass(frozen=True)
class MirrorSpec:
    name: str
    source: ClusterProfile
    target: ClusterProfile
    topics: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    rename: str = "{topic}"
    transactions: bool = False  # map entries committed in the same target transaction as the data
    until_caught_up: bool = False
    compression: str = "none"
    commit_interval_s: float = 0.5  # how often each partition's target transaction is committed
    # how often transactions holding only live records commit (migrate.mirror.commits rule 2)
    live_commit_interval_s: float = 0.03
    commit_max_records: int = 50_000
    session_timeout_ms: int = 10_000
    metadata_refresh_s: float = 10.0
    source_spec: str = ""  # how the user named the clusters (profile or bootstrap), for the state
    target_spec: str = ""
    sync_groups: str | None = None
    sync_interval_s: float = 10.0
    # A stable worker id makes the worker a static group member (KIP-345): restarted with the
    # same id, it gets its partitions back at once instead of waiting for a rebalance.
    worker_id: str = ""
    # "static" (the default: group.instance.id from worker_id or derived, migrate.mirror.membership)
    # or "dynamic", for a source that never drops a dead static member (Tansu 0.6.0).
    membership: str = "static"
    # Fenceable write slots (one transactional producer each) shared by the workers; fixed
    # when the mirror is first run (see migrate.mirror.slots).
    slots: int = 8
    # At most this many of a worker's slots have a target transaction open at once (0: no limit).
    # Records of a slot waiting for its turn are held in order (migrate.mirror.engine).
    open_transactions: int = 0
    # Records held for one slot while it commits (or waits for its turn) before its partitions are
    # paused: with the records in the client's fetch queues, what bounds a worker's memory.
    held_records: int = 50_000
    # Topic configs kept in sync while following (migrate.mirror.configs): the allow-list plus keys
    # matching config_include, minus keys matching config_exclude; a target changed by hand is
    # restored ("restore") or only reported ("report").
    config_include: tuple[str, ...] = ()
    config_exclude: tuple[str, ...] = ()
    config_drift: str = "restore"
    # Source bytes (keys and values) this worker reads per second at most (0: no limit); live
    # partitions are served first within it (migrate.mirror.throttle).
    max_bytes_per_second: int = 0
    # How often a following worker drops map runs deleted on both clusters (migrate.mirror.pruning;
    # 0: never): a live partition's map gains a run per commit that wrote to it.
    map_prune_interval_s: float = 600.0

    @property
    def group_id(self) -> str:
        return f"migrate.mirror.{self.name}"


def validate_spec(spec: MirrorSpec) -> None:
    if not _NAME.match(spec.name):
        raise UsageError(f'mirror name "{spec.name}" may hold only letters, digits, ".", "_" and "-"')
    if not spec.topics:
        raise UsageError("no topics selected; pass --topics REGEX (repeatable)")
    for flag, patterns in (("--topics", spec.topics), ("--exclude", spec.exclude),
                           ("--config-include", spec.config_include), ("--config-exclude", spec.config_exclude)):
        for pattern in patterns:
            compile_pattern(pattern, flag)
    if not 1 <= spec.slots <= 256:
        raise UsageError(f"--slots {spec.slots} is out of range; use 1 to 256 (each slot is one target producer)")
    if not 0 <= spec.open_transactions <= 256:
        raise UsageError(f"--open-transactions {spec.open_transactions} is out of range; use 0 (no limit) to 256")
    if not 1 <= spec.held_records <= 10_000_000:
        raise UsageError(f"--held-records {spec.held_records} is out of range; use 1 to 10000000")
    if spec.config_drift not in ("restore", "report"):
        raise UsageError(f'--config-drift "{spec.config_drift}" is not known; use restore or report')
    if spec.max_bytes_per_second < 0:
        raise UsageError(f"--max-bytes-per-second {spec.max_bytes_per_second} is negative; use 0 (no limit) or more")
    if "{topic}" not in spec.rename:
        raise UsageError(f'--rename "{spec.rename}" must contain {{topic}}, for example "src.{{topic}}"')
    try:
        spec.rename.format(topic="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(f'--rename "{spec.rename}" is not a valid template ({exc}); use e.g. "src.{{topic}}"') from exc
    if spec.source.bootstrap == spec.target.bootstrap and spec.rename == "{topic}":
        raise UsageError(
            "source and target are the same cluster; mirroring a topic onto itself would loop: pass --rename"
        )


def compile_pattern(pattern: str, flag: str = "--topics") -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f'{flag} "{pattern}" is not a valid regular expression ({exc})') from exc


def target_topic(spec: MirrorSpec, source_topic: str) -> str:
    return spec.rename.format(topic=source_topic)
