"""What a mirror run reports: its result, its progress, and the partitions it could not mirror.

Plain data at the library's boundary: the CLI prints these, tests assert on them, and the
engine's parts fill them in.  Nothing here reads Kafka or the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Partition states that end mirroring of a partition for this run (stored in the progress rows too).
FAILED = ("diverged", "data-loss", "blocked")


@dataclass
class PartitionFailure:
    topic: str
    partition: int
    kind: str  # "diverged" | "data-loss" | "blocked" (the target topic has no such partition)
    message: str


@dataclass(frozen=True)
class Vanished:
    """Source offsets [first, end) deleted (retention, DeleteRecords, loss) before they were mirrored."""

    topic: str
    partition: int
    first: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.first

    def describe(self) -> str:
        return f"{self.topic}[{self.partition}] offsets {self.first}..{self.end - 1}"


@dataclass
class MirrorResult:
    name: str
    records: int = 0
    bytes: int = 0
    seconds: float = 0.0
    copy_seconds: float = 0.0  # from the first partition resumed to the end (start-up excluded)
    partitions: int = 0
    adopted: int = 0
    failures: list[PartitionFailure] = field(default_factory=list)
    vanished: list[Vanished] = field(default_factory=list)  # found during this run
    caught_up: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def vanished_count(self) -> int:
        return sum(v.count for v in self.vanished)


@dataclass
class Progress:
    records: int
    bytes: int
    seconds: float
    lag: dict[str, int]  # per source topic, for partitions this worker owns
    owned: int
    failed: int
