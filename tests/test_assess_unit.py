"""`migrate assess` pieces that need no broker: the sample bound, the sample's counts, costs, the plan, vars.

Compaction gaps cannot be produced on the local brokers (noida-db does not compact within a
test, Tansu never does), so gap counting is covered here over record sequences.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml

from migrate.assess.model import Inventory, TopicInventory, Usage
from migrate.assess.plan import load_costs, make_plan, playbook_vars, vars_yaml
from migrate.assess.sampling import SampleAccumulator, sample_windows, schema_id
from migrate.errors import ConfigError
from migrate.records import Record


@pytest.mark.parametrize("low,high,limit", [(0, 0, 10), (0, 5, 10), (0, 10, 10), (0, 11, 10), (7, 1_000_007, 1000),
                                            (0, 10**12, 1), (5, 6, 3), (0, 3, 2)])
def test_sample_windows_never_exceed_the_limit_and_stay_inside_the_partition(low, high, limit):
    windows = sample_windows(low, high, limit)
    assert sum(end - start for start, end in windows) == min(limit, high - low)
    assert all(low <= start < end <= high for start, end in windows)
    if high - low > limit >= 2:  # head and tail: the oldest and the newest records are both seen
        assert windows[0][0] == low and windows[-1][1] == high


def _record(offset, key=b"k", value=b"v", headers=(), ts=1000, ts_type=1, partition=0):
    return Record("t", partition, offset, key, value, headers, ts, ts_type)


def test_accumulator_counts_gaps_tombstones_headers_backwards_timestamps_and_near_max_records():
    acc = SampleAccumulator(max_message_bytes=1000)
    records = [
        _record(0, ts=10), _record(1, key=None, ts=20), _record(2, value=None, ts=15),   # null key, tombstone, ts back
        # offsets 3, 4 missing: a compaction (or marker) gap inside the window
        _record(5, headers=(("trace", b"1"), ("trace", b"2")), ts=30),
        _record(6, value=b"x" * 900, ts=40),                                            # 80% of max.message.bytes
    ]
    assert acc.add_window(0, (0, 8), records) == 5  # offset 7 missing at the end: a trailing marker
    usage = acc.usage()
    assert (usage.sampled, usage.offsets_covered, usage.offset_gaps) == (5, 8, 3)
    assert (usage.null_keys, usage.tombstones, usage.with_headers) == (1, 1, 1)
    assert usage.header_names == (("trace", 1),)
    assert usage.backwards_timestamps == 1
    assert usage.near_max_bytes == 1
    assert (usage.oldest_timestamp, usage.newest_timestamp) == (10, 40)
    assert usage.sizes.max == 901 and usage.sizes.p50 == 2


def test_timestamps_are_not_compared_across_the_head_and_tail_windows():
    acc = SampleAccumulator(10**6)
    acc.add_window(0, (0, 2), [_record(0, ts=500), _record(1, ts=600)])
    acc.add_window(0, (98, 100), [_record(98, ts=100), _record(99, ts=200)])
    assert acc.usage().backwards_timestamps == 0


def test_schema_ids_only_when_every_sampled_value_is_framed():
    framed = [_record(i, value=bytes([0]) + sid.to_bytes(4, "big") + b"payload") for i, sid in enumerate((3, 17, 3))]
    acc = SampleAccumulator(10**6)
    acc.add_window(0, (0, 3), framed)
    assert acc.usage().schema_ids == (3, 17) and acc.usage().schema_framed == 3
    acc.add_window(1, (0, 1), [_record(0, value=b'{"json": true}', partition=1)])
    assert acc.usage().schema_ids == ()  # a value without the prefix: no evidence of the wire format
    assert schema_id(b"\x00\x00\x00") is None and schema_id(None) is None


def test_header_names_with_nul_are_shown_escaped():
    acc = SampleAccumulator(10**6)
    acc.nul_header_names = {"trace\x00id"}
    assert acc.usage().nul_header_names == ("trace\\x00id",)


# --- costs and plan ------------------------------------------------------------------------------


def test_costs_file_is_read_and_checked(tmp_path):
    good = tmp_path / "costs.toml"
    good.write_text('currency = "EUR"\nstorage_gb_month = 0.1\ntransfer_gb = 0.02\nworker_hour = 0.5\n')
    costs = load_costs(good)
    assert (costs.currency, costs.storage_gb_month, costs.transfer_gb, costs.worker_hour) == ("EUR", 0.1, 0.02, 0.5)
    bad = tmp_path / "bad.toml"
    for text, message in (("storage_gb_month = [", "is not valid TOML"),
                          ("storage_gb_month = 1\ntransfer_gb = 1\nworker_hour = 1\negress = 2", "unknown keys: egress"),
                          ("storage_gb_month = 1", "lacks transfer_gb, worker_hour"),
                          ('storage_gb_month = "1"\ntransfer_gb = 1\nworker_hour = 1', "must be a number")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_costs(bad)


def _topic(name, bytes_estimate, bytes_per_s, records_per_s, retention_ms="-1", policy="delete"):
    configs = {"cleanup.policy": policy, "retention.ms": retention_ms, "retention.bytes": "-1"}
    return TopicInventory(name, 3, 1, configs, 1000, 1000, bytes_estimate, True, records_per_s, bytes_per_s, "no",
                          Usage())


def _inventory(*topics, groups=()):
    return Inventory("source", "h:1", "now", 10, 1000, tuple(topics), tuple(groups), 1.0)


def test_plan_arithmetic_copy_workers_bandwidth_storage_and_costs(tmp_path):
    costs_file = tmp_path / "c.toml"
    costs_file.write_text("storage_gb_month = 0.1\ntransfer_gb = 0.02\nworker_hour = 0.5\n")
    inventory = _inventory(_topic("a", 60e9, 2e6, 1000.0), _topic("b", 40e9, 1e6, 200.0, retention_ms="86400000"))
    plan = make_plan(inventory, "source", "target", throughput_mb_s=50, copy_window_s=600,
                     headroom=2.0, overlap_days=10, costs=load_costs(costs_file))
    assert plan.copy_bytes_estimate == 100e9
    assert plan.copy_workers == 4 and plan.copy_seconds == 500.0  # 2000 s alone; 600 s allowed
    assert plan.write_bytes_per_s == 3e6 and plan.bandwidth_bytes_per_s == 6e6 and plan.dual_run_workers == 1
    # a: kept forever, grows by 2 MB/s for 10 days; b: holds at most one day (its retention) of 1 MB/s
    assert plan.target_storage_bytes == int(60e9 + 2e6 * 864000) + int(1e6 * 86400)
    costs = plan.costs
    assert costs.monthly_storage == round(plan.target_storage_bytes / 1e9 * 0.1, 2)
    assert costs.monthly_transfer == round(3e6 * 730 * 3600 / 1e9 * 0.02, 2)
    assert costs.monthly_workers == 365.0
    assert costs.copy == round(100 * 0.02 + 4 * 500 / 3600 * 0.5, 2)


def test_plan_without_throughput_or_prices_gives_quantities_only():
    plan = make_plan(_inventory(_topic("a", 1e6, None, None)), "source", None)
    assert plan.copy_seconds is None and plan.costs is None and plan.bandwidth_bytes_per_s is None
    assert any("--throughput" in n for n in plan.notes)


def _cutover_vars() -> set[str]:
    text = (resources.files("migrate.playbooks") / "cutover.yaml").read_text()
    return set(yaml.safe_load(text)["vars"])


def test_vars_file_loads_and_names_only_variables_the_cutover_declares():
    from migrate.assess.model import GroupInventory, GroupTopic

    inventory = _inventory(_topic("orders.eu", 1, 1, 900.0), _topic("orders.us", 1, 1, 100.0),
                           groups=[GroupInventory("billing", "EMPTY", 0, (GroupTopic("orders.eu", 3, 5, 0),), ())])
    values = yaml.safe_load(vars_yaml(playbook_vars(inventory, "src", "tgt"), "vars.yaml"))
    assert set(values) <= _cutover_vars()
    assert values == {"source": "src", "target": "tgt", "topics": r"orders\.eu|orders\.us", "groups": "billing",
                      "max_lag": 5000}  # 1000 records/s for about 5 s
    pattern = re.compile(values["topics"])
    assert pattern.fullmatch("orders.eu") and not pattern.fullmatch("ordersXeu")


@pytest.mark.slow  # the migrate CLI in a child process
def test_assess_help_has_an_example():
    from support import run_cli

    result = run_cli("assess", "--help")
    assert result.returncode == 0 and "Example: migrate assess --source" in result.stdout


def test_a_group_whose_unread_records_near_the_retention_is_a_risk():
    from migrate.assess.model import GroupInventory, GroupTopic
    from migrate.assess.readiness import retention_findings

    day = 86_400_000
    topics = {"t": _topic("t", 1, 1, 1.0, retention_ms=str(10 * day)), "forever": _topic("forever", 1, 1, 1.0)}
    now = 100 * day
    old = GroupInventory("g", "EMPTY", 0, (GroupTopic("t", 3, 40, 0, now - 6 * day),
                                           GroupTopic("forever", 3, 40, 0, now - 600 * day)), ())
    found = list(retention_findings(old, topics, now))
    assert [(f.level, f.subject) for f in found] == [("risk", "g")]  # kept forever: no risk however old
    assert found[0].evidence == "on t its oldest unread record is 144.0 h old; retention.ms is 240.0 h (40 records unread)"
    young = GroupInventory("g", "EMPTY", 0, (GroupTopic("t", 3, 40, 0, now - 4 * day),), ())
    assert list(retention_findings(young, topics, now)) == []
