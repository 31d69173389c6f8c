"""The config sync's rules over config answers as the two platforms give them (migrate.mirror.configs)."""

from __future__ import annotations

import pytest

from migrate.errors import UsageError
from migrate.mirror.configs import (APPLIED, COPIED_CONFIGS, REFUSED, REPORTED, RESTORED, ConfigScope,
                                    creation_configs, effective, plan_topic)

# As noida-db answers DescribeConfigs (Kafka's way): every key, defaults flagged.
NOIDA_DEFAULTS = {key: (value, False) for key, value in COPIED_CONFIGS.items()} | {"min.insync.replicas": ("1", False)}


def noida(**explicit: str) -> dict:
    return NOIDA_DEFAULTS | {key.replace("_", "."): (value, True) for key, value in explicit.items()}


def tansu(**stored: str) -> dict:
    """As Tansu answers: only the keys it stores, each flagged as a default (measured)."""
    return {key.replace("_", "."): (value, False) for key, value in stored.items()}


def test_values_are_compared_as_they_take_effect_not_by_the_platforms_default_flags():
    assert effective(noida(), "retention.ms") == effective(tansu(), "retention.ms") == "604800000"
    assert effective(tansu(retention_ms="3600000"), "retention.ms") == "3600000"  # flagged default, yet set
    assert effective(noida(), "min.insync.replicas") is None  # a listed default outside the allow-list: unset
    assert effective(tansu(min_insync_replicas="2"), "min.insync.replicas") == "2"
    assert effective(tansu(cleanup_policy="delete, compact"), "cleanup.policy") == "compact,delete"


def test_scope_is_the_allow_list_plus_included_keys_minus_excluded_ones():
    scope = ConfigScope.of(("min\\.insync\\..*",), ("segment\\..*",))
    keys = scope.keys(noida(), tansu(**{"x": "1"}))
    assert "min.insync.replicas" in keys and "retention.ms" in keys and "x" not in keys
    assert "segment.ms" not in keys and "segment.bytes" not in keys
    with pytest.raises(UsageError, match='--config-include "min\\(" is not a valid regular expression'):
        ConfigScope.of(("min(",), ())


def test_a_new_target_topic_gets_what_the_source_sets_in_scope():
    scope = ConfigScope.of(("min\\.insync\\.replicas",), ("max\\.message\\.bytes",))
    source = noida(retention_ms="3600000", max_message_bytes="2000000", min_insync_replicas="2")
    assert creation_configs(source, scope) == {"retention.ms": "3600000", "min.insync.replicas": "2"}
    assert creation_configs(tansu(retention_ms="604800000", cleanup_policy="compact"), ConfigScope()) == {
        "cleanup.policy": "compact"}


def plan(source, target, baseline, mode="restore", refused=None):
    return plan_topic("orders", "src.orders", ConfigScope(), source, target, baseline, mode, refused or {})


def test_a_change_on_the_source_is_applied_in_both_modes():
    for mode in ("restore", "report"):
        done = plan(noida(retention_ms="86400000"), tansu(), {"retention.ms": "604800000"}, mode)
        assert (done.changes, done.reasons, done.drift) == ({"retention.ms": "86400000"}, {"retention.ms": APPLIED}, [])
        assert done.baseline["retention.ms"] == "86400000"


def test_a_key_the_source_went_back_to_the_default_is_set_to_that_default_not_deleted():
    # Deleting would leave the target at its own default, which may differ, and the next round
    # would delete again for ever.
    done = plan(noida(), tansu(retention_ms="86400000"), {"retention.ms": "86400000"})
    assert done.changes == {"retention.ms": "604800000"}


def test_a_key_outside_the_allow_list_unset_on_the_source_is_deleted_on_the_target():
    scope = ConfigScope.of(("min\\.insync\\.replicas",), ())
    done = plan_topic("t", "t", scope, noida(), tansu(min_insync_replicas="2"), {"min.insync.replicas": "2"},
                      "restore", {})
    assert done.changes == {"min.insync.replicas": None}


def test_a_hand_change_on_the_target_is_restored_or_only_reported():
    baseline = {"retention.ms": "86400000"}
    restored = plan(noida(retention_ms="86400000"), tansu(retention_ms="1000"), baseline, "restore")
    assert restored.reasons == {"retention.ms": RESTORED} and restored.changes == {"retention.ms": "86400000"}
    reported = plan(noida(retention_ms="86400000"), tansu(retention_ms="1000"), baseline, "report")
    assert reported.changes == {}
    assert [(d.key, d.source, d.target, d.state) for d in reported.drift] == [
        ("retention.ms", "86400000", "1000", REPORTED)]


def test_without_a_baseline_report_mode_never_overwrites_a_difference():
    reported = plan(noida(retention_ms="86400000"), tansu(retention_ms="1000"), None, "report")
    assert reported.changes == {} and [d.state for d in reported.drift] == [REPORTED]
    assert reported.baseline["retention.ms"] == "86400000"  # a later source change is applied
    restored = plan(noida(retention_ms="86400000"), tansu(retention_ms="1000"), None, "restore")
    assert restored.changes == {"retention.ms": "86400000"}


def test_a_refused_value_is_not_sent_again_until_the_source_changes_it():
    source, target = noida(retention_ms="86400000"), tansu()
    again = plan(source, target, {"retention.ms": "604800000"}, refused={"retention.ms": "86400000"})
    assert again.changes == {} and [d.state for d in again.drift] == [REFUSED]
    changed = plan(noida(retention_ms="3600000"), target, {"retention.ms": "604800000"},
                   refused={"retention.ms": "86400000"})
    assert changed.changes == {"retention.ms": "3600000"}


def test_topics_in_sync_send_nothing():
    done = plan(noida(retention_ms="86400000", cleanup_policy="compact,delete"),
                tansu(retention_ms="86400000", cleanup_policy="delete,compact"), None, "report")
    assert (done.changes, done.drift) == ({}, [])

