"""Key-mode parity: pair records by key (or an event-id header) and compare each key's sequence.

For dual writing, where producers write to both platforms independently and offsets, even
partition counts, differ.  Records are spilled into a temporary SQLite file (digests and a few
field digests, never values), so memory stays bounded whatever the volume; comparison walks
both sides sorted by identity and holds one identity's sequence at a time.

Per identity, with S the source sequence and T the target sequence (each in partition, offset
order; records without an identity are compared as a multiset, since no order binds them):
- records whose content appears on both sides are matched occurrence by occurrence; a matched
  record at a different position in the two common subsequences is `reordered`;
- the unmatched rest is paired in order: a pair is `mutated` (the field digests say which
  field), an unpaired source record is `missing`, an unpaired target record `extra`.
"""

from __future__ import annotations

import collections
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from typing import Iterable, Iterator

import xxhash

from migrate.validators.digest import DEFAULT, DigestOptions, _field, record_digest
from migrate.validators.divergence import Divergence, Tally

SOURCE, TARGET = 0, 1


@dataclass(frozen=True, slots=True)
class KeyedRecord:
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    digest: bytes
    value_digest: bytes
    headers_digest: bytes


def identity_of(record, id_header: str | None) -> bytes | None:
    if id_header is None:
        return record.key
    for name, value in record.headers or ():
        if name == id_header:
            return value
    return None


def keyed_record(record, options: DigestOptions = DEFAULT) -> KeyedRecord:
    kept = [(n, v) for n, v in (record.headers or ()) if options.keep_header(n)]
    headers = b"".join(_field(n.encode()) + _field(v) for n, v in kept)
    return KeyedRecord(record.partition, record.offset, record.timestamp, record.key,
                       record_digest(record, options), xxhash.xxh3_64_digest(_field(record.value)),
                       xxhash.xxh3_64_digest(headers))


def _fields(a: KeyedRecord, b: KeyedRecord, options: DigestOptions) -> str:
    fields = []
    if a.key != b.key:
        fields.append("key")
    if a.value_digest != b.value_digest:
        fields.append("value")
    if a.headers_digest != b.headers_digest:
        fields.append("headers")
    if options.include_timestamp and a.timestamp != b.timestamp:
        fields.append("timestamp")
    return ",".join(fields)


def _split_by_digests(records: list[KeyedRecord], digests: collections.Counter) -> tuple[list, list]:
    """The records matched by a digest still in `digests` (each match uses one up), and the rest; both in order."""
    matched, rest = [], []
    for r in records:
        if digests[r.digest] > 0:
            digests[r.digest] -= 1
            matched.append(r)
        else:
            rest.append(r)
    return matched, rest


def compare_sequences(source: list[KeyedRecord], target: list[KeyedRecord], ordered: bool = True,
                      options: DigestOptions = DEFAULT) -> list[tuple[str, KeyedRecord | None, KeyedRecord | None, str | None]]:
    """(kind, source record, target record, field) for each divergent record of one identity."""
    if len(source) == len(target) and all(a.digest == b.digest for a, b in zip(source, target)):
        return []
    common_src, src_only = _split_by_digests(source, collections.Counter(r.digest for r in target))
    common_tgt, tgt_only = _split_by_digests(target, collections.Counter(r.digest for r in common_src))
    out: list[tuple[str, KeyedRecord | None, KeyedRecord | None, str | None]] = []
    if ordered:
        # The n-th occurrence of a content on the source matches its n-th occurrence on the target.
        places: dict[bytes, collections.deque] = collections.defaultdict(collections.deque)
        for r in common_tgt:
            places[r.digest].append(r)
        for i, r in enumerate(common_src):
            match = places[r.digest].popleft()
            if common_tgt[i].digest != r.digest:
                out.append(("reordered", r, match, None))
    paired = min(len(src_only), len(tgt_only))
    if not ordered:  # pair mutated records by closeness of content, not position
        src_only.sort(key=lambda r: (r.value_digest, r.headers_digest))
        tgt_only.sort(key=lambda r: (r.value_digest, r.headers_digest))
    for a, b in zip(src_only[:paired], tgt_only[:paired]):
        out.append(("mutated", a, b, _fields(a, b, options) or None))
    out.extend(("missing", r, None, None) for r in src_only[paired:])
    out.extend(("extra", None, r, None) for r in tgt_only[paired:])
    return out


class KeyedComparer:
    """Spills both sides of some topics to a temporary SQLite file, then compares per identity."""

    def __init__(self, tally: Tally, options: DigestOptions = DEFAULT, id_header: str | None = None,
                 directory: str | None = None, batch: int = 20_000):
        self.tally = tally
        self.options = options
        self.id_header = id_header
        self.batch = batch
        handle, self.path = tempfile.mkstemp(prefix="migrate-keyed-", suffix=".db", dir=directory)
        os.close(handle)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA cache_size = -16000")  # 16 MB: bounded whatever the volume
        self.db.execute(
            "CREATE TABLE rec (side INTEGER, topic TEXT, has_ident INTEGER, ident BLOB, partition INTEGER, "
            "offset INTEGER, ts INTEGER, key BLOB, digest BLOB, vdig BLOB, hdig BLOB)")
        self._pending: list[tuple] = []
        self._indexed = False

    def add(self, side: int, topic: str, records: Iterable) -> int:
        """Spill records (anything with the Record attributes) of one side; returns how many."""
        count = 0
        for record in records:
            ident = identity_of(record, self.id_header)
            k = keyed_record(record, self.options)
            self._pending.append((side, topic, 0 if ident is None else 1, ident, k.partition, k.offset,
                                  k.timestamp, k.key, k.digest, k.value_digest, k.headers_digest))
            count += 1
            if len(self._pending) >= self.batch:
                self._flush()
        return count

    def _flush(self) -> None:
        if self._pending:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO rec VALUES (?,?,?,?,?,?,?,?,?,?,?)", self._pending)
            self.db.execute("COMMIT")
            self._pending.clear()

    def _rows(self, side: int, topic: str) -> Iterator[tuple[tuple, KeyedRecord]]:
        cursor = self.db.execute(
            "SELECT has_ident, ident, partition, offset, ts, key, digest, vdig, hdig FROM rec "
            "WHERE side = ? AND topic = ? ORDER BY has_ident, ident, partition, offset", [side, topic])
        for has, ident, partition, offset, ts, key, digest, vdig, hdig in cursor:
            yield (has, ident or b""), KeyedRecord(partition, offset, ts, key, digest, vdig, hdig)

    def _groups(self, side: int, topic: str) -> Iterator[tuple[tuple, list[KeyedRecord]]]:
        current: tuple | None = None
        members: list[KeyedRecord] = []
        for ident, record in self._rows(side, topic):
            if ident != current:
                if members:
                    assert current is not None  # set with the first member
                    yield current, members
                current, members = ident, []
            members.append(record)
        if members:
            assert current is not None  # set with the first member
            yield current, members

    def compare(self, topic: str, target_topic: str | None = None) -> None:
        """Compare what was spilled for `topic` (both sides spilled under the source topic's name)."""
        self._flush()
        if not self._indexed:
            self.db.execute("CREATE INDEX rec_order ON rec (side, topic, has_ident, ident, partition, offset)")
            self._indexed = True
        entry = self.tally.topic(topic, target_topic)
        src = self._groups(SOURCE, topic)
        tgt = self._groups(TARGET, topic)
        a, b = next(src, None), next(tgt, None)
        while a is not None or b is not None:
            if b is None or (a is not None and a[0] < b[0]):
                assert a is not None  # the loop runs while either side has a group
                self._report(topic, a[0], a[1], [])
                a = next(src, None)
            elif a is None or b[0] < a[0]:
                self._report(topic, b[0], [], b[1])
                b = next(tgt, None)
            else:
                self._report(topic, a[0], a[1], b[1])
                a, b = next(src, None), next(tgt, None)
        del entry

    def _report(self, topic: str, ident: tuple, source: list[KeyedRecord], target: list[KeyedRecord]) -> None:
        self.tally.compared(topic, len(source))
        for r in source:
            self.tally.topic(topic, partition=r.partition)
        ordered = ident[0] == 1
        for kind, s, t, field in compare_sequences(source, target, ordered, self.options):
            any_record = s or t
            assert any_record is not None  # every divergence has a source or a target record
            detail = {"missing": "no target record with this identity and content",
                      "extra": "no source record with this identity and content",
                      "reordered": f"position differs within the sequence of its {self._what()}",
                      "mutated": f"{field or 'content'} differs"}[kind]
            self.tally.add(Divergence(
                kind, topic, s.partition if s else any_record.partition, s.offset if s else None,
                t.offset if t else None, any_record.key, field, detail,
                target_partition=t.partition if t else None))

    def _what(self) -> str:
        return f"{self.id_header} header" if self.id_header else "key"

    def close(self) -> None:
        self.db.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "KeyedComparer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
