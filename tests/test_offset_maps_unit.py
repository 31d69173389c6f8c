"""How a partition's offset map grows and what it saves: runs merge, order is enforced, positions never go back."""

from __future__ import annotations

import pytest

from migrate.offset_maps.runs import MapOrderError, PartitionMap, Run


def test_pairs_that_continue_the_last_run_extend_it_and_a_skip_on_either_side_starts_a_new_one():
    pmap = PartitionMap()
    for offset in range(5):
        pmap.append(offset, offset)
    pmap.append(6, 5)  # source skipped 5 (a marker)
    pmap.append(7, 7)  # target skipped 6 (our own marker)
    pmap.append_run(8, 8, 10)
    assert pmap.runs == [Run(0, 0, 5), Run(6, 5, 1), Run(7, 7, 11)]
    assert (pmap.source_low, pmap.source_high, pmap.target_high) == (0, 18, 18)
    assert pmap.record_count == 17 and pmap.next_target == 18
    assert pmap.target_of(6) == 5 and pmap.target_of(5) is None and pmap.source_of(6) is None


@pytest.mark.parametrize("source, target", [(4, 10), (10, 4), (9, 10), (10, 9)])
def test_a_pair_that_goes_back_on_either_side_is_refused_and_leaves_the_map_as_it_was(source, target):
    pmap = PartitionMap([Run(0, 0, 10)])
    with pytest.raises(MapOrderError):
        pmap.append(source, target)
    assert pmap.runs == [Run(0, 0, 10)] and pmap.source_high == 10 and pmap.target_high == 10


def test_an_empty_run_changes_nothing():
    pmap = PartitionMap([Run(0, 0, 3)])
    pmap.mark_saved()
    pmap.append_run(0, 0, 0)
    assert pmap.runs == [Run(0, 0, 3)] and not pmap.head_dirty and pmap.dirty_runs() == []


def test_only_what_changed_since_the_last_save_is_dirty_including_a_run_extended_in_place():
    pmap = PartitionMap([Run(0, 0, 5), Run(10, 5, 5)])
    assert pmap.dirty_runs() == [] and not pmap.head_dirty  # loaded: nothing to save
    pmap.append(15, 10)  # extends the loaded last run: it must be saved again, whole
    assert pmap.dirty_runs() == [Run(10, 5, 6)] and pmap.head_dirty
    pmap.mark_saved()
    pmap.append(20, 11)
    assert pmap.dirty_runs() == [Run(20, 11, 1)]
    pmap.mark_saved()
    pmap.advance(source_high=25)  # a gap of markers: only the head changes
    assert pmap.dirty_runs() == [] and pmap.head_dirty


def test_positions_only_move_forward():
    pmap = PartitionMap([Run(0, 0, 10)], source_high=12, target_high=11)
    pmap.mark_saved()
    pmap.advance(source_high=11, target_high=10)
    assert (pmap.source_high, pmap.target_high) == (12, 11) and not pmap.head_dirty
    pmap.advance(target_high=14)
    assert (pmap.source_high, pmap.target_high) == (12, 14) and pmap.head_dirty


def test_start_at_sets_where_an_empty_map_begins_once():
    pmap = PartitionMap()
    pmap.start_at(40, 7)
    pmap.start_at(90, 9)  # a second start (a later assignment) does not move the beginning
    assert (pmap.source_low, pmap.source_high, pmap.target_high) == (40, 40, 7) and pmap.empty
    pmap.append(42, 7)
    assert pmap.source_low == 40 and pmap.first_gap_below(43) == 40  # 40..41 were never mapped


def test_a_loaded_map_derives_its_span_from_its_runs_unless_told_more():
    runs = [Run(10, 0, 5), Run(3, 100, 2)]  # out of order, as rows may come back
    pmap = PartitionMap(runs)
    assert pmap.runs == [Run(3, 100, 2), Run(10, 0, 5)]
    assert (pmap.source_low, pmap.source_high) == (3, 15)
    told = PartitionMap([Run(10, 0, 5)], source_low=8, source_high=30, target_high=2)
    assert (told.source_low, told.source_high, told.target_high) == (8, 30, 5)  # never below the last run


@pytest.mark.parametrize("runs, low, below, gap", [
    ([Run(0, 0, 10)], 0, 10, None),  # contiguous up to the resume point
    ([Run(0, 0, 10)], 0, 11, 10),  # offset 10 was skipped
    ([Run(0, 0, 10), Run(12, 10, 5)], 0, 17, 10),  # the first gap, not the last
    ([Run(5, 0, 10)], 0, 15, 0),  # a gap before the first run
    ([Run(5, 0, 10)], 5, 5, None),  # nothing below the low end
    ([], 5, 9, 5),  # started, nothing mapped yet: everything from the start is a gap
])
def test_first_gap_below(runs, low, below, gap):
    pmap = PartitionMap(runs, source_low=low, source_high=max([r.source_end for r in runs] + [below]))
    assert pmap.first_gap_below(below) == gap


def live_map(commits: int) -> PartitionMap:
    """A followed partition: one record per commit, each commit's marker one target offset."""
    pmap = PartitionMap()
    pmap.start_at(0, 0)
    for n in range(commits):
        pmap.append(n, 2 * n)
    pmap.mark_saved()
    return pmap


def test_runs_are_pruned_only_while_the_next_run_starts_below_both_log_starts():
    pmap = live_map(10)  # runs (n -> 2n) x1
    assert pmap.prune_below(5, 4) == 2  # the third run starts at source 2, target 4: runs 0 and 1 go
    assert pmap.runs[0] == Run(2, 4, 1) and pmap.pruned == [0, 1]
    assert pmap.source_low == 0 and (pmap.source_high, pmap.target_high) == (10, 19)  # the span stays
    assert pmap.prune_below(5, 4) == 0  # the next run starts at target 6, above the target's log start
    assert pmap.target_of(2) == 4 and pmap.target_of(1) is None


def test_the_last_run_is_never_pruned():
    pmap = live_map(3)
    assert pmap.prune_below(100, 100) == 2
    assert pmap.runs == [Run(2, 4, 1)] and pmap.source_high == 3 and pmap.target_high == 5


def test_pruning_keeps_unsaved_runs_dirty_and_a_save_forgets_what_was_pruned():
    pmap = live_map(6)
    pmap.append(6, 12)
    pmap.append(7, 14)  # two runs not saved yet
    assert pmap.prune_below(3, 6) == 3
    assert pmap.dirty_runs() == [Run(6, 12, 1), Run(7, 14, 1)]
    pmap.mark_saved()
    assert pmap.pruned == [] and pmap.dirty_runs() == []


def test_a_pruned_run_is_a_tombstone_in_the_map_topic_and_a_deleted_row_in_the_state_file(tmp_path):
    from migrate.offset_maps.store import MapStore
    from migrate.offset_maps.topic import map_records, run_key
    from migrate.state import State

    with State(tmp_path / "state.db") as state:
        store = MapStore(state, "m")
        pmap = live_map(10)
        store.save("t", 0, pmap, "t")  # nothing dirty: only the head
        store.replace("t", 0, pmap, "t")
        pmap.prune_below(4, 8)
        records = map_records("t", 0, pmap, "t")
        assert [(k, v) for k, v in records if v is None] == [(run_key("t", 0, n), None) for n in range(4)]
        store.save("t", 0, pmap, "t")
        loaded = store.load("t", 0)
    assert loaded.runs == pmap.runs and loaded.runs[0].source_start == 4 and len(loaded.runs) == 6
