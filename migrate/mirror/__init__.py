"""The mirroring engine: exactly-once copies of topics between Kafka platforms."""

from migrate.mirror.engine import Mirror, run_mirror
from migrate.mirror.results import MirrorResult, PartitionFailure, Progress
from migrate.mirror.spec import DEFAULT_NAME, MirrorSpec

__all__ = ["DEFAULT_NAME", "Mirror", "MirrorResult", "MirrorSpec", "PartitionFailure", "Progress", "run_mirror"]
