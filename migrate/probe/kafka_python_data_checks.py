"""Data-path checks with kafka-python: produce and fetch fidelity, a NUL byte in a header
name, compression codecs, ListOffsets, the idempotent producer, transactions.  The same
questions as `data_checks`, asked through the other client.
"""

from __future__ import annotations

import time
from dataclasses import replace

from migrate import kafka
from migrate.probe import data_checks
from migrate.probe.context import ProbeContext, Rec, Stopwatch, fetch_end, produce, result, verdict
from migrate.probe.kafka_python_client import make_consumer, read, settings, status_of
from migrate.probe.model import KAFKA_PYTHON, PASS, CheckResult


def _summary(records: list) -> list[tuple]:
    return [(r.key, r.value, tuple((h[0], h[1]) for h in (r.headers or ())), (r.timestamp_type + 1, r.timestamp))
            for r in records]


def fidelity(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import KafkaProducer

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-fidelity")
    # kafka-python cannot send a null header value (it demands bytes): that header is left out.
    records = [replace(r, headers=tuple(h for h in r.headers if h[1] is not None) if r.headers else r.headers)
               for r in data_checks.fidelity_records(int(time.time() * 1000) - 3_600_000)]
    producer = KafkaProducer(**settings(ctx.profile, "producer"), linger_ms=5)
    try:
        for rec in records:
            producer.send(topic, value=rec.value, key=rec.key, partition=0,
                          headers=list(rec.headers) if rec.headers else None, timestamp_ms=rec.timestamp)
        producer.flush(15)
    finally:
        producer.close(5)
    got = _summary(read(ctx, topic))
    want = data_checks.expected_summary(records)
    return [verdict("produce-fetch-fidelity", KAFKA_PYTHON, got == want,
                    f"{len(want)} records back identical (written and read with kafka-python; "
                    "no null header value, which kafka-python cannot send)",
                    data_checks._difference(want, got), watch)]


NUL_HEADER = ("trace\x00id", b"span\x00value")


def header_name_nul(ctx: ProbeContext) -> list[CheckResult]:
    """A header name holding a NUL byte, written with kafka-python and read back with both clients.

    The platform may keep it; librdkafka (confluent-kafka, and so the mirror and the
    validators) returns such a name cut at the NUL, so neither can carry or notice it.
    """
    from kafka import KafkaProducer

    from migrate.probe.context import read as read_confluent

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-header-nul")
    producer = KafkaProducer(**settings(ctx.profile, "producer"), linger_ms=5)
    try:
        producer.send(topic, value=b"v", key=b"k", partition=0, headers=[NUL_HEADER])
        producer.flush(15)
    finally:
        producer.close(5)
    expected = f"header {NUL_HEADER[0]!r}: {NUL_HEADER[1]!r} read back byte-identical (kafka-python)"
    kept = [tuple(h) for r in read(ctx, topic) for h in (r.headers or ())]
    seen = [tuple(h) for m in read_confluent(ctx.profile, topic) for h in (m.headers() or ())]
    # The platform is judged by kafka-python; what librdkafka makes of it is a client limit,
    # stated in the evidence (every platform shows it), not a platform failure.
    note = ("" if seen == [NUL_HEADER] else
            f"; confluent-kafka (librdkafka) reads {seen!r}: it cuts header names at a NUL byte, so the mirror "
            "cannot copy such a name and the validators cannot see the difference (migrate assess flags topics "
            "that carry them)")
    return [verdict("header-name-nul", KAFKA_PYTHON, kept == [NUL_HEADER], expected,
                    f"kafka-python read {kept!r}{note}", watch)]


def compression(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import KafkaProducer

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-codecs", partitions=len(data_checks.CODECS))
    base_ts = int(time.time() * 1000) - 3_600_000
    out = []
    for partition, codec in enumerate(data_checks.CODECS):
        name = f"compression-{codec}"
        values = [f"{codec}-{i}-".encode() * 20 for i in range(50)]
        try:
            producer = KafkaProducer(**settings(ctx.profile, "producer"), linger_ms=20, compression_type=codec)
            try:
                for i, value in enumerate(values):
                    producer.send(topic, value=value, key=f"k{i}".encode(), partition=partition, timestamp_ms=base_ts + i)
                producer.flush(15)
            finally:
                producer.close(5)
            got = [r.value for r in read(ctx, topic, partition)]
        except Exception as exc:
            status, text = status_of(exc)
            out.append(result(name, KAFKA_PYTHON, status, f"50 {codec} records back identical", text, watch))
            continue
        out.append(verdict(name, KAFKA_PYTHON, got == values, f"50 {codec}-compressed records back identical",
                           f"{len(got)} records read" + ("" if got == values else ", values differ"), watch))
    return out


def list_offsets(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import TopicPartition

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-list-offsets")
    base_ts = int(time.time() * 1000) - 3_600_000
    producer = kafka.producer(ctx.profile, **{"enable.idempotence": False, "linger.ms": 50})
    stamps = iter(range(base_ts, base_ts + 9_000, 1000))
    for size in (5, 1, 3):
        produce(ctx.profile, topic, [Rec(b"v", None, None, next(stamps)) for _ in range(size)], producer=producer)
    watch.lap()
    tp = TopicPartition(topic, 0)
    consumer = make_consumer(ctx)
    out = []
    try:
        for name, call, want, expected in (
            ("list-offsets-earliest", lambda: consumer.beginning_offsets([tp])[tp], 0, "beginning_offsets = 0"),
            ("list-offsets-latest", lambda: consumer.end_offsets([tp])[tp], 9,
             "end_offsets = 9 after batches of 5, 1, 3 records"),
        ):
            try:
                got = call()
                out.append(verdict(name, KAFKA_PYTHON, got == want, expected, str(got), watch))
            except Exception as exc:
                status, text = status_of(exc)
                out.append(result(name, KAFKA_PYTHON, status, expected, text, watch))
        lookups = [(base_ts + 1500, 2), (base_ts - 1, 0), (base_ts + 8000, 8), (base_ts + 60_000, None)]
        expected = "offsets_for_times: " + ", ".join(f"T=base{t - base_ts:+d}ms -> {w}" for t, w in lookups)
        try:
            answers = []
            for when, _ in lookups:
                found = consumer.offsets_for_times({tp: when})[tp]
                answers.append(found.offset if found is not None else None)
            ok = answers == [w for _, w in lookups]
            observed = ", ".join(f"T=base{t - base_ts:+d}ms -> {a}" for (t, _), a in zip(lookups, answers))
            out.append(verdict("list-offsets-by-timestamp", KAFKA_PYTHON, ok, expected, observed, watch))
        except Exception as exc:
            status, text = status_of(exc)
            out.append(result("list-offsets-by-timestamp", KAFKA_PYTHON, status, expected, text, watch))
    finally:
        consumer.close()
    return out


def transactions(ctx: ProbeContext) -> list[CheckResult]:
    """Write the transaction pattern with kafka-python, then read it back with kafka-python."""
    from kafka import KafkaProducer, TopicPartition

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-transactions")
    out = []
    try:
        producer = KafkaProducer(**settings(ctx.profile, "producer"), transactional_id=ctx.scratch_name("kp-txn"),
                                 linger_ms=5)
        try:
            producer.init_transactions()
            for values, commit in (((b"c1", b"c2"), True), ((b"a1", b"a2"), False), ((b"c3",), True)):
                producer.begin_transaction()
                for value in values:
                    producer.send(topic, value=value, partition=0)
                producer.flush(15)
                producer.commit_transaction() if commit else producer.abort_transaction()
        finally:
            producer.close(5)
        out.append(result("transactions", KAFKA_PYTHON, PASS, f"{data_checks.TXN_PATTERN} succeeds",
                          "init, commit, abort, commit succeeded", watch))
    except Exception as exc:
        status, text = status_of(exc)
        out.append(result("transactions", KAFKA_PYTHON, status, f"{data_checks.TXN_PATTERN} succeeds", text, watch))
        topic = ctx.scratch_topic("kp-transactions-ck")
        data_checks.write_transactions(ctx, topic)  # read the pattern written by the other client instead
    committed = [r.value.decode() for r in read(ctx, topic, isolation="read_committed")]
    uncommitted = [(r.value.decode(), r.offset) for r in read(ctx, topic, isolation="read_uncommitted")]
    out.append(verdict("read-committed-hides-aborted", KAFKA_PYTHON, committed == ["c1", "c2", "c3"],
                       "read_committed reads c1, c2, c3 (aborted a1, a2 hidden)", ", ".join(committed) or "nothing", watch))
    out.append(verdict("read-uncommitted", KAFKA_PYTHON,
                       uncommitted == [("c1", 0), ("c2", 1), ("a1", 3), ("a2", 4), ("c3", 6)],
                       "read_uncommitted reads c1@0 c2@1 a1@3 a2@4 c3@6",
                       " ".join(f"{v}@{o}" for v, o in uncommitted) or "nothing", watch))
    end = fetch_end(ctx.profile, topic)
    out.append(verdict("transaction-markers-take-offsets", KAFKA_PYTHON,
                       [o for _, o in uncommitted] == [0, 1, 3, 4, 6] and end == 8,
                       "records at offsets 0,1,3,4,6 (markers at 2,5,7), end 8",
                       f"offsets {','.join(str(o) for _, o in uncommitted)}, end {end} (Fetch)", watch))
    tp = TopicPartition(topic, 0)
    ends = []
    for isolation in ("read_uncommitted", "read_committed"):
        consumer = make_consumer(ctx, isolation_level=isolation)
        try:
            ends.append(consumer.end_offsets([tp])[tp])
        except Exception as exc:
            status, text = status_of(exc)
            out.append(result("list-offsets-latest-after-transactions", KAFKA_PYTHON, status,
                              "end_offsets = 8 (read_uncommitted and read_committed)", text, watch))
            return out
        finally:
            consumer.close()
    out.append(verdict("list-offsets-latest-after-transactions", KAFKA_PYTHON, ends == [8, 8],
                       "end_offsets = 8 (read_uncommitted and read_committed)",
                       f"read_uncommitted {ends[0]}, read_committed {ends[1]}", watch))
    return out


def idempotent_producer(ctx: ProbeContext) -> list[CheckResult]:
    from kafka import KafkaProducer

    watch = Stopwatch()
    topic = ctx.scratch_topic("kp-idempotent")
    expected = "idempotent producer writes 200 records in order, no duplicates, offsets 0..199"
    try:
        producer = KafkaProducer(**settings(ctx.profile, "producer"), enable_idempotence=True, acks="all", linger_ms=5)
        try:
            futures = [producer.send(topic, value=str(i).encode(), partition=0) for i in range(200)]
            producer.flush(15)
            offsets = [f.get(timeout=15).offset for f in futures]
        finally:
            producer.close(5)
        values = [r.value for r in read(ctx, topic)]
    except Exception as exc:
        status, text = status_of(exc)
        return [result("idempotent-producer", KAFKA_PYTHON, status, expected, text, watch)]
    ok = values == [str(i).encode() for i in range(200)] and offsets == list(range(200))
    return [verdict("idempotent-producer", KAFKA_PYTHON, ok, expected,
                    f"{len(values)} records read, offsets {min(offsets, default=-1)}..{max(offsets, default=-1)}", watch)]
