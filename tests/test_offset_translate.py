"""Translation rules over offset maps, without brokers: every rule, forward and reverse.

Gaps that neither local platform produces (compaction) are covered here over synthetic
record sequences: a simulated source log (records, transaction markers, aborted records,
compacted-away offsets), a simulated mirror that writes target transactions with their own
markers, and the check that a consumer starting from the translated offset reads exactly
what the original consumer would read next.
"""

from __future__ import annotations

import random

import pytest

from migrate.offset_maps.runs import PartitionMap, Run
from migrate.offset_maps.translate import (
    APPROXIMATE, BEFORE_START, END, EXACT, GAP, NOT_YET, Translation, approximate, translate,
    translate_reverse, translate_reverse_via,
)

# A map: source 10..19 -> target 0..9; source 20 is a marker, 21-22 aborted/compacted gaps;
# source 23..27 -> target 11..15 (target 10 is our own marker); source 28,29 trailing gap.
MAP = PartitionMap([Run(10, 0, 10), Run(23, 11, 5)], source_low=10, source_high=30, target_high=17)


@pytest.mark.parametrize("committed, expected", [
    (10, Translation(EXACT, 0, 0)),
    (15, Translation(EXACT, 5, 0)),
    (19, Translation(EXACT, 9, 0)),
    (23, Translation(EXACT, 11, 0)),
    (27, Translation(EXACT, 15, 0)),
])
def test_forward_exact(committed, expected):
    assert translate(MAP, committed) == expected


@pytest.mark.parametrize("committed, target", [(20, 11), (21, 11), (22, 11), (28, 17), (29, 17)])
def test_forward_gap_goes_to_next_mirrored_record(committed, target):
    result = translate(MAP, committed)
    assert (result.status, result.offset) == (GAP, target)


def test_forward_gap_before_first_run():
    pmap = PartitionMap([Run(3, 0, 4)], source_low=0, source_high=7, target_high=5)
    assert [translate(pmap, c).offset for c in range(0, 4)] == [0, 0, 0, 0]
    assert translate(pmap, 0).status == GAP


def test_forward_end():
    assert translate(MAP, 30) == Translation(END, 17, 0, "at the mirrored end")


def test_forward_not_yet_says_how_far_behind():
    result = translate(MAP, 42)
    assert (result.status, result.offset, result.behind) == (NOT_YET, None, 12)
    assert "30" in result.note and "12" in result.note


def test_forward_before_start_is_reported_not_guessed():
    result = translate(MAP, 3)
    assert (result.status, result.offset) == (BEFORE_START, None)
    assert "earliest mapped source offset 10" in result.note


def test_unmapped_partition_is_not_yet():
    assert translate(PartitionMap(), 0).status == NOT_YET
    assert translate_reverse(PartitionMap(), 0).status == NOT_YET


def test_zero_on_a_map_from_zero():
    pmap = PartitionMap([Run(0, 0, 5)], source_low=0, source_high=5, target_high=6)
    assert translate(pmap, 0) == Translation(EXACT, 0, 0)
    assert translate(pmap, 5).offset == 6
    assert translate_reverse(pmap, 0) == Translation(EXACT, 0, 0)


def test_negative_offsets_are_a_programming_error():
    with pytest.raises(ValueError):
        translate(MAP, -1)


@pytest.mark.parametrize("committed, expected", [
    (0, (EXACT, 10)), (9, (EXACT, 19)), (10, (GAP, 23)), (11, (EXACT, 23)), (15, (EXACT, 27)),
    (16, (GAP, 30)), (17, (END, 30)),
])
def test_reverse_rules(committed, expected):
    result = translate_reverse(MAP, committed)
    assert (result.status, result.offset) == expected


def test_reverse_past_the_mirrored_end_has_no_counterpart():
    result = translate_reverse(MAP, 20)
    assert (result.status, result.offset, result.behind) == (NOT_YET, None, 3)
    assert "reverse mirror" in result.note


def test_reverse_before_the_first_mapped_target_offset():
    pmap = PartitionMap([Run(0, 5, 3)], source_low=0, source_high=3, target_high=8)
    assert translate_reverse(pmap, 2).status == BEFORE_START


def test_reverse_via_rollback_mirror():
    forward = PartitionMap([Run(0, 0, 10)], source_low=0, source_high=11, target_high=11)
    # after cutover, target records 11.. were produced on the target; the rollback mirror began
    # reading the target at 11 and copied them to source offsets 12..
    rollback = PartitionMap([Run(11, 12, 4)], source_low=11, source_high=15, target_high=17)
    assert translate_reverse_via(forward, rollback, 5) == ("forward-map", Translation(EXACT, 5, 0))
    assert translate_reverse_via(forward, rollback, 10)[1].offset == 11  # forward map's gap (our marker)
    assert translate_reverse_via(forward, rollback, 11) == ("reverse-mirror", Translation(EXACT, 12, 0))
    assert translate_reverse_via(forward, rollback, 15)[1] == Translation(END, 17, 0, "at the mirrored end")
    assert translate_reverse_via(forward, rollback, 16)[1].status == NOT_YET
    assert translate_reverse_via(forward, None, 16)[1].status == NOT_YET
    assert translate_reverse_via(None, rollback, 3)[1].status == BEFORE_START
    assert translate_reverse_via(None, None, 3)[1].status == NOT_YET


def test_reverse_via_a_rollback_mirror_still_catching_up():
    forward = PartitionMap([Run(0, 0, 10)], source_low=0, source_high=10, target_high=10)
    # the rollback mirror began at target 0 and has so far adopted only the first 4 records
    rollback = PartitionMap([Run(0, 0, 4)], source_low=0, source_high=4, target_high=4)
    assert translate_reverse_via(forward, rollback, 2) == ("reverse-mirror", Translation(EXACT, 2, 0))
    assert translate_reverse_via(forward, rollback, 7) == ("forward-map", Translation(EXACT, 7, 0))
    which, result = translate_reverse_via(forward, rollback, 12)
    assert (which, result.status, result.behind) == ("reverse-mirror", NOT_YET, 8)


def test_approximate_is_always_labelled():
    result = approximate(42, "by the record at 7")
    assert result.status == APPROXIMATE and not result.exact and result.usable
    assert result.note.startswith("approximate")


# --- property: translation is exact over simulated logs with every kind of gap -------------------

def simulate(seed: int, length: int = 300):
    """A source log with gaps, a mirror of it, and the resulting map.

    Returns (source records [(offset, content)], source_end, target records, target_end, map).
    """
    rng = random.Random(seed)
    source: list[tuple[int, str]] = []
    offset = rng.choice([0, 0, 5])  # log start after retention sometimes
    source_low = offset
    while offset < length:
        kind = rng.choices(["record", "txn", "aborted", "compacted"], [50, 5, 3, 4])[0]
        if kind == "record":
            source.append((offset, f"r{offset}"))
            offset += 1
        elif kind == "txn":  # a transaction of n records and its commit marker
            for _ in range(rng.randint(1, 4)):
                source.append((offset, f"r{offset}"))
                offset += 1
            offset += 1  # marker
        elif kind == "aborted":  # aborted records plus their abort marker: invisible to read_committed
            offset += rng.randint(1, 3) + 1
        else:  # compacted away
            offset += rng.randint(1, 5)
    source_end = offset
    # the mirror writes target transactions of a few records, each followed by its marker
    pmap = PartitionMap()
    pmap.start_at(source_low, 0)
    target: list[tuple[int, str]] = []
    t = 0
    i = 0
    while i < len(source):
        batch = source[i:i + rng.randint(1, 20)]
        for s_off, content in batch:
            pmap.append(s_off, t)
            target.append((t, content))
            t += 1
        t += 1  # our commit marker
        i += len(batch)
    pmap.advance(source_high=source_end, target_high=t)
    return source, source_end, target, t, pmap


def after(records: list[tuple[int, str]], position: int) -> list[str]:
    return [content for off, content in records if off >= position]


@pytest.mark.parametrize("seed", range(25))
def test_forward_translation_is_exact_over_every_position(seed):
    source, source_end, target, _, pmap = simulate(seed)
    for committed in range(pmap.source_low, source_end + 1):
        result = translate(pmap, committed)
        assert result.exact, (committed, result)
        assert after(target, result.offset) == after(source, committed), committed
    assert translate(pmap, source_end + 1).status == NOT_YET
    if pmap.source_low > 0:
        assert translate(pmap, pmap.source_low - 1).status == BEFORE_START


@pytest.mark.parametrize("seed", range(25))
def test_reverse_translation_is_exact_over_every_position(seed):
    source, source_end, target, target_end, pmap = simulate(seed)
    for committed in range(pmap.runs[0].target_start, target_end + 1):
        result = translate_reverse(pmap, committed)
        assert result.exact, (committed, result)
        assert after(source, result.offset) == after(target, committed), committed
    assert translate_reverse(pmap, target_end + 1).status == NOT_YET


def test_mirror_behind_partway():
    source, source_end, target, _, full = simulate(7)
    cut = len(full.runs) // 2
    partial = PartitionMap(full.runs[:cut], full.source_low)
    high = partial.source_high
    for committed in range(full.source_low, high + 1):
        result = translate(partial, committed)
        assert after(target, result.offset)[:5] == after(source, committed)[:5]
    assert translate(partial, high + 3).behind == 3


@pytest.mark.parametrize("seed", range(25))
def test_a_map_pruned_below_both_log_starts_translates_every_readable_offset_as_before(seed):
    """Pruning (runs.py) drops only what no consumer can read on either cluster any more."""
    import copy

    source, source_end, target, target_end, whole = simulate(seed)
    rng = random.Random(seed)
    source_start = rng.randint(whole.source_low, source_end)  # both clusters' retention moved on
    target_start = rng.randint(whole.runs[0].target_start, target_end)
    pruned = copy.deepcopy(whole)
    dropped = pruned.prune_below(source_start, target_start)
    assert len(pruned.runs) == len(whole.runs) - dropped >= 1
    for committed in range(source_start, source_end + 1):
        assert translate(pruned, committed) == translate(whole, committed), committed
    for committed in range(target_start, target_end + 1):
        assert translate_reverse(pruned, committed) == translate_reverse(whole, committed), committed
    first = pruned.runs[0]
    if dropped:  # what it no longer holds lies below both log starts
        assert first.source_start <= source_start and first.target_start <= target_start
    for committed in range(pruned.source_low, source_start):  # deleted on both: to the first kept record
        expected = first.target_start if committed < first.source_start else translate(whole, committed).offset
        result = translate(pruned, committed)
        assert result.exact and result.offset == expected, committed
