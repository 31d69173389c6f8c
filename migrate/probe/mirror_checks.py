"""A figure a mirror worker reaches: a short real mirror run on the probed cluster.

The copy throughput a plan needs is not a raw producer's (which writes one partition with no
reading, no offset maps and no commits, and runs ten times faster): it is what
`migrate mirror` does.  This check fills a scratch topic, runs the real mirror engine with its
default settings from that topic to a second scratch topic on the same cluster, and reports
the engine's own copy time (start-up excluded) and the records and bytes it copied.  The
cluster both serves and takes the copy here, so a mirror between two clusters does at least as
well.  The mirror never copies `__migrate.*` topics, so its two data topics are named
`migrate-probe.<token>.mirror...` and deleted by the check itself; the mirror's own topics
carry the run's prefix and go with the runner's cleanup.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from pathlib import Path

from migrate import groups, kafka
from migrate.probe.context import ProbeContext, Stopwatch, result
from migrate.probe.model import CONFLUENT, FAIL, PASS, CheckResult

RECORDS = 20_000
RECORD_BYTES = 1_000
PARTITIONS = 4
_FIGURE = re.compile(r": ([\d.]+) MB/s ")


def mirror_figure(observed: str) -> float | None:
    """The MB/s of a mirror-throughput result's observed text (None when it holds none)."""
    found = _FIGURE.search(observed)
    return float(found.group(1)) if found else None


def mirror_throughput(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    expected = (f"figures: the mirror engine (default settings, one worker) copies {RECORDS:,} records of "
                f"{RECORD_BYTES} B over {PARTITIONS} partitions from one scratch topic to another on this cluster")
    topic = f"migrate-probe.{ctx.token}.mirror-{uuid.uuid4().hex[:6]}"
    kafka.create_topic(ctx.profile, topic, PARTITIONS)
    try:
        kafka.wait_for_topic(ctx.profile, topic, PARTITIONS)
        return _measure(ctx, topic, expected, watch)
    finally:
        try:
            kafka.delete_topics(ctx.profile, [topic, f"{topic}.copy"])
        except Exception:  # best effort: a topic left behind is named for the run
            pass


def _measure(ctx: ProbeContext, topic: str, expected: str, watch: Stopwatch) -> list[CheckResult]:
    from migrate.mirror import Mirror, MirrorSpec
    from migrate.state import State

    producer = kafka.producer(ctx.profile, **{"linger.ms": 5, "batch.size": 1 << 20, "enable.idempotence": False})
    failed: list[str] = []
    payload = b"m" * RECORD_BYTES
    for i in range(RECORDS):
        while True:
            try:
                producer.produce(topic, payload, key=str(i).encode(), partition=i % PARTITIONS,
                                 on_delivery=lambda err, _m: failed.append(err.str()) if err else None)
                break
            except BufferError:
                producer.poll(0.01)
    left = producer.flush(30)
    if failed or left:
        return [result("mirror-throughput", CONFLUENT, FAIL, expected,
                       failed[0] if failed else f"{left} records not acknowledged", watch)]
    name = f"{ctx.prefix[len('__migrate.'):]}mirror"  # its own topics are then __migrate.probe.<token>.mirror.*
    spec = MirrorSpec(name=name, source=ctx.profile, target=ctx.profile, topics=(re.escape(topic),),
                      rename="{topic}.copy", until_caught_up=True, compression="lz4",
                      session_timeout_ms=ctx.group_settings()["session.timeout.ms"])  # type: ignore[arg-type]
    try:
        with tempfile.TemporaryDirectory(prefix="migrate-probe-") as tmp, State(Path(tmp) / "state.db") as state:
            copied = Mirror(spec, state).run()
    finally:
        try:
            groups.delete(ctx.profile, [spec.group_id])
        except Exception:  # best effort, like the runner's cleanup: an empty group costs nothing
            pass
    if copied.failures or copied.records < RECORDS or copied.copy_seconds <= 0:
        why = "; ".join(f.message for f in copied.failures) or f"{copied.records} of {RECORDS} records copied"
        return [result("mirror-throughput", CONFLUENT, FAIL, expected, why, watch)]
    mb_s = copied.bytes / copied.copy_seconds / 1e6
    observed = (f"copied {copied.records:,} records ({copied.bytes / 1e6:.1f} MB) in {copied.copy_seconds:.2f}s: "
                f"{mb_s:.1f} MB/s ({copied.records / copied.copy_seconds:,.0f} records/s) with one worker, "
                f"{PARTITIONS} partitions")
    return [result("mirror-throughput", CONFLUENT, PASS, expected, observed, watch)]
