"""What a parity check finds: divergences, per-topic tallies, and the result of a run.

A `Divergence` is one record that does not match, named by kind:
    missing    a source record has no counterpart on the target
    extra      a target record has no source record (a duplicate, or written by someone else)
    mutated    the counterpart exists but its content differs (`field` says which: key, value,
               headers, timestamp; several are comma-joined)
    reordered  the record is on the target, but not at the position its source order requires

Besides divergences a run counts informational facts that are not defects: `unmirrored`
(source records past the offset map's coverage: not mirrored yet) and `gone` (target
records whose mapped source record is no longer readable, e.g. compacted or expired).

`Tally` is the mutable accumulator a run feeds; it keeps every count exactly and at most
`max_examples` examples per topic and kind, so memory stays bounded whatever the defect
count.  `ValidationResult` is the frozen outcome that reports and the state are made from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

KINDS = ("missing", "extra", "mutated", "reordered")
INFO = ("unmirrored", "gone")


def render_key(key: bytes | None) -> str | None:
    """A key for people: text when it is printable UTF-8, else 0x-hex (truncated)."""
    if key is None:
        return None
    try:
        text = key.decode("utf-8")
        if text.isprintable():
            return text if len(text) <= 120 else text[:117] + "..."
    except UnicodeDecodeError:
        pass
    hexed = key.hex()
    return "0x" + (hexed if len(hexed) <= 64 else hexed[:61] + "...")


@dataclass(frozen=True)
class Divergence:
    kind: str
    topic: str
    partition: int
    source_offset: int | None
    target_offset: int | None
    key: bytes | None
    field: str | None = None
    detail: str = ""
    target_partition: int | None = None  # key mode: the target's partition may differ

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind, "topic": self.topic, "partition": self.partition,
            "source_offset": self.source_offset, "target_offset": self.target_offset,
            "target_partition": self.target_partition if self.target_partition is not None else self.partition,
            "key": render_key(self.key), "field": self.field, "detail": self.detail,
        }


@dataclass(frozen=True)
class TopicResult:
    topic: str
    target_topic: str
    partitions: int
    records_compared: int
    counts: Mapping[str, int]
    info: Mapping[str, int]
    only_on: str | None = None  # "source": the topic exists on one side only, so nothing was compared

    @property
    def divergences(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, object]:
        return {"topic": self.topic, "target_topic": self.target_topic, "partitions": self.partitions,
                "records_compared": self.records_compared, "divergences": self.divergences,
                **{k: self.counts.get(k, 0) for k in KINDS}, **{k: self.info.get(k, 0) for k in INFO},
                "only_on": self.only_on}


@dataclass(frozen=True)
class ValidationResult:
    mode: str
    topics: tuple[TopicResult, ...]
    examples: tuple[Divergence, ...]
    range_from: str | None = None
    range_to: str | None = None
    duration_s: float = 0.0
    notes: tuple[str, ...] = ()
    run_id: int | None = None
    started_at: str | None = None
    # what was compared, for people who did not run it (reports are forwarded)
    mirror: str | None = None
    source: str | None = None
    target: str | None = None

    @property
    def one_sided(self) -> tuple[TopicResult, ...]:
        """Topics that exist on one cluster only: a divergence of the topic, not of N records."""
        return tuple(t for t in self.topics if t.only_on)

    @property
    def counts(self) -> dict[str, int]:
        return {k: sum(t.counts.get(k, 0) for t in self.topics) for k in KINDS}

    @property
    def info(self) -> dict[str, int]:
        return {k: sum(t.info.get(k, 0) for t in self.topics) for k in INFO}

    @property
    def records_compared(self) -> int:
        return sum(t.records_compared for t in self.topics)

    @property
    def divergences(self) -> int:
        return sum(self.counts.values())

    @property
    def parity(self) -> bool:
        return self.divergences == 0 and not self.one_sided

    @property
    def verdict(self) -> str:
        if self.parity:
            return "PARITY"
        problems = [f"{self.divergences} records"] if self.divergences else []
        problems += [f"topic {t.topic} exists on the {t.only_on} only" for t in self.one_sided]
        return f"DIVERGENCE ({'; '.join(problems)})"

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id, "started_at": self.started_at, "mode": self.mode, "mirror": self.mirror,
            "source": self.source, "target": self.target,
            "parity": self.parity, "range_from": self.range_from, "range_to": self.range_to,
            "records_compared": self.records_compared, "divergences": self.divergences,
            "counts": self.counts, "info": self.info, "duration_s": round(self.duration_s, 3),
            "topics": [t.as_dict() for t in self.topics],
            "examples": [d.as_dict() for d in self.examples], "notes": list(self.notes),
        }


@dataclass
class _TopicTally:
    target_topic: str
    partitions: set[int] = field(default_factory=set)
    compared: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    info: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INFO, 0))
    only_on: str | None = None


class Tally:
    """Exact counts, capped examples; fed by the comparers of one run."""

    def __init__(self, max_examples: int = 10):
        self.max_examples = max_examples
        self._topics: dict[str, _TopicTally] = {}
        self._examples: dict[tuple[str, str], list[Divergence]] = {}
        self.notes: list[str] = []

    def topic(self, topic: str, target_topic: str | None = None, partition: int | None = None) -> _TopicTally:
        entry = self._topics.get(topic)
        if entry is None:
            entry = self._topics[topic] = _TopicTally(target_topic or topic)
        if partition is not None:
            entry.partitions.add(partition)
        return entry

    def add(self, divergence: Divergence) -> None:
        self.topic(divergence.topic).counts[divergence.kind] += 1
        kept = self._examples.setdefault((divergence.topic, divergence.kind), [])
        if len(kept) < self.max_examples:
            kept.append(divergence)

    def one_sided(self, topic: str, target_topic: str, side: str) -> None:
        self.topic(topic, target_topic).only_on = side

    def compared(self, topic: str, count: int = 1) -> None:
        self.topic(topic).compared += count

    def note_info(self, topic: str, name: str, count: int = 1) -> None:
        self.topic(topic).info[name] += count

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def merge(self, other: "Tally") -> None:
        """Add another tally's counts and examples (each worker of a run keeps its own)."""
        for name, theirs in other._topics.items():
            mine = self.topic(name, theirs.target_topic)
            mine.partitions |= theirs.partitions
            mine.compared += theirs.compared
            mine.only_on = mine.only_on or theirs.only_on
            for kind, n in theirs.counts.items():
                mine.counts[kind] += n
            for kind, n in theirs.info.items():
                mine.info[kind] += n
        for key, examples in other._examples.items():
            kept = self._examples.setdefault(key, [])
            kept.extend(examples[: max(0, self.max_examples - len(kept))])
        for note in other.notes:
            self.note(note)

    def result(self, mode: str, **extra: object) -> ValidationResult:
        topics = tuple(
            TopicResult(name, t.target_topic, len(t.partitions), t.compared, dict(t.counts), dict(t.info), t.only_on)
            for name, t in sorted(self._topics.items())
        )
        examples = tuple(
            d for kind in KINDS for name in sorted(self._topics)
            for d in sorted(self._examples.get((name, kind), []),
                            key=lambda d: (d.partition, d.source_offset if d.source_offset is not None else -1,
                                           d.target_offset if d.target_offset is not None else -1))
        )
        return ValidationResult(mode=mode, topics=topics, examples=examples,
                                notes=tuple(self.notes), **extra)  # type: ignore[arg-type]
