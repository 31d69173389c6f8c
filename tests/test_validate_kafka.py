"""Parity validation against real brokers: each divergence kind found exactly, clean mirrors clean.

Until (and besides) `migrate mirror`, these tests mirror with a small copier of their own that
reads the source (read_committed), writes the target and records the offset map exactly as
the mirror does (MapStore).  Its `plan` hook is how a test injects a defect: skip a record
(as a filtering mirror would), alter a header, swap two records, write a foreign record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from confluent_kafka import TopicPartition

from migrate import kafka
from migrate.offset_maps.runs import PartitionMap
from migrate.offset_maps.store import MapStore
from migrate.records import Record, from_message
from migrate.state import State
from migrate.validation import ValidateSpec, history, run_validation
from migrate.validators.digest import make_options
from support import unique

NOW = int(time.time() * 1000)  # noida-db applies retention to CreateTime: never date records in the past


@dataclass
class Write:
    """One record the copier writes to the target; `claims` is the source offset the map records for it."""

    record: Record
    claims: int | None


def make_topic(profile, name, partitions=1, configs=None):
    kafka.create_topic(profile, name, partitions, configs)
    kafka.wait_for_topic(profile, name, partitions)


def produce(profile, topic, rows, partition=0, transactional=None):
    """rows: (key, value, headers) or ("abort"/"commit", [rows]) for transactions."""
    producer = kafka.producer(profile, **({"transactional.id": transactional} if transactional else {}))
    if transactional:
        producer.init_transactions(30)
    errors = []

    def sent(err, _msg):
        if err is not None:
            errors.append(err)

    for i, row in enumerate(rows):
        if row[0] in ("commit", "abort"):
            producer.begin_transaction()
            for key, value, headers in row[1]:
                producer.produce(topic, value=value, key=key, partition=partition, headers=list(headers),
                                 timestamp=NOW + i, on_delivery=sent)
            producer.flush(30)
            producer.commit_transaction(30) if row[0] == "commit" else producer.abort_transaction(30)
        else:
            key, value, headers = row
            producer.produce(topic, value=value, key=key, partition=partition, headers=list(headers),
                             timestamp=NOW + i, on_delivery=sent)
    assert producer.flush(30) == 0 and not errors, errors


def rows(n, start=0, prefix="k"):
    return [(f"{prefix}{i % 7}".encode(), f"value-{i}".encode() * 3, (("trace", f"t{i}".encode()), ("n", None)))
            for i in range(start, start + n)]


def read_all(profile, topic, partition=0, isolation="read_committed"):
    ends = kafka.partition_ends(profile, [(topic, partition)], isolation=isolation)[(topic, partition)]
    client = kafka.consumer(profile, **{"isolation.level": isolation, "enable.partition.eof": True,
                                        "auto.offset.reset": "earliest"})
    out = []
    try:
        if ends.high <= ends.low:
            return out
        client.assign([TopicPartition(topic, partition, ends.low)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for m in client.consume(1000, timeout=0.5):
                if m.error() is None:
                    out.append(from_message(m))
                    if m.offset() + 1 >= ends.high:
                        return out
                elif m.offset() >= ends.high:
                    return out
        raise AssertionError(f"could not read {topic}[{partition}] to {ends.high}")
    finally:
        client.close()


def copy(source, target, state, topic, target_topic, mirror="default", plan=None, partition=0,
         pmap: PartitionMap | None = None, since_offset=0):
    """Mirror one partition like `migrate mirror` would (or, with `plan`, with a defect); returns the map."""
    records = [r for r in read_all(source, topic, partition) if r.offset >= since_offset]
    writes = [Write(r, r.offset) for r in records]
    if plan:
        writes = plan(writes)
    producer = kafka.producer(target)
    placed: list[tuple[int | None, int]] = []

    def delivered(claims):
        def cb(err, msg):
            assert err is None, err
            placed.append((claims, msg.offset()))
        return cb

    for w in writes:
        producer.produce(target_topic, value=w.record.value, key=w.record.key, partition=partition,
                         headers=list(w.record.headers), timestamp=w.record.timestamp, on_delivery=delivered(w.claims))
    assert producer.flush(30) == 0
    pmap = pmap or PartitionMap()
    for claims, target_offset in sorted(placed, key=lambda p: p[1]):
        if claims is not None:
            pmap.append(claims, target_offset)
    end = kafka.partition_ends(source, [(topic, partition)])[(topic, partition)].high
    tend = kafka.partition_ends(target, [(target_topic, partition)])[(target_topic, partition)].high
    if pmap.source_low is None:
        pmap.start_at(0, 0)
    pmap.advance(source_high=end, target_high=max(p[1] for p in placed) + 1 if placed else tend)
    MapStore(state, mirror).save(topic, partition, pmap, target_topic)
    return pmap


def spec(source, target, **kw):
    kw.setdefault("options", make_options())
    return ValidateSpec(source=source.profile, target=target.profile, source_spec=source.bootstrap,
                        target_spec=target.bootstrap, **kw)


def found(result):
    return sorted((d.kind, d.partition, d.source_offset, d.target_offset, d.field) for d in result.examples)


@pytest.fixture
def state(tmp_path):
    with State(tmp_path / "state.db") as s:
        yield s


@pytest.fixture
def mirrored(source_cluster, target_cluster, state):
    """A source topic of 120 records and its target topic, not yet copied."""
    topic = unique("val")
    make_topic(source_cluster.profile, topic)
    make_topic(target_cluster.profile, topic)
    produce(source_cluster.profile, topic, rows(120))
    return topic


def test_clean_mirror_validates_clean_and_is_recorded(source_cluster, target_cluster, state, mirrored):
    copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored)
    result = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,), window=50), state)
    assert result.mode == "map" and result.parity and result.records_compared == 120
    assert found(result) == []
    runs = history(state, scope="map:default")
    assert runs[0].id == result.run_id and runs[0].result == "parity" and runs[0].records_compared == 120


def test_skipped_record_is_missing_at_its_source_offset(source_cluster, target_cluster, state, mirrored):
    skip = lambda ws: [w for w in ws if w.claims != 37]  # a mirror with a filter
    copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored, plan=skip)
    result = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,)), state)
    assert found(result) == [("missing", 0, 37, None, None)]
    assert result.records_compared == 119


def test_altered_header_is_mutated_headers_at_exact_offsets(source_cluster, target_cluster, state, mirrored):
    def alter(ws):
        r = ws[64].record
        ws[64] = Write(Record(r.topic, r.partition, r.offset, r.key, r.value, (("trace", b"forged"), ("n", None)),
                              r.timestamp), 64)
        return ws

    copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored, plan=alter)
    result = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,), window=16), state)
    assert found(result) == [("mutated", 0, 64, 64, "headers")]
    # Leaving headers out of the comparison (platforms that legitimately differ) makes it parity.
    relaxed = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,),
                                  options=make_options(headers="none")), state)
    assert relaxed.parity


def test_swapped_records_are_reordered_at_both_offsets(source_cluster, target_cluster, state, mirrored):
    def swap(ws):
        a, b = ws[90], ws[91]
        return ws[:90] + [Write(b.record, 90), Write(a.record, 91)] + ws[92:]

    copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored, plan=swap)
    result = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,), window=32), state)
    assert found(result) == [("reordered", 0, 90, 91, None), ("reordered", 0, 91, 90, None)]


def test_records_produced_directly_to_the_target_are_extra(source_cluster, target_cluster, state, mirrored):
    def foreign_in_the_middle(ws):
        stranger = Record(mirrored, 0, -1, b"stranger", b"not from the source", (), NOW)
        return ws[:50] + [Write(stranger, None)] + ws[50:]

    copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored, plan=foreign_in_the_middle)
    # ... and one more written straight to the target after the mirror caught up.
    produce(target_cluster.profile, mirrored, [(b"late", b"duplicate or foreign", ())])
    result = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,)), state)
    assert found(result) == [("extra", 0, None, 50, None), ("extra", 0, None, 121, None)]
    assert result.records_compared == 120


def test_aborted_transactions_and_markers_validate_clean(cluster_pair, state):
    source, target = cluster_pair
    topic = unique("txn")
    make_topic(source.profile, topic)
    make_topic(target.profile, topic)
    produce(source.profile, topic, [("commit", rows(5)), ("abort", rows(3, 100)), ("commit", rows(4, 200)),
                                           ("commit", rows(3, 300))], transactional=unique("tx"))
    pmap = copy(source.profile, target.profile, state, topic, topic)
    assert len(pmap.runs) >= 2  # source markers are gaps in the map
    result = run_validation(spec(source, target, topics=(topic,)), state)
    assert result.parity, found(result)
    expected = 12 if source.platform == "noida" else 15  # Tansu shows aborted records to every reader
    assert result.records_compared == expected


def test_compacted_topic_with_tombstones_validates_clean(source_cluster, target_cluster, state):
    topic = unique("compact")
    configs = {"cleanup.policy": "compact"}
    make_topic(source_cluster.profile, topic, configs=configs)
    make_topic(target_cluster.profile, topic, configs=configs)
    data = [(f"wf-{i % 5}".encode(), None if i % 4 == 3 else f"state-{i}".encode(), ()) for i in range(40)]
    produce(source_cluster.profile, topic, data)
    copy(source_cluster.profile, target_cluster.profile, state, topic, topic)
    result = run_validation(spec(source_cluster, target_cluster, topics=(topic,)), state)
    assert result.parity and result.records_compared == 40


def test_incremental_runs_compare_only_new_records(source_cluster, target_cluster, state, mirrored):
    pmap = copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored)
    first = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,), incremental=True), state)
    assert first.records_compared == 120 and first.parity
    produce(source_cluster.profile, mirrored, rows(30, 1000))
    # Not yet mirrored: counted as unmirrored, not as divergence, and not consumed by the cursor.
    pending = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,), incremental=True), state)
    assert pending.parity and pending.records_compared == 0 and pending.info["unmirrored"] == 30
    copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored, pmap=pmap, since_offset=120)
    second = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,), incremental=True), state)
    assert second.parity and second.records_compared == 30
    third = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,), incremental=True), state)
    assert third.records_compared == 0


def test_since_until_filter_by_record_timestamp(source_cluster, target_cluster, state, mirrored):
    def alter(ws):
        for i in (10, 100):
            r = ws[i].record
            ws[i] = Write(Record(r.topic, 0, r.offset, r.key, b"changed", r.headers, r.timestamp), i)
        return ws

    copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored, plan=alter)
    result = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,), since_ms=NOW + 50,
                                 until_ms=NOW + 110), state)
    assert found(result) == [("mutated", 0, 100, 100, "value")] and result.records_compared == 60


def test_unmirrored_source_tail_is_info_not_divergence(source_cluster, target_cluster, state, mirrored):
    copy(source_cluster.profile, target_cluster.profile, state, mirrored, mirrored)
    produce(source_cluster.profile, mirrored, rows(10, 500))
    result = run_validation(spec(source_cluster, target_cluster, topics=(mirrored,)), state)
    assert result.parity and result.info["unmirrored"] == 10


# --- key mode ----------------------------------------------------------------------------------------


def dual_write(profile, topic, partitions, defects=False):
    """Ten workflows x six events keyed by workflow, partitioned by key over `partitions`."""
    make_topic(profile, topic, partitions)
    per_partition: dict[int, list] = {}
    for seq in range(6):
        for wf in range(10):
            key = f"wf-{wf}".encode()
            value = f"{wf}:{seq}".encode()
            headers = [("event-id", f"{wf}-{seq}".encode())]
            if defects and (wf, seq) == (1, 2):
                continue  # missing
            if defects and (wf, seq) == (3, 1):
                headers = [("event-id", f"{wf}-{seq}".encode()), ("extra-header", b"x")]  # mutated
            per_partition.setdefault(wf % partitions, []).append((key, value, tuple(headers)))
            if defects and (wf, seq) == (2, 4):
                per_partition[wf % partitions].append((key, value + b"-again", tuple(headers)))  # extra
    if defects:  # reorder wf-4's first two events
        part = per_partition[4 % partitions]
        idx = [i for i, r in enumerate(part) if r[0] == b"wf-4"][:2]
        part[idx[0]], part[idx[1]] = part[idx[1]], part[idx[0]]
    for partition, data in per_partition.items():
        produce(profile, topic, data, partition=partition)


def test_key_mode_finds_the_same_defects_between_independently_written_clusters(source_cluster, target_cluster,
                                                                                state):
    topic = unique("dual")
    dual_write(source_cluster.profile, topic, 3)
    dual_write(target_cluster.profile, topic, 5, defects=True)
    result = run_validation(spec(source_cluster, target_cluster, topics=(topic,), match="key",
                                 options=make_options(ignore_timestamp=True)), state)
    assert result.mode == "key" and result.records_compared == 60
    assert result.counts == {"missing": 1, "extra": 1, "mutated": 1, "reordered": 2}
    by_kind = {d.kind: d for d in result.examples}
    assert by_kind["missing"].key == b"wf-1" and by_kind["missing"].target_offset is None
    assert by_kind["extra"].key == b"wf-2" and by_kind["extra"].source_offset is None
    assert by_kind["mutated"].key == b"wf-3" and by_kind["mutated"].field == "headers"
    assert {d.key for d in result.examples if d.kind == "reordered"} == {b"wf-4"}
    clean_topic = unique("dual")
    dual_write(source_cluster.profile, clean_topic, 3)
    dual_write(target_cluster.profile, clean_topic, 5)
    clean = run_validation(spec(source_cluster, target_cluster, topics=(clean_topic,), match="key",
                                id_header="event-id", options=make_options(ignore_timestamp=True)), state)
    assert clean.parity and clean.records_compared == 60


@pytest.mark.parametrize("processes_from", [0, 10**9], ids=["worker-processes", "worker-threads"])
def test_parallel_workers_find_the_same_defects_in_every_partition(source_cluster, target_cluster, state,
                                                                   processes_from):
    topic = unique("par")
    make_topic(source_cluster.profile, topic, 3)
    make_topic(target_cluster.profile, topic, 3)
    for p in range(3):
        produce(source_cluster.profile, topic, rows(50, p * 100), partition=p)

    def alter(ws):
        r = ws[7].record
        ws[7] = Write(Record(r.topic, r.partition, r.offset, r.key, b"changed", r.headers, r.timestamp), 7)
        return ws

    for p in range(3):
        copy(source_cluster.profile, target_cluster.profile, state, topic, topic, partition=p,
             plan=alter if p else None)
    result = run_validation(spec(source_cluster, target_cluster, topics=(topic,), parallel=3,
                                 processes_from=processes_from), state)
    assert found(result) == [("mutated", 1, 7, 7, "value"), ("mutated", 2, 7, 7, "value")]
    assert result.records_compared == 150 and result.topics[0].partitions == 3


def test_key_mode_incremental_compares_only_records_written_since(source_cluster, target_cluster, state):
    topic = unique("dualinc")
    dual_write(source_cluster.profile, topic, 3)
    dual_write(target_cluster.profile, topic, 5)
    key_spec = dict(topics=(topic,), match="key", incremental=True, options=make_options(ignore_timestamp=True))
    first = run_validation(spec(source_cluster, target_cluster, **key_spec), state)
    assert first.parity and first.records_compared == 60
    produce(source_cluster.profile, topic, [(b"wf-new", b"a", ()), (b"wf-new", b"b", ())], partition=1)
    produce(target_cluster.profile, topic, [(b"wf-new", b"a", ())], partition=4)
    second = run_validation(spec(source_cluster, target_cluster, **key_spec), state)
    assert second.records_compared == 2
    # partition 1 held wf-1, wf-4, wf-7 x 6 events (offsets 0..17): "b" went to 19
    assert [(d.kind, d.key, d.source_offset) for d in second.examples] == [("missing", b"wf-new", 19)]


@pytest.mark.parametrize("lo, hi", [(0, 50), (3, 17), (10, 20), (0, 10), (40, None), (45, 80)])
def test_a_partition_read_yields_exactly_its_range_wherever_the_batches_end(any_cluster, lo, hi):
    # Batches of 10: the range ends inside a batch, on a batch's last record, at the partition's
    # end, or past it (the read then stops at end-of-partition with what there is).
    from migrate.validation.reading import read_partition

    topic = unique("range")
    make_topic(any_cluster.profile, topic)
    produce(any_cluster.profile, topic, rows(50))
    client = kafka.consumer(any_cluster.profile, **{"enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        offsets = [m.offset() for m in read_partition(client, any_cluster.profile, topic, 0, lo, hi, batch=10)]
    finally:
        client.close()
    assert offsets == list(range(lo, min(50, 50 if hi is None else hi)))
