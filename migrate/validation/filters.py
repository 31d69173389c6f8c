"""Which topics and records a run compares: the topic patterns, the time range, the sample.

Ranges by time (`--since/--until`) are applied client-side, by filtering on each record's
own timestamp while streaming: some platforms answer ListOffsets-by-time from batch write
times rather than record timestamps (Tansu deviation 2), so the broker's answer is not used.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import xxhash

from migrate.errors import UsageError
from migrate.validation.spec import ValidateSpec
from migrate.validators import windows
from migrate.validators.keyed import identity_of


def _topic_filter(patterns: Sequence[str]) -> Callable[[str], bool]:
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as exc:
        raise UsageError(f"--topics: invalid regular expression ({exc})") from exc
    if not compiled:
        return lambda name: not name.startswith("__")
    return lambda name: any(c.fullmatch(name) for c in compiled)


def _threshold(rate: float) -> int:
    return min(1 << 64, int(rate * (1 << 64)))


def _include(spec: ValidateSpec, partition: int) -> Callable[[int, int], bool]:
    """Which records (by offset and timestamp) this run compares: time range, then sample."""
    since, until = spec.since_ms, spec.until_ms
    limit = _threshold(spec.sample)
    sampled = spec.sample < 1.0

    if since is None and until is None and not sampled:
        return windows._everything

    def include(offset: int, ts: int) -> bool:
        if since is not None and ts < since:
            return False
        if until is not None and ts >= until:
            return False
        if sampled and xxhash.xxh64_intdigest(offset.to_bytes(8, "big"), seed=partition) >= limit:
            return False
        return True

    return include


def _key_include(spec: ValidateSpec) -> Callable[[object], bool]:
    since, until = spec.since_ms, spec.until_ms
    limit = _threshold(spec.sample)
    sampled = spec.sample < 1.0
    id_header = spec.id_header

    def include(record) -> bool:
        if since is not None and record.timestamp < since:
            return False
        if until is not None and record.timestamp >= until:
            return False
        if sampled:  # sample whole identities, so each sampled sequence is complete
            ident = identity_of(record, id_header)
            if xxhash.xxh64_intdigest(ident or b"") >= limit:
                return False
        return True

    return include
