"""Rare collections inside per-record loops, and the process's own thresholds back after them."""

from __future__ import annotations

import gc

import pytest

from migrate.collector import RARE, rare_collections


@pytest.fixture(autouse=True)
def thresholds_of_the_test_process():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_thresholds_are_rare_inside_and_the_earlier_ones_are_back_after():
    gc.set_threshold(700, 10, 10)
    with rare_collections():
        assert gc.get_threshold() == RARE
    assert gc.get_threshold() == (700, 10, 10)


def test_the_earlier_thresholds_are_back_also_when_the_block_fails():
    gc.set_threshold(500, 5, 5)
    with pytest.raises(RuntimeError):
        with rare_collections():
            raise RuntimeError("a validation that failed")
    assert gc.get_threshold() == (500, 5, 5)


def test_frozen_objects_are_thawed_after_the_block():
    gc.unfreeze()
    kept = [object() for _ in range(10)]
    with rare_collections(freeze=True):
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0
