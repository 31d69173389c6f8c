"""Pure tests of the parity validators over synthetic record sequences (no brokers)."""

from __future__ import annotations

import pytest

from migrate.offset_maps.runs import PartitionMap, Run
from migrate.records import Record
from migrate.validators import windows
from migrate.validators.digest import DigestOptions, make_options, parse_headers_option, record_digest
from migrate.validators.divergence import Tally, render_key
from migrate.validators.keyed import SOURCE, TARGET, KeyedComparer


def rec(offset: int, n: int | None = None, *, partition: int = 0, key: bytes | None = None,
        headers=(("h", b"1"),), ts: int = 1_700_000_000_000, value: bytes | None = None) -> Record:
    n = offset if n is None else n
    return Record("t", partition, offset, key if key is not None else f"k{n}".encode(),
                  value if value is not None else f"v{n}".encode(), tuple(headers), ts + n)


def items(records, options=DigestOptions()):
    return [(r.offset, record_digest(r, options), r.timestamp, r.key, r) for r in records]


def validate(source, target, pmap, window=16, options=DigestOptions(), include_source=None):
    """Run map-mode comparison of two record lists; returns (tally result, comparer)."""
    tally = Tally(max_examples=100)
    src, tgt = items(source, options), items(target, options)

    def read(side):
        return lambda lo, hi: [i for i in side if i[0] >= lo and (hi is None or i[0] < hi)]

    kwargs = {"include_source": include_source} if include_source else {}
    reread = windows.make_reread(read(src), read(tgt), pmap, **kwargs)
    comparer = windows.compare_partition("t", 0, src, tgt, pmap, tally, reread, window, options, **kwargs)
    return tally.result("map"), comparer


def kinds(result):
    return [(d.kind, d.source_offset, d.target_offset, d.field) for d in result.examples]


def swap(records, i, j):
    """Swap the content of two records, keeping their offsets (what a reordering target holds)."""
    a, b = records[i], records[j]
    records[i] = Record(a.topic, a.partition, a.offset, b.key, b.value, b.headers, b.timestamp)
    records[j] = Record(b.topic, b.partition, b.offset, a.key, a.value, a.headers, a.timestamp)


def identity_map(n: int, target_start: int = 0) -> PartitionMap:
    return PartitionMap([Run(0, target_start, n)], 0, n, target_start + n)


def test_clean_copy_is_parity_and_counts_every_record():
    source = [rec(i) for i in range(1000)]
    result, comparer = validate(source, list(source), identity_map(1000), window=100)
    assert result.parity and result.records_compared == 1000
    assert comparer.windows == 10 and comparer.windows_differing == 0


def test_mutated_header_is_found_at_its_offsets_with_the_field():
    source = [rec(i) for i in range(500)]
    target = list(source)
    target[321] = rec(321, headers=(("h", b"2"),))
    result, comparer = validate(source, target, identity_map(500), window=128)
    assert kinds(result) == [("mutated", 321, 321, "headers")]
    assert comparer.windows_differing == 1


@pytest.mark.parametrize("field,change", [
    ("value", dict(value=b"other")), ("key", dict(key=b"other")), ("timestamp", dict(ts=5)),
])
def test_mutated_names_each_field(field, change):
    source = [rec(i) for i in range(50)]
    target = list(source)
    target[7] = rec(7, **change)
    result, _ = validate(source, target, identity_map(50))
    assert kinds(result) == [("mutated", 7, 7, field)]


def test_ignore_timestamp_and_header_options_hide_those_differences():
    source = [rec(i) for i in range(50)]
    target = [rec(i, ts=99, headers=(("h", b"x"), ("keep", b"1"))) for i in range(50)]
    source = [rec(i, headers=(("h", b"1"), ("keep", b"1"))) for i in range(50)]
    options = DigestOptions(include_timestamp=False, headers=frozenset({"keep"}))
    result, _ = validate(source, target, identity_map(50), options=options)
    assert result.parity
    result, _ = validate(source, target, identity_map(50), options=make_options(True, "none"))
    assert result.parity
    result, _ = validate(source, target, identity_map(50), options=make_options(True, "all"))
    assert {k for k, *_ in kinds(result)} == {"mutated"} and result.counts["mutated"] == 50


def test_swapped_pair_is_reordered_at_both_offsets_even_across_a_window_boundary():
    source = [rec(i) for i in range(300)]
    target = list(source)
    swap(target, 100, 101)  # window 50: 100|101 inside a window, 149|150 across a boundary
    swap(target, 149, 150)
    result, _ = validate(source, target, identity_map(300), window=50)
    assert kinds(result) == [("reordered", 100, 101, None), ("reordered", 101, 100, None),
                             ("reordered", 149, 150, None), ("reordered", 150, 149, None)]


def test_source_record_in_a_map_gap_is_missing():
    # The mirror skipped source offset 40 (e.g. a filter): the map has two runs around it.
    source = [rec(i) for i in range(100)]
    target = [rec(i) for i in range(100) if i != 40]
    target = [Record(r.topic, 0, j, r.key, r.value, r.headers, r.timestamp) for j, r in enumerate(target)]
    pmap = PartitionMap([Run(0, 0, 40), Run(41, 40, 59)], 0, 100, 99)
    result, _ = validate(source, target, pmap)
    assert kinds(result) == [("missing", 40, None, None)]


def test_target_record_lost_at_a_mapped_offset_is_missing_with_that_offset():
    source = [rec(i) for i in range(60)]
    target = [r for r in source if r.offset != 17]
    result, _ = validate(source, target, identity_map(60))
    assert kinds(result) == [("missing", 17, 17, None)]


def test_target_record_between_mapped_records_is_extra():
    # Target: 0..29 mirrored, 30 is foreign, 31.. mirrored (the map skips target 30).
    source = [rec(i) for i in range(60)]
    target = [Record("t", 0, i if i < 30 else i + 1, r.key, r.value, r.headers, r.timestamp)
              for i, r in enumerate(source)]
    target.insert(30, rec(30, n=999))
    pmap = PartitionMap([Run(0, 0, 30), Run(30, 31, 30)], 0, 60, 61)
    result, _ = validate(source, target, pmap)
    assert kinds(result) == [("extra", None, 30, None)]


def test_target_tail_past_the_map_pairs_by_content_and_foreign_records_are_extra():
    # Map covers 0..49; the mirror already wrote 50..54 but has not recorded them; then a foreign record.
    source = [rec(i) for i in range(60)]
    target = [rec(i) for i in range(55)] + [rec(55, n=777)]
    pmap = identity_map(50)
    result, _ = validate(source, target, pmap)
    assert kinds(result) == [("extra", None, 55, None)]
    assert result.records_compared == 55
    assert result.info["unmirrored"] == 5


def test_transaction_gaps_on_both_sides_pair_through_the_runs():
    # Source markers at 10, 21; target markers at 5 (between mirror runs).
    source = [rec(i) for i in range(30) if i not in (10, 21)]
    pmap = PartitionMap([Run(0, 0, 5), Run(5, 6, 5), Run(11, 11, 10), Run(22, 21, 8)], 0, 30, 29)
    target = [Record("t", 0, pmap.target_of(r.offset), r.key, r.value, r.headers, r.timestamp) for r in source]
    result, _ = validate(source, target, pmap, window=4)
    assert result.parity and result.records_compared == 28


def test_window_size_does_not_change_findings():
    source = [rec(i) for i in range(700)]
    target = list(source)
    target[3] = rec(3, value=b"x")
    swap(target, 500, 501)
    expected = None
    for window in (1, 7, 64, 1000, 10_000):
        result, _ = validate(source, target, identity_map(700), window=window)
        found = kinds(result)
        expected = expected or found
        assert found == expected
    assert expected == [("mutated", 3, 3, "value"), ("reordered", 500, 501, None), ("reordered", 501, 500, None)]


def test_bisect_narrows_to_the_first_divergent_record():
    source = [rec(i) for i in range(4096)]
    target = list(source)
    target[3000] = rec(3000, value=b"x")
    tally = Tally()
    src, tgt = items(source), items(target)
    reads = []

    def read(side, name):
        def reader(lo, hi):
            reads.append((name, lo, hi))
            return [i for i in side if i[0] >= lo and (hi is None or i[0] < hi)]
        return reader

    pmap = identity_map(4096)
    reread = windows.make_reread(read(src, "s"), read(tgt, "t"), pmap)
    comparer = windows.WindowComparer("t", 0, tally, reread, window=4096)
    assert comparer.first_divergent(0, 4096) <= 3000 < comparer.first_divergent(0, 4096) + windows.LEAF


def test_since_filter_excludes_records_outside_the_range():
    source = [rec(i) for i in range(100)]
    target = list(source)
    target[10] = rec(10, value=b"x")
    target[90] = rec(90, value=b"x")
    result, _ = validate(source, target, identity_map(100),
                         include_source=lambda off, ts: ts >= 1_700_000_000_050)
    assert kinds(result) == [("mutated", 90, 90, "value")]
    assert result.records_compared == 50


def test_tally_caps_examples_but_counts_everything():
    source = [rec(i) for i in range(100)]
    target = [rec(i, value=b"x") for i in range(100)]
    tally = Tally(max_examples=3)
    src, tgt = items(source), items(target)
    read = lambda side: (lambda lo, hi: [i for i in side if i[0] >= lo and (hi is None or i[0] < hi)])
    windows.compare_partition("t", 0, src, tgt, identity_map(100), tally,
                              windows.make_reread(read(src), read(tgt), identity_map(100)), window=10)
    result = tally.result("map")
    assert result.counts["mutated"] == 100 and len(result.examples) == 3


def test_headers_option_parsing_and_key_rendering():
    assert parse_headers_option("ALL") == "all" and parse_headers_option("none") == "none"
    assert parse_headers_option("a, b") == frozenset({"a", "b"})
    with pytest.raises(ValueError):
        parse_headers_option(" , ")
    assert render_key(b"wf-1") == "wf-1" and render_key(b"\x00\xff") == "0x00ff" and render_key(None) is None


# --- key mode -----------------------------------------------------------------------------------


def keyed(source, target, id_header=None, options=DigestOptions(), directory=None):
    tally = Tally(max_examples=100)
    with KeyedComparer(tally, options, id_header, directory=directory, batch=7) as comparer:
        comparer.add(SOURCE, "t", source)
        comparer.add(TARGET, "t", target)
        comparer.compare("t")
    return tally.result("key")


def key_kinds(result):
    return sorted((d.kind, d.partition, d.source_offset, d.target_offset, d.field) for d in result.examples)


def workload(partitions: int, drop=None, extra=None, mutate=None, swap=None):
    """Ten keys x five events, partitioned by key over `partitions`; defects by (key, seq)."""
    per_partition: dict[int, list] = {}
    for seq in range(5):
        for k in range(10):
            key = f"key-{k}".encode()
            if drop == (k, seq):
                continue
            value = f"{k}:{seq}".encode()
            headers = (("h", b"mutated" if mutate == (k, seq) else b"1"),)
            part = k % partitions
            per_partition.setdefault(part, []).append((key, value, headers, 1000 + seq))
            if extra == (k, seq):
                per_partition[part].append((key, b"extra", headers, 1000 + seq))
    out = []
    for part, rows in per_partition.items():
        if swap is not None:
            key = f"key-{swap[0]}".encode()
            idx = [i for i, r in enumerate(rows) if r[0] == key]
            if idx:
                a, b = idx[swap[1]], idx[swap[1] + 1]
                rows[a], rows[b] = rows[b], rows[a]
        for offset, (key, value, headers, ts) in enumerate(rows):
            out.append(Record("t", part, offset, key, value, headers, ts))
    return out


def test_key_mode_clean_across_different_partition_counts():
    result = keyed(workload(3), workload(5))
    assert result.parity and result.records_compared == 50


def test_key_mode_finds_each_kind_and_nothing_else(tmp_path):
    source = workload(3)
    target = workload(5, drop=(1, 2), extra=(2, 3), mutate=(3, 1), swap=(4, 0))
    result = keyed(source, target, directory=str(tmp_path))
    assert result.counts == {"missing": 1, "extra": 1, "mutated": 1, "reordered": 2}
    by_kind = {d.kind: d for d in result.examples}
    src = {(r.key, r.value): r for r in source}
    assert by_kind["missing"].source_offset == src[(b"key-1", b"1:2")].offset
    assert by_kind["mutated"].field == "headers"
    assert by_kind["mutated"].source_offset == src[(b"key-3", b"3:1")].offset
    assert by_kind["extra"].source_offset is None and by_kind["extra"].key == b"key-2"
    assert {d.key for d in result.examples if d.kind == "reordered"} == {b"key-4"}
    assert list(tmp_path.iterdir()) == []  # the spill file is removed


def test_key_mode_by_id_header_and_null_keys_as_multiset():
    source = [Record("t", 0, i, None, f"v{i}".encode(), (("event-id", f"e{i}".encode()),), 1) for i in range(20)]
    target = [Record("t", i % 2, i, None, f"v{i}".encode(), (("event-id", f"e{i}".encode()),), 1)
              for i in reversed(range(20))]
    assert keyed(source, target, id_header="event-id").parity
    assert keyed(source, target).parity  # null keys: no order binds them
    target[0] = Record("t", 1, 19, None, b"changed", (("event-id", b"e19"),), 1)
    result = keyed(source, target, id_header="event-id")
    assert key_kinds(result) == [("mutated", 0, 19, 19, "value")]


def _reference_encode(key, value, headers, timestamp, options):
    """The canonical encoding as first specified: every field length-prefixed, null = -1."""
    import struct

    def field(data):
        return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data

    kept = [(n, v) for n, v in headers if options.keep_header(n)]
    out = field(key) + field(value) + struct.pack(">i", len(kept))
    for name, v in kept:
        out += field(name.encode()) + field(v)
    return out + struct.pack(">q", timestamp if options.include_timestamp else 0)


@pytest.mark.parametrize("options", [DigestOptions(), make_options(True, "none"), make_options(False, "a,b")])
def test_fast_encoding_equals_the_canonical_encoding(options):
    from migrate.validators.digest import encode

    cases = [(None, None, [], 0), (b"", b"", [], -1), (b"k", b"v", [("a", None), ("a", b""), ("b", b"x")], 5),
             (b"\x00" * 300, None, (("h\u00e9", b"1"),), 2**62), (None, b"v", iter([("b", b"2")]), 7)]
    for key, value, headers, ts in cases:
        headers = list(headers)
        assert encode(key, value, headers, ts, options) == _reference_encode(key, value, headers, ts, options)
        assert encode(key, value, tuple(headers), ts, options) == _reference_encode(key, value, headers, ts, options)


def _result_with_examples():
    from migrate.validators.divergence import Divergence

    tally = Tally(max_examples=2)
    tally.topic("orders", "orders.v2", 0)
    tally.compared("orders", 10)
    for offset in (3, 4, 5):
        tally.add(Divergence("mutated", "orders", 0, offset, offset, b"<script>x</script>", "value", "value differs"))
    tally.add(Divergence("extra", "orders", 0, None, 11, None, None, "foreign"))
    tally.topic("clean", None, 0)
    tally.compared("clean", 5)
    return tally.result("map", run_id=3, started_at="2026-11-27T04:00:00.000Z", range_from="beginning",
                        range_to="2026-11-27T04:00:00.000Z", duration_s=1.5)


def test_html_report_is_self_contained_escaped_and_charts_the_history():
    from migrate.validators.report_html import render_html

    result = _result_with_examples()
    assert result.counts["mutated"] == 3 and len([d for d in result.examples if d.kind == "mutated"]) == 2
    runs = [{"id": i, "started_at": f"2026-11-2{i}T00:00:00Z", "records_compared": 10 * i, "divergences": i % 2}
            for i in (1, 2)]
    page = render_html(result, runs)
    assert page.startswith("<!DOCTYPE html>") and "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert page.count("<circle") == 3  # two earlier runs and this one
    assert "4 DIVERGENT RECORDS" in page and "orders.v2" in page


def test_junit_report_fails_only_divergent_topics():
    from xml.etree import ElementTree as ET

    from migrate.validators.report_junit import render_junit

    suites = ET.fromstring(render_junit(_result_with_examples()).split("\n", 1)[1])
    cases = {c.get("name"): c for c in suites.iter("testcase")}
    assert suites.get("tests") == "2" and suites.get("failures") == "1"
    assert cases["clean"].find("failure") is None
    failure = cases["orders"].find("failure")
    assert failure.get("message") == "4 divergent records in 10 compared: 1 extra, 3 mutated"
    assert "source_offset=3" in failure.text and "target_offset=11" in failure.text


def test_time_arguments_are_durations_before_now_or_iso_times():
    from migrate.errors import UsageError
    from migrate.validation import iso_ms, parse_time

    now = 1_800_000_000.0
    assert parse_time("24h", now) == (now - 86400) * 1000
    assert parse_time("90s", now) == (now - 90) * 1000 and parse_time("2d", now) == (now - 172800) * 1000
    assert parse_time("2026-11-20T00:00:00Z") == parse_time("2026-11-20T00:00:00+00:00") == 1_795_132_800_000
    assert parse_time("2026-11-20T00:00:00") == 1_795_132_800_000  # no zone: UTC
    assert iso_ms(1_795_132_800_000) == "2026-11-20T00:00:00.000Z"
    with pytest.raises(UsageError):
        parse_time("yesterday")


def test_fast_encoding_equals_the_canonical_encoding_on_random_records():
    import random

    from migrate.validators.digest import encode

    rng = random.Random(7)

    def field():
        return None if rng.random() < 0.2 else bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4095, 4096, 5000])))

    for _ in range(300):
        headers = [(rng.choice(["a", "b", "\u00e9", "x" * rng.randrange(1, 40)]), field()) for _ in range(rng.randrange(4))]
        key, value, ts = field(), field(), rng.randrange(-2**63, 2**63)
        for options in (DigestOptions(), make_options(True, "none"), make_options(False, "a,\u00e9")):
            assert encode(key, value, headers, ts, options) == _reference_encode(key, value, headers, ts, options)
            assert encode(key, value, iter(headers), ts, options) == _reference_encode(key, value, headers, ts, options)


def test_a_record_moved_far_shows_as_mutated_where_it_left_and_landed_and_reordered_between():
    source = [rec(i) for i in range(100)]
    order = list(range(100))
    order.remove(10)
    order.insert(30, 10)  # moved 20 positions: beyond the reorder context
    target = [Record("t", 0, j, source[i].key, source[i].value, source[i].headers, source[i].timestamp)
              for j, i in enumerate(order)]
    result, _ = validate(source, target, identity_map(100))
    assert [k[:3] for k in kinds(result) if k[0] == "mutated"] == [("mutated", 10, 10), ("mutated", 30, 30)]
    assert sorted(k[1] for k in kinds(result) if k[0] == "reordered") == list(range(11, 30))


def test_sampling_is_deterministic_and_near_the_rate():
    from migrate.config import ClusterProfile
    from migrate.validation import ValidateSpec
    from migrate.validation.filters import _include, _key_include

    profile = ClusterProfile("x", {"bootstrap.servers": "127.0.0.1:1"})
    spec = ValidateSpec(profile, profile, "a", "b", sample=0.25, since_ms=100)
    include = _include(spec, partition=3)
    picked = [o for o in range(20_000) if include(o, 200)]
    assert 4_500 < len(picked) < 5_500 and picked == [o for o in range(20_000) if include(o, 200)]
    assert not include(picked[0], 99)  # the time range applies before the sample
    by_key = _key_include(spec)
    chosen = {k for k in range(2_000) if by_key(rec(k, key=f"key-{k}".encode(), ts=1_000))}
    assert 400 < len(chosen) < 600
    assert all(by_key(rec(k + 1, key=f"key-{k}".encode(), ts=1_000)) for k in chosen)  # whole identities
