"""Checks of the data plane with confluent-kafka: records, codecs, offsets, transactions.

Each function writes a small known pattern into a fresh scratch topic and compares what
the platform answers with what Kafka's semantics require.  Ends of partitions used as
evidence are read from Fetch responses, so a wrong ListOffsets cannot hide itself.
"""

from __future__ import annotations

import time
from typing import cast

from confluent_kafka import IsolationLevel, KafkaError, TopicPartition
from confluent_kafka.admin import OffsetSpec

from migrate import kafka
from migrate.probe.context import (ProbeContext, Rec, Stopwatch, classify, describe_records, fetch_end,
                                   produce, read, result, short, verdict)
from migrate.probe.model import CONFLUENT, PASS, CheckResult

CODECS = ("gzip", "snappy", "lz4", "zstd")
# Explicit CreateTime values an hour in the past: a platform that answers timestamp lookups
# with its own write times (rather than the records' timestamps) cannot pass by chance.
_HOUR_MS = 3_600_000
# Kafka answers OFFSET_OUT_OF_RANGE at once; a platform that waits silently is found by waiting this long.
OUT_OF_RANGE_WAIT_S = 3.0


def fidelity_records(base_ts: int) -> list[Rec]:
    binary = bytes(range(256))
    return [
        Rec(b"value-1", b"key-1", (("dup", b"1"), ("dup", b"2"), ("bin", b"\x00\xff\x10"), ("nul", None)), base_ts),
        Rec(binary, b"\x00binary-key\xff", (("h", b""),), base_ts + 1),
        Rec(None, b"tombstone-key", None, base_ts + 2),
        Rec(b"", None, (("only", b"header"),), base_ts + 3),
        Rec(b"value-5", b"key-5", None, base_ts + 1000),
    ]


def expected_summary(records: list[Rec]) -> list[tuple]:
    return [(r.key, r.value, tuple(r.headers or ()), (1, r.timestamp)) for r in records]


def produce_fetch_fidelity(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("fidelity")
    records = fidelity_records(int(time.time() * 1000) - _HOUR_MS)
    produce(ctx.profile, topic, records)
    got = describe_records(read(ctx.profile, topic))
    want = expected_summary(records)
    expected = (f"{len(want)} records back identical: keys, binary values, null value, empty value, "
                "duplicate/binary/null headers in order, explicit CreateTime")
    return [verdict("produce-fetch-fidelity", CONFLUENT, got == want, expected, _difference(want, got), watch)]


def _difference(want: list[tuple], got: list[tuple]) -> str:
    if want == got:
        return f"{len(got)} records identical"
    if len(want) != len(got):
        return f"{len(got)} records read, {len(want)} written"
    for index, (w, g) in enumerate(zip(want, got)):
        if w != g:
            return f"record {index} differs: wrote {short(w, 120)}, read {short(g, 120)}"
    return "records differ"


def compression(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("codecs", partitions=len(CODECS))
    out = []
    base_ts = int(time.time() * 1000) - _HOUR_MS
    for partition, codec in enumerate(CODECS):
        name = f"compression-{codec}"
        records = [Rec(f"{codec}-{i}-".encode() * 20, f"k{i}".encode(), (("c", codec.encode()),), base_ts + i, partition)
                   for i in range(50)]
        try:
            # mypy matches the **dict against timeout=; its dotted keys are librdkafka settings only
            produce(ctx.profile, topic, records,
                    **{"compression.type": codec, "linger.ms": 20})  # type: ignore[arg-type]
            got = describe_records(read(ctx.profile, topic, partition))
        except Exception as exc:  # a refused codec is the finding
            status, text = classify(exc)
            out.append(result(name, CONFLUENT, status, f"50 {codec} records back identical", text, watch))
            continue
        want = [(r.key, r.value, tuple(r.headers or ()), (1, r.timestamp)) for r in records]
        out.append(verdict(name, CONFLUENT, got == want, f"50 {codec}-compressed records back identical",
                           _difference(want, got), watch))
    return out


# --- ListOffsets ---------------------------------------------------------------------------------


def _list_offsets(ctx: ProbeContext, topic: str, spec: OffsetSpec, partition: int = 0,
                  isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED) -> int:
    tp = TopicPartition(topic, partition)
    client = kafka.admin(ctx.profile)  # must outlive the future, or the request is dropped
    futures = client.list_offsets({tp: spec}, isolation_level=isolation, request_timeout=10)
    return futures[tp].result(timeout=15).offset


def list_offsets(ctx: ProbeContext) -> list[CheckResult]:
    """Batches of 5, 1 and 3 records: LATEST must be 9, not the last batch's base + 1."""
    watch = Stopwatch()
    topic = ctx.scratch_topic("list-offsets")
    base_ts = int(time.time() * 1000) - _HOUR_MS
    producer = kafka.producer(ctx.profile, **{"enable.idempotence": False, "linger.ms": 50})
    ts = iter(range(base_ts, base_ts + 9_000, 1000))
    for size in (5, 1, 3):  # one flush per batch makes each size its own record batch
        produce(ctx.profile, topic, [Rec(b"v", None, None, next(ts)) for _ in range(size)], producer=producer)
    fetched = fetch_end(ctx.profile, topic)
    setup = watch.lap()
    out = []
    out.append(_offset_result(ctx, "list-offsets-earliest", topic, OffsetSpec.earliest(), 0,
                              "EARLIEST = 0 on a fresh topic", watch))
    out.append(_offset_result(ctx, "list-offsets-latest", topic, OffsetSpec.latest(), 9,
                              f"LATEST = 9 after batches of 5, 1, 3 records (Fetch high watermark: {fetched})", watch))
    # Timestamps are base, base+1s, ..., base+8s, one per record, all an hour old.
    lookups = [(base_ts + 1500, 2), (base_ts - 1, 0), (base_ts + 8000, 8), (base_ts + 60_000, -1)]
    answers = []
    try:
        for when, want in lookups:
            answers.append((when - base_ts, want, _list_offsets(ctx, topic, OffsetSpec.for_timestamp(when))))
    except Exception as exc:
        status, text = classify(exc)
        out.append(result("list-offsets-by-timestamp", CONFLUENT, status, "offsets_for_times finds records", text, watch))
        return out
    ok = all(got == want for _, want, got in answers)
    expected = "first record at/after T: " + ", ".join(f"T=base{d:+d}ms -> {w}" for d, w, _ in answers)
    observed = ", ".join(f"T=base{d:+d}ms -> {g}" for d, _, g in answers)
    out.append(verdict("list-offsets-by-timestamp", CONFLUENT, ok, expected, observed, watch))
    out[0] = out[0].with_duration(out[0].duration_s + setup)
    return out


def _offset_result(ctx: ProbeContext, name: str, topic: str, spec: OffsetSpec, want: int, expected: str,
                   watch: Stopwatch, isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED) -> CheckResult:
    try:
        got = _list_offsets(ctx, topic, spec, isolation=isolation)
    except Exception as exc:
        status, text = classify(exc)
        return result(name, CONFLUENT, status, expected, text, watch)
    return verdict(name, CONFLUENT, got == want, expected, f"{got}", watch)


# --- idempotence and transactions -----------------------------------------------------------------


def idempotent_producer(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("idempotent")
    expected = "idempotent producer writes 200 records in order, no duplicates, offsets 0..199"
    try:
        # mypy matches the **dict against timeout=; its dotted keys are librdkafka settings only
        offsets = produce(ctx.profile, topic, [Rec(str(i).encode()) for i in range(200)],
                          **{"enable.idempotence": True, "acks": "all", "linger.ms": 5})  # type: ignore[arg-type]
        values = [m.value() for m in read(ctx.profile, topic)]
    except Exception as exc:
        status, text = classify(exc)
        return [result("idempotent-producer", CONFLUENT, status, expected, text, watch)]
    ok = values == [str(i).encode() for i in range(200)] and sorted(offsets) == list(range(200))
    observed = f"{len(values)} records read, offsets {min(offsets, default=-1)}..{max(offsets, default=-1)}"
    return [verdict("idempotent-producer", CONFLUENT, ok, expected, observed, watch)]


TXN_PATTERN = "commit c1,c2; abort a1,a2; commit c3"


def write_transactions(ctx: ProbeContext, topic: str) -> None:
    """c1, c2 committed; a1, a2 aborted; c3 committed: offsets 0,1 | marker 2 | 3,4 | 5 | 6 | 7."""
    producer = kafka.producer(ctx.profile, **{"transactional.id": ctx.scratch_name("txn"), "linger.ms": 5})
    producer.init_transactions(15)
    for values, commit in (((b"c1", b"c2"), True), ((b"a1", b"a2"), False), ((b"c3",), True)):
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, value=value, partition=0)
        producer.flush(15)
        if commit:
            producer.commit_transaction(15)
        else:
            producer.abort_transaction(15)


def transactions(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("transactions")
    try:
        write_transactions(ctx, topic)
    except Exception as exc:
        status, text = classify(exc)
        return [result("transactions", CONFLUENT, status, f"{TXN_PATTERN} succeeds", text, watch)]
    out = [result("transactions", CONFLUENT, PASS, f"{TXN_PATTERN} succeeds", "init, commit, abort, commit succeeded", watch)]
    committed = read(ctx.profile, topic, isolation="read_committed")
    uncommitted = read(ctx.profile, topic, isolation="read_uncommitted")
    end = fetch_end(ctx.profile, topic)
    # every record written above has a value
    seen_c = [cast(bytes, m.value()).decode() for m in committed]
    seen_u = [(cast(bytes, m.value()).decode(), m.offset()) for m in uncommitted]
    out.append(verdict("read-committed-hides-aborted", CONFLUENT, seen_c == ["c1", "c2", "c3"],
                       "read_committed reads c1, c2, c3 (aborted a1, a2 hidden)", ", ".join(seen_c) or "nothing", watch))
    want_u = [("c1", 0), ("c2", 1), ("a1", 3), ("a2", 4), ("c3", 6)]
    out.append(verdict("transaction-markers-take-offsets", CONFLUENT, [o for _, o in seen_u] == [0, 1, 3, 4, 6] and end == 8,
                       "records at offsets 0,1,3,4,6 (markers at 2,5,7), end 8",
                       f"offsets {','.join(str(o) for _, o in seen_u)}, end {end} (Fetch)", watch))
    out.append(verdict("read-uncommitted", CONFLUENT, seen_u == want_u,
                       "read_uncommitted reads c1@0 c2@1 a1@3 a2@4 c3@6",
                       " ".join(f"{v}@{o}" for v, o in seen_u) or "nothing", watch))
    latest = []
    for isolation in (IsolationLevel.READ_UNCOMMITTED, IsolationLevel.READ_COMMITTED):
        try:
            latest.append(_list_offsets(ctx, topic, OffsetSpec.latest(), isolation=isolation))
        except Exception as exc:
            status, text = classify(exc)
            out.append(result("list-offsets-latest-after-transactions", CONFLUENT, status,
                              "LATEST = 8 (read_uncommitted and read_committed)", text, watch))
            return out
    out.append(verdict("list-offsets-latest-after-transactions", CONFLUENT, latest == [8, 8],
                       "LATEST = 8 (read_uncommitted and read_committed)",
                       f"read_uncommitted {latest[0]}, read_committed {latest[1]} (Fetch end {end})", watch))
    return out


def offset_out_of_range(ctx: ProbeContext) -> list[CheckResult]:
    """Fetching past the end must answer OFFSET_OUT_OF_RANGE, so auto.offset.reset can act."""
    watch = Stopwatch()
    topic = ctx.scratch_topic("out-of-range")
    produce(ctx.profile, topic, [Rec(b"only")])
    client = kafka.consumer(ctx.profile, **{"auto.offset.reset": "error"})
    expected = "fetch at offset 1000 of a 1-record partition answers OFFSET_OUT_OF_RANGE"
    observed = f"no error within {OUT_OF_RANGE_WAIT_S:.0f}s: the fetch waited silently"
    ok = False
    try:
        client.assign([TopicPartition(topic, 0, 1000)])
        deadline = time.monotonic() + OUT_OF_RANGE_WAIT_S
        while time.monotonic() < deadline and not ok:
            message = client.poll(0.2)
            error = message.error() if message is not None else None
            if error is None:
                continue
            code = error.code()
            if code in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET):
                ok, observed = True, error.str()
            elif code != KafkaError._PARTITION_EOF:
                observed = error.str()
    finally:
        client.close()
    return [verdict("offset-out-of-range", CONFLUENT, ok, expected, observed, watch)]


def list_offsets_max_timestamp(ctx: ProbeContext) -> list[CheckResult]:
    """OffsetSpec.max_timestamp (KIP-734): the offset of the record with the largest timestamp."""
    watch = Stopwatch()
    topic = ctx.scratch_topic("max-timestamp")
    base_ts = int(time.time() * 1000) - _HOUR_MS
    stamps = (0, 1000, 9000, 2000, 3000)  # the largest is at offset 2, not at the end
    produce(ctx.profile, topic, [Rec(b"v", None, None, base_ts + d) for d in stamps])
    expected = "ListOffsets MAX_TIMESTAMP answers offset 2 (the record with the largest timestamp)"
    watch.lap()
    try:
        got = _list_offsets(ctx, topic, OffsetSpec.max_timestamp())
    except Exception as exc:
        status, text = classify(exc)
        return [result("list-offsets-max-timestamp", CONFLUENT, status, expected, text, watch)]
    observed = f"{got} (no offset)" if got < 0 else str(got)
    return [verdict("list-offsets-max-timestamp", CONFLUENT, got == 2, expected, observed, watch)]
