"""What one validation compares, and how."""

from __future__ import annotations

from dataclasses import dataclass

from migrate.config import ClusterProfile
from migrate.validators.digest import DEFAULT, DigestOptions


@dataclass(frozen=True)
class ValidateSpec:
    """What to validate and how; `source_spec`/`target_spec` are what the user typed (for history)."""

    source: ClusterProfile
    target: ClusterProfile
    source_spec: str
    target_spec: str
    topics: tuple[str, ...] = ()
    match: str | None = None  # "map" (also None) or "key"; key mode only when asked for
    mirror: str | None = None  # map mode: None means the only mirror the state knows
    since_ms: int | None = None
    until_ms: int | None = None
    incremental: bool = False
    sample: float = 1.0
    options: DigestOptions = DEFAULT
    id_header: str | None = None
    window: int = 10_000
    max_examples: int = 10
    parallel: int = 4  # map mode: partitions compared at once, each with its own pair of consumers
    processes_from: int = 200_000  # map mode: records at which the workers are processes, not threads
