"""Map-mode parity of one partition: pair records through the offset map, compare in windows.

Inputs are two streams in offset order, one per cluster, of items
`(offset, digest, timestamp, key, record)` (record may be None in the fast pass), and the
partition's `PartitionMap`.  Nothing here talks to Kafka: reading is injected.

`align` walks both streams in lockstep and yields events:
    PAIR        a source record and the target record at its mapped offset
    MISSING     a source record the map does not place (a map gap with a visible record), or
                whose mapped target offset holds no record
    EXTRA       a target record at an offset no source record maps to
    GONE        a target record whose mapped source record is not readable any more (info)
    TAIL_PAIR   past the map's coverage, a target record equal to the next unmapped source
                record: mirrored but not yet in the map (a running mirror); counts as compared
    UNMIRRORED  a source record past the map's coverage that the target does not hold yet (info)

`WindowComparer` digests PAIR events per window of consecutive records on each side
(order-sensitive xxh3-128 over the record digests).  Memory per window is two hash states,
whatever the window size.  When a window's digests differ it re-reads the window through the
injected `reread`, bisects it to the first divergent record, then classifies from there with
a small sliding context: a record found a few positions away on the other side is
`reordered`, otherwise `mutated`, naming the differing fields.
"""

from __future__ import annotations

import collections
from typing import Callable, Iterable, Iterator

import xxhash

from migrate.offset_maps.runs import PartitionMap
from migrate.validators.digest import DEFAULT, DigestOptions, differing_fields
from migrate.validators.divergence import Divergence, Tally

PAIR, MISSING, EXTRA, GONE, TAIL_PAIR, UNMIRRORED = range(6)

Item = tuple  # (offset, digest, timestamp, key, record | None)
Include = Callable[[int, int], bool]  # (offset, timestamp) -> compare this record?
Reread = Callable[[int, "int | None"], Iterable[tuple]]  # source [lo, hi) -> align events with records

LEAF = 64  # bisect stops at this many source offsets and scans
CONTEXT = 8  # how far (in pairs) a displaced record is looked for


def _everything(_offset: int, _timestamp: int) -> bool:
    return True


class _Peek:
    __slots__ = ("_it", "_head", "_has")

    def __init__(self, iterable: Iterable[Item]):
        self._it = iter(iterable)
        self._has = False
        self._head = None

    def peek(self):
        if not self._has:
            self._head = next(self._it, None)
            self._has = True
        return self._head

    def take(self):
        head = self.peek()
        self._has = False
        return head

    def __iter__(self):
        while True:
            head = self.take()
            if head is None:
                return
            yield head


def counterpart(pmap: PartitionMap, source_offset: int, fallback: int | None = None) -> int | None:
    """The target offset where reading must start to meet source_offset's record (or what follows)."""
    exact = pmap.target_of(source_offset)
    if exact is not None:
        return exact
    following = pmap.next_run_after_source(source_offset)
    if following is not None:
        return pmap.runs[following].target_start
    return pmap.target_high if pmap.target_high is not None else fallback


def align(source: Iterable[Item], target: Iterable[Item], pmap: PartitionMap,
          include_source: Include = _everything, include_target: Include = _everything) -> Iterator[tuple]:
    """Pair the two streams through the map; see the module docstring for the events."""
    # The pairing loop runs once per source record: the target's next item is a local (`head`,
    # None at the end) and the include test is skipped when everything is included.
    titer = iter(target)
    head = next(titer, None)
    every = include_source is _everything
    high = pmap.source_high
    runs = pmap.runs
    run_lo = run_hi = 0
    delta = 0
    tail_first = None
    src = iter(source)
    for s in src:
        s_off = s[0]
        if high is None or s_off >= high:
            tail_first = s
            break
        if run_lo <= s_off < run_hi:  # fast path: inside the current run
            t_exp = s_off + delta
        else:
            i = pmap.run_for_source(s_off)
            if i is None:
                t_exp = None
            else:
                run = runs[i]
                run_lo, run_hi, delta = run.source_start, run.source_end, run.target_start - run.source_start
                t_exp = s_off + delta
        wanted = every or include_source(s_off, s[2])
        if t_exp is None:
            if wanted:
                yield (MISSING, s, None)
            continue
        while head is not None and head[0] < t_exp:
            yield from _unclaimed(head, pmap, include_target)
            head = next(titer, None)
        if head is not None and head[0] == t_exp:
            if wanted:
                yield (PAIR, s, head)
            head = next(titer, None)
        elif wanted:
            yield (MISSING, s, t_exp)
    tgt = _Peek(_chain(head, titer) if head is not None else titer)
    target_high = pmap.target_high
    head = tgt.peek()
    while head is not None and target_high is not None and head[0] < target_high:
        yield from _unclaimed(tgt.take(), pmap, include_target)
        head = tgt.peek()
    # Past the map: a running mirror may have written records it has not yet recorded.
    rest = _Peek(_chain(tail_first, src) if tail_first is not None else src)
    for t in tgt:
        s = rest.peek()
        if s is not None and s[1] == t[1]:
            rest.take()
            if include_source(s[0], s[2]):
                yield (TAIL_PAIR, s, t)
        elif include_target(t[0], t[2]):
            yield (EXTRA, t)
    for s in rest:
        if include_source(s[0], s[2]):
            yield (UNMIRRORED, s)


def _chain(first: Item, rest: Iterator[Item]) -> Iterator[Item]:
    yield first
    yield from rest


def _unclaimed(t: Item, pmap: PartitionMap, include_target: Include) -> Iterator[tuple]:
    if not include_target(t[0], t[2]):
        return
    if pmap.source_of(t[0]) is None:
        yield (EXTRA, t)
    else:
        yield (GONE, t)


class WindowComparer:
    """Consumes align events of one partition and reports divergences into a Tally."""

    def __init__(self, topic: str, partition: int, tally: Tally, reread: Reread | None,
                 window: int = 10_000, options: DigestOptions = DEFAULT):
        self.topic = topic
        self.partition = partition
        self.tally = tally
        self.reread = reread
        self.window = max(1, window)
        self.options = options
        self.windows = 0
        self.windows_differing = 0
        self.compared = 0
        self.first_tail_target: int | None = None  # where an incremental run must re-read the target

    def run(self, events: Iterable[tuple]) -> None:
        tally, topic, partition = self.tally, self.topic, self.partition
        window = self.window
        hs = xxhash.xxh3_128()
        ht = xxhash.xxh3_128()
        count = 0
        lo = last = 0
        for event in events:
            kind = event[0]
            if kind == PAIR:
                s, t = event[1], event[2]
                if count == 0:
                    lo = s[0]
                hs.update(s[1])
                ht.update(t[1])
                last = s[0]
                count += 1
                if count == window:
                    self._close(hs, ht, lo, last + 1, count)
                    hs, ht, count = xxhash.xxh3_128(), xxhash.xxh3_128(), 0
            elif kind == TAIL_PAIR:
                self.compared += 1
                if self.first_tail_target is None:
                    self.first_tail_target = event[2][0]
            elif kind == MISSING:
                s = event[1]
                detail = ("the offset map has no target offset for it" if event[2] is None
                          else "the target has no record at the mapped offset")
                tally.add(Divergence("missing", topic, partition, s[0], event[2], s[3], None, detail))
            elif kind == EXTRA:
                t = event[1]
                tally.add(Divergence("extra", topic, partition, None, t[0], t[3], None,
                                     "no source record maps to this target offset"))
            elif kind == GONE:
                tally.note_info(topic, "gone")
            elif kind == UNMIRRORED:
                tally.note_info(topic, "unmirrored")
        if count:
            self._close(hs, ht, lo, last + 1, count)
        tally.compared(topic, self.compared)

    def _close(self, hs, ht, lo: int, hi: int, count: int) -> None:
        self.windows += 1
        self.compared += count
        if hs.digest() == ht.digest():
            return
        self.windows_differing += 1
        if self.reread is None:
            self.tally.note(f"{self.topic}[{self.partition}]: window {lo}..{hi - 1} differs; no re-reader to locate it")
            return
        first = self.first_divergent(lo, hi)
        found = self.classify(first, lo, hi)
        if not found:
            self.tally.note(f"{self.topic}[{self.partition}]: window {lo}..{hi - 1} differed but a re-read "
                            "found no divergent record (did the data change while validating?)")

    # --- narrowing down --------------------------------------------------------------------

    def _range_differs(self, lo: int, hi: int) -> bool:
        hs, ht = xxhash.xxh3_128(), xxhash.xxh3_128()
        assert self.reread is not None  # narrowing runs only once the window check found a re-reader
        for event in self.reread(lo, hi):
            if event[0] == PAIR:
                hs.update(event[1][1])
                ht.update(event[2][1])
        return hs.digest() != ht.digest()

    def first_divergent(self, lo: int, hi: int) -> int:
        """Bisect [lo, hi) (source offsets, known to differ) down to a leaf; return its start."""
        while hi - lo > LEAF:
            mid = lo + (hi - lo) // 2
            if self._range_differs(lo, mid):
                hi = mid
            else:
                lo = mid
        return lo

    def classify(self, start: int, window_lo: int, window_hi: int) -> int:
        """Report every divergent pair with source offset in [start, window_hi); returns how many."""
        found = 0
        buffer: collections.deque = collections.deque()
        begin = max(0, start - 4 * CONTEXT)  # context may reach into the previous window
        beyond = 0
        centre = 0  # index in buffer of the next pair to classify
        assert self.reread is not None  # narrowing runs only once the window check found a re-reader
        for event in self.reread(begin, None):
            if event[0] != PAIR:
                continue
            buffer.append((event[1], event[2]))
            if event[1][0] >= window_hi:
                beyond += 1
            while centre < len(buffer) and len(buffer) - centre > CONTEXT:
                found += self._classify_at(buffer, centre, start, window_hi)
                centre += 1
                if centre > CONTEXT:
                    buffer.popleft()
                    centre -= 1
            if beyond >= CONTEXT:
                break
        while centre < len(buffer):
            found += self._classify_at(buffer, centre, start, window_hi)
            centre += 1
        return found

    def _classify_at(self, buffer, i: int, start: int, window_hi: int) -> int:
        s, t = buffer[i]
        if s[0] < start or s[0] >= window_hi or s[1] == t[1]:
            return 0
        moved_to = next((b[1] for j, b in enumerate(buffer) if j != i and b[1][1] == s[1]), None)
        came_from = any(b[0][1] == t[1] for j, b in enumerate(buffer) if j != i)
        if moved_to is not None and came_from:
            self.tally.add(Divergence("reordered", self.topic, self.partition, s[0], moved_to[0], s[3], None,
                                      f"expected at target offset {t[0]}, found at {moved_to[0]}"))
        else:
            fields = differing_fields(s[4], t[4], self.options) if s[4] is not None and t[4] is not None else ""
            self.tally.add(Divergence("mutated", self.topic, self.partition, s[0], t[0], s[3], fields or None,
                                      f"{fields or 'content'} differs"))
        return 1


def compare_partition(topic: str, partition: int, source: Iterable[Item], target: Iterable[Item],
                      pmap: PartitionMap, tally: Tally, reread: Reread | None = None, window: int = 10_000,
                      options: DigestOptions = DEFAULT, include_source: Include = _everything,
                      include_target: Include = _everything) -> WindowComparer:
    """Align and compare one partition; divergences go to `tally`."""
    comparer = WindowComparer(topic, partition, tally, reread, window, options)
    comparer.run(align(source, target, pmap, include_source, include_target))
    return comparer


RangeReader = Callable[[int, "int | None"], Iterable[Item]]  # [lo, hi) -> items with records, in order


def make_reread(read_source: RangeReader, read_target: RangeReader, pmap: PartitionMap,
                include_source: Include = _everything, include_target: Include = _everything) -> Reread:
    """A Reread from two range readers: source [lo, hi) and the target span the map pairs with it."""

    def reread(lo: int, hi: int | None) -> Iterator[tuple]:
        t_lo = counterpart(pmap, lo, fallback=0)
        t_hi = None if hi is None else counterpart(pmap, hi)
        if hi is not None and (pmap.source_high is None or hi > pmap.source_high):
            t_hi = None
        source = read_source(lo, hi)
        target = read_target(t_lo if t_lo is not None else 0, t_hi)
        for event in align(source, target, pmap, include_source, include_target):
            if event[0] == PAIR:
                yield event

    return reread
