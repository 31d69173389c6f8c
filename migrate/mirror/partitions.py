"""Every source partition a worker holds or has given up: one state object each, one owner.

A partition's state changes only through the methods of `Partitions`; nothing else sets a
partition's fields.  The states and their invariants:

1. MIRRORING: the partition has a writer, in a slot this worker has fenced, and is assigned in
   one of the lanes.  It is read from right after its map (never below its log start).
2. PARKED (--until-caught-up): mirroring, read to its goal, and paused in its lane, so that it
   is fetched no more in this run.  It still commits with its slot.
3. MOVED: mirroring, but its fetch fell below the source's log start (retention overtook it);
   it is unassigned, and reopened at the new log start once its slot has committed what it
   wrote (`migrate.mirror.opening`).
4. FAILED: diverged, lost data, or blocked (the target topic has no such partition).  It has
   no writer and is never opened again in this run; only a blocked partition is cleared, when
   its target topic was widened (`unblock`).
A partition with no state is not held by this worker (not opened yet, or given up with its
slot).  Giving a partition up forgets its state, but remembers where its map stood
(`last_known`), which is committed: maps grow only after their target transaction committed.

Two small indexes are kept beside the states, for work the loop looks for on every turn (they
are derived, never set from outside): the partitions with an end-of-partition position not yet
applied to the map, and the MOVED ones.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import TopicPartition

from migrate.mirror.results import PartitionFailure
from migrate.mirror.writer import PartitionWriter

Key = tuple[str, int]


class Status(enum.Enum):
    MIRRORING = "mirroring"
    PARKED = "parked"
    MOVED = "moved"
    FAILED = "failed"


@dataclass(eq=False)
class PartitionState:
    key: Key
    status: Status
    writer: PartitionWriter | None = None  # set exactly when not FAILED
    log_start: int = 0  # the source log start last seen: reads never start below it
    skip_below: int | None = None  # re-reading records below this offset, already mirrored
    position: int | None = None  # end-of-partition position seen, not yet applied to the map
    failure: PartitionFailure | None = None  # set exactly when FAILED

    @property
    def open(self) -> bool:
        return self.writer is not None


class Partitions:
    def __init__(self) -> None:
        # Read-only outside this class (the per-record path looks partitions up in it directly).
        self.states: dict[Key, PartitionState] = {}
        self._positioned: set[Key] = set()
        self._moved: set[Key] = set()
        self.last_known: dict[Key, tuple[int | None, int]] = {}  # given up: (map source_high, runs)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, key: Key) -> PartitionState | None:
        return self.states.get(key)

    def writer(self, key: Key) -> PartitionWriter | None:
        state = self.states.get(key)
        return state.writer if state is not None else None

    def is_open(self, key: Key) -> bool:
        state = self.states.get(key)
        return state is not None and state.writer is not None

    def opened(self) -> Iterator[PartitionState]:
        """Partitions with a writer (MIRRORING, PARKED, MOVED)."""
        return (s for s in list(self.states.values()) if s.writer is not None)

    def open_count(self) -> int:
        return sum(1 for s in self.states.values() if s.writer is not None)

    def failure(self, key: Key) -> PartitionFailure | None:
        state = self.states.get(key)
        return state.failure if state is not None else None

    def failures(self) -> list[PartitionFailure]:
        return [s.failure for s in self.states.values() if s.failure is not None]

    def failed_keys(self) -> list[Key]:
        return [k for k, s in self.states.items() if s.status is Status.FAILED]

    @property
    def parked(self) -> bool:
        return any(s.status is Status.PARKED for s in self.states.values())

    def is_parked(self, key: Key) -> bool:
        state = self.states.get(key)
        return state is not None and state.status is Status.PARKED

    @property
    def positions_pending(self) -> bool:
        return bool(self._positioned)

    @property
    def any_moved(self) -> bool:
        return bool(self._moved)

    def moved(self) -> list[PartitionState]:
        return [self.states[k] for k in self._moved]

    # --- changing --------------------------------------------------------------------------------

    def open(self, key: Key, writer: PartitionWriter, log_start: int) -> PartitionState:
        """Rule 1: a partition reconciled in a fenced slot."""
        state = PartitionState(key, Status.MIRRORING, writer=writer, log_start=log_start)
        self.states[key] = state
        self.last_known.pop(key, None)
        return state

    def give_up(self, keys: list[Key]) -> list[PartitionWriter]:
        """Forget open partitions (their slot is closed or failed); returns their writers."""
        writers = []
        for key in keys:
            state = self.states.get(key)
            if state is None or state.writer is None:
                continue
            del self.states[key]
            self._positioned.discard(key)
            self._moved.discard(key)
            pmap = state.writer.pmap
            self.last_known[key] = (pmap.source_high, len(pmap.runs))
            writers.append(state.writer)
        return writers

    def remember(self, key: Key, pmap) -> None:
        """A given-up partition's map grew still (a stopped partition's last commit with its slot)."""
        if not self.is_open(key):
            self.last_known[key] = (pmap.source_high, len(pmap.runs))

    def fail(self, key: Key, failure: PartitionFailure) -> None:
        """Rule 4 (an open partition is given up first: `give_up`)."""
        assert not self.is_open(key), "an open partition is given up before it fails"
        self.states[key] = PartitionState(key, Status.FAILED, failure=failure)

    def unblock(self, key: Key) -> None:
        """A blocked partition whose target topic gained the partition: it may be opened again."""
        state = self.states.get(key)
        if state is not None and state.failure is not None and state.failure.kind == "blocked":
            del self.states[key]

    def read_from(self, state: PartitionState, offset: int, resume: int) -> TopicPartition:
        """The partition is read from `offset`; records below `resume` are re-read, already mirrored."""
        state.skip_below = resume if offset < resume else None
        return TopicPartition(state.key[0], state.key[1], offset)

    def reread_done(self, state: PartitionState) -> None:
        state.skip_below = None

    def reached_end(self, state: PartitionState, offset: int) -> None:
        """End-of-partition at `offset`: the gap up to it is applied to the map when nothing is open."""
        state.position = max(state.position or 0, offset)
        self._positioned.add(state.key)

    def take_position(self, state: PartitionState) -> int | None:
        position, state.position = state.position, None
        self._positioned.discard(state.key)
        return position

    def positioned(self) -> list[PartitionState]:
        return [self.states[k] for k in list(self._positioned)]

    def park(self, state: PartitionState) -> bool:
        """Rule 2; False when it was parked already."""
        if state.status is Status.PARKED:
            return False
        state.status = Status.PARKED
        return True

    def move(self, state: PartitionState) -> bool:
        """Rule 3; False when it was moved already."""
        if state.status is Status.MOVED:
            return False
        state.status = Status.MOVED
        state.skip_below = None
        self._moved.add(state.key)
        return True

    def moved_back(self, state: PartitionState, log_start: int) -> None:
        """A MOVED partition reopened at its new log start (or stopped, then failed)."""
        state.status = Status.MIRRORING
        state.log_start = log_start
        self._moved.discard(state.key)

    def clear_moved(self, key: Key) -> None:
        self._moved.discard(key)
