"""Figures, not verdicts: produce latency, end-to-end latency and short throughput runs.

Each measurement is bounded in count and time (about two seconds) so that the probe stays
quick; it reports "pass" with its figures, and "fail" only when nothing could be measured.
The settings used are part of the evidence: the same platform gives other figures with
other settings (notably `fetch.wait.max.ms` on platforms that do not wake a waiting fetch).
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, TopicPartition

from migrate import kafka
from migrate.probe.context import ProbeContext, Stopwatch, result, verdict
from migrate.probe.model import CONFLUENT, FAIL, CheckResult

LATENCY_SAMPLES = 200
LATENCY_BUDGET_S = 1.5
THROUGHPUT_RECORDS = 150_000
THROUGHPUT_BUDGET_S = 1.0
RECORD_BYTES = 200


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _figures(samples: list[float]) -> str:
    return (f"p50 {percentile(samples, 0.5) * 1000:.2f} ms, p99 {percentile(samples, 0.99) * 1000:.2f} ms "
            f"over {len(samples)} records")


def produce_latency(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("latency")
    producer = kafka.producer(ctx.profile, **{"linger.ms": 0, "acks": "all", "enable.idempotence": False})
    producer.produce(topic, b"warm-up", partition=0)
    producer.flush(10)
    samples: list[float] = []
    failed: list[str] = []
    watch.lap()
    stop = time.monotonic() + LATENCY_BUDGET_S
    while len(samples) < LATENCY_SAMPLES and time.monotonic() < stop:
        started = time.perf_counter()
        producer.produce(topic, b"x" * RECORD_BYTES, partition=0,
                         on_delivery=lambda err, _m: failed.append(err.str()) if err else None)
        producer.flush(10)
        samples.append(time.perf_counter() - started)
    expected = "figures: time from produce() to acknowledgement, one record at a time (acks=all, linger.ms=0)"
    if not samples or failed:
        return [result("produce-latency", CONFLUENT, FAIL, expected, failed[0] if failed else "no samples", watch)]
    return [result("produce-latency", CONFLUENT, "pass", expected, _figures(samples), watch)]


def end_to_end_latency(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("e2e")
    producer = kafka.producer(ctx.profile, **{"linger.ms": 0, "enable.idempotence": False})
    consumer = kafka.consumer(ctx.profile, **{"isolation.level": "read_uncommitted"})
    expected = ("figures: time from produce() to the record reaching an assigned consumer "
                "(linger.ms=0, consumer defaults: fetch.wait.max.ms=500)")
    samples: list[float] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        sent = 0
        stop = time.monotonic() + LATENCY_BUDGET_S + 0.5
        while len(samples) < LATENCY_SAMPLES and time.monotonic() < stop:
            started = time.perf_counter()
            producer.produce(topic, str(sent).encode(), partition=0)
            producer.poll(0)
            if _await_value(consumer, str(sent).encode(), stop + 5):
                if sent > 0:  # the first record also pays for connection set-up
                    samples.append(time.perf_counter() - started)
            else:
                break
            sent += 1
        producer.flush(5)
    finally:
        consumer.close()
    if not samples:
        return [result("end-to-end-latency", CONFLUENT, FAIL, expected, "no record reached the consumer", watch)]
    return [result("end-to-end-latency", CONFLUENT, "pass", expected, _figures(samples), watch)]


def _await_value(consumer, value: bytes, deadline: float) -> bool:
    while time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is None:
            continue
        if message.error() is None and message.value() == value:
            return True
    return False


def throughput(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    topic = ctx.scratch_topic("throughput")
    producer = kafka.producer(ctx.profile, **{"linger.ms": 5, "batch.size": 1 << 20, "enable.idempotence": False})
    payload = b"x" * RECORD_BYTES
    started = time.perf_counter()
    stop = time.monotonic() + THROUGHPUT_BUDGET_S
    sent = 0
    while sent < THROUGHPUT_RECORDS and time.monotonic() < stop:
        try:
            producer.produce(topic, payload, partition=0)
            sent += 1
        except BufferError:
            producer.poll(0.01)
    producer.flush(30)
    produce_s = time.perf_counter() - started
    consumer = kafka.consumer(ctx.profile, **{"isolation.level": "read_uncommitted"})
    received = 0
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        started = time.perf_counter()
        deadline = time.monotonic() + 10
        while received < sent and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.2):
                error = message.error()
                if error is None:
                    received += 1
                elif error.code() != KafkaError._PARTITION_EOF:
                    break
        consume_s = time.perf_counter() - started
    finally:
        consumer.close()
    expected = (f"figures: one partition, {RECORD_BYTES} B records, producer linger.ms=5 batch.size=1MB "
                f"(about {THROUGHPUT_BUDGET_S:.0f}s of producing), consumer assign() + consume(1000)")
    observed = (f"produce {sent / produce_s:,.0f} msg/s ({sent * RECORD_BYTES / produce_s / 1e6:.1f} MB/s), "
                f"consume {received / consume_s:,.0f} msg/s ({received * RECORD_BYTES / consume_s / 1e6:.1f} MB/s), "
                f"{received} of {sent} records read back within 10s")
    # A figure, not a verdict: a slow link that reads back only part in time still measured something.
    return [verdict("throughput", CONFLUENT, received > 0, expected, observed, watch)]
