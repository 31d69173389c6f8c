"""Record digests: xxh3-128 over a canonical, length-prefixed encoding of a record's content.

The encoding is unambiguous (every field is length-prefixed, a null is length -1), so two
records share a digest only if key, value, headers (names, values, order) and timestamp are
equal.  Options drop the timestamp or some headers for platforms or producers that
legitimately differ there.  Offsets, topic and partition are never part of the content.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable

import xxhash

_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_NULL = _I32.pack(-1)


@dataclass(frozen=True)
class DigestOptions:
    include_timestamp: bool = True
    headers: str | frozenset[str] = "all"  # "all", "none", or the set of header names kept

    def keep_header(self, name: str) -> bool:
        if self.headers == "all":
            return True
        if self.headers == "none":
            return False
        return name in self.headers


DEFAULT = DigestOptions()


def _field(data: bytes | None) -> bytes:
    if data is None:
        return _NULL
    return _I32.pack(len(data)) + data


_pack_i32 = _I32.pack
_pack_i64 = _I64.pack
_LENGTHS = tuple(_pack_i32(i) for i in range(4096))  # length prefixes of short fields, ready-made
_NAMES: dict[str, bytes] = {}  # header name -> its encoded, length-prefixed form
_NAMES_MAX = 10_000


def _name(name: str) -> bytes:
    prefixed = _NAMES.get(name)
    if prefixed is None:
        raw = name.encode("utf-8")
        prefixed = _pack_i32(len(raw)) + raw
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[name] = prefixed
    return prefixed


def encode(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]],
           timestamp: int, options: DigestOptions = DEFAULT) -> bytes:
    # Written out flat, with ready-made length prefixes: this runs for every record a
    # validation reads (tests pin it to the reference form of the encoding).  The common case
    # (every header and the timestamp kept, headers as the client's list, fields under 4 KiB)
    # goes straight through; anything else (a long field: IndexError) takes _encode_any.
    if options is not DEFAULT and (options.headers != "all" or not options.include_timestamp):
        return _encode_any(key, value, headers, timestamp, options)
    lengths = _LENGTHS
    try:
        parts = [_NULL if key is None else lengths[len(key)], key or b"",
                 _NULL if value is None else lengths[len(value)], value or b""]
        if headers:
            parts.append(lengths[len(headers)])  # type: ignore[arg-type]  # not a list: TypeError
            for name, header_value in headers:
                parts += (_NAMES.get(name) or _name(name),
                          _NULL if header_value is None else lengths[len(header_value)], header_value or b"")
        else:
            parts.append(lengths[0])
    except (IndexError, TypeError):
        return _encode_any(key, value, headers, timestamp, options)
    parts.append(_pack_i64(timestamp))
    return b"".join(parts)


def _encode_any(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]],
                timestamp: int, options: DigestOptions) -> bytes:
    if options.headers == "all":
        kept = headers if isinstance(headers, (list, tuple)) else list(headers)
    else:
        kept = [(n, v) for n, v in headers if options.keep_header(n)]
    lengths = _LENGTHS
    parts = [_NULL if key is None else lengths[len(key)] if len(key) < 4096 else _pack_i32(len(key)), key or b"",
             _NULL if value is None else lengths[len(value)] if len(value) < 4096 else _pack_i32(len(value)),
             value or b"", lengths[len(kept)] if len(kept) < 4096 else _pack_i32(len(kept))]
    for name, header_value in kept:
        parts += (_name(name),
                  _NULL if header_value is None
                  else lengths[len(header_value)] if len(header_value) < 4096 else _pack_i32(len(header_value)),
                  header_value or b"")
    parts.append(_pack_i64(timestamp if options.include_timestamp else 0))
    return b"".join(parts)


def content_digest(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]],
                   timestamp: int, options: DigestOptions = DEFAULT) -> bytes:
    """The 16-byte xxh3-128 digest of a record's content."""
    return xxhash.xxh3_128_digest(encode(key, value, headers, timestamp, options))


def record_digest(record, options: DigestOptions = DEFAULT) -> bytes:
    """Digest of anything with key, value, headers and timestamp attributes (e.g. migrate.records.Record)."""
    return content_digest(record.key, record.value, record.headers or (), record.timestamp, options)


def parse_headers_option(spec: str) -> str | frozenset[str]:
    """`--headers` as given on the command line: "all", "none", or a comma-separated name list."""
    text = spec.strip()
    if text.lower() in ("all", "none"):
        return text.lower()
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError("--headers takes all, none, or a comma-separated list of header names")
    return names


def make_options(ignore_timestamp: bool = False, headers: str = "all") -> DigestOptions:
    return DigestOptions(include_timestamp=not ignore_timestamp, headers=parse_headers_option(headers))


def differing_fields(a, b, options: DigestOptions = DEFAULT) -> str:
    """Which content fields differ between two records, comma-joined ("" when none do)."""
    fields = []
    if a.key != b.key:
        fields.append("key")
    if a.value != b.value:
        fields.append("value")
    kept_a = [(n, v) for n, v in (a.headers or ()) if options.keep_header(n)]
    kept_b = [(n, v) for n, v in (b.headers or ()) if options.keep_header(n)]
    if kept_a != kept_b:
        fields.append("headers")
    if options.include_timestamp and a.timestamp != b.timestamp:
        fields.append("timestamp")
    return ",".join(fields)
