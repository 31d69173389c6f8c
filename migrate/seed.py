"""The reference estate: a deterministic agentic-workflow workload, planned and written.

`plan_estate` is pure: from (scale, seed) it derives every topic, record (partition, key,
value, headers, timestamp, transaction) and consumer group of the estate.  `seed_estate`
writes that plan to a cluster and commits the groups' offsets.  The same seed always gives
the same records in the same partitions and order, so two seeded clusters (or two prefixes
on one cluster) can be compared record by record.

Timestamps are explicit CreateTimes spread over the three days before a fixed reference,
2026-11-20T00:00:00Z, never taken from the clock: two runs write identical records.  Because
they are dated in the past, every non-compacted topic sets `retention.ms` explicitly: a
broker that enforces time retention on CreateTime (noida-db does, within seconds, as Kafka
does at its next retention check) would otherwise delete records older than its 7-day default.

Estate (names get the caller's prefix):
    workflow.events   6 partitions  keyed by workflow id; per workflow: started, then per step
                                    decision -> tool_call -> tool_result, then approval (if
                                    needed), then completed or compensated (seq 0..n-1)
    agent.decisions   3             one decision per step
    tool.calls        3             one call per step; some carry the `hop` header twice
    tool.results      3             one result per step; binary `signature` header; a few
                                    ~100 KB values; payment results are written in
                                    transactions, some of them aborted then retried
    approvals         1             approvals and rejections, binary `signature` header
    workflow.state    3 compacted   state snapshots per workflow, tombstones for archived ones
    audit.log         2 retention -1 (forever)  one entry per workflow event, keyed by agent;
                                    system entries with a null key
The workflow topics keep records for ten years (`retention.ms` set on each).
Every record has `trace-id` and `agent` headers; `workflow.started` events carry a
`parent-span` header with a null value.

Groups: `orchestrator` caught up on workflow.events; `decision-auditor` lagging on
agent.decisions (committed at two thirds of each partition); `tool-runner` committed on
tool.calls partitions 0 and 1 only; `billing-projector` caught up on tool.results and
workflow.state (its offsets sit after transaction markers); `approval-bot` has no commits.
A group that never committed leaves no trace on a Kafka broker (joining and leaving would
only make it briefly visible, and a join costs seconds on some platforms), so `approval-bot`
exists only in the summary, marked "no commits".

Re-seeding refuses: when any estate topic already exists the call raises UsageError before
writing anything; pass another prefix (or delete the topics).
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from confluent_kafka import KafkaException

from migrate import groups, kafka
from migrate.config import ClusterProfile
from migrate.errors import KafkaOperationError, UsageError

REFERENCE_MS = 1795132800000  # 2026-11-20T00:00:00Z: the estate ends before this instant
SPREAD_MS = 3 * 24 * 3600 * 1000  # workflows start within the three days before it
WORKFLOWS_PER_SCALE = 100
LARGE_VALUE_BYTES = 100 * 1024
LARGE_VALUES_PER_SCALE = 3
# Records are dated in the past: without an explicit retention a broker may delete them at once.
LONG_RETENTION = {"retention.ms": str(10 * 365 * 24 * 3600 * 1000)}
AUDIT_RETENTION = {"retention.ms": "-1"}  # audit trails are kept forever

AGENTS = ("planner", "researcher", "coder", "support-triage", "billing")
TOOLS = ("search.web", "docs.fetch", "code.run", "crm.lookup", "email.send", "payments.charge")
TRANSACTIONAL_TOOL = "payments.charge"  # its results and state change are written atomically


@dataclass(frozen=True)
class TopicSpec:
    suffix: str
    partitions: int
    configs: Mapping[str, str]
    description: str


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("workflow.events", 6, LONG_RETENTION, "workflow lifecycle, keyed by workflow id"),
    TopicSpec("agent.decisions", 3, LONG_RETENTION, "one decision per step"),
    TopicSpec("tool.calls", 3, LONG_RETENTION, "tool invocations; duplicate hop headers"),
    TopicSpec("tool.results", 3, LONG_RETENTION, "tool outputs; large values; transactions"),
    TopicSpec("approvals", 1, LONG_RETENTION, "human approvals"),
    TopicSpec("workflow.state", 3, {"cleanup.policy": "compact"}, "compacted snapshots; tombstones"),
    TopicSpec("audit.log", 2, AUDIT_RETENTION, "audit trail; null keys"),
)

Headers = tuple[tuple[str, "bytes | None"], ...]


@dataclass(frozen=True)
class SeedRecord:
    """One planned record; `topic` is the unprefixed suffix, `txn` the transaction it belongs to."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int
    txn: int | None = None
    aborted: bool = False


@dataclass(frozen=True)
class GroupSpec:
    suffix: str
    position: str  # caught-up | lagging | partial | no-commits
    topics: tuple[str, ...]
    partitions: tuple[int, ...] | None  # None: every partition of the topics
    description: str


GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec("orchestrator", "caught-up", ("workflow.events",), None, "caught up on workflow.events"),
    GroupSpec("decision-auditor", "lagging", ("agent.decisions",), None,
              "lagging: committed at 2/3 of each agent.decisions partition"),
    GroupSpec("tool-runner", "partial", ("tool.calls",), (0, 1),
              "committed on tool.calls partitions 0 and 1 only"),
    GroupSpec("billing-projector", "caught-up", ("tool.results", "workflow.state"), None,
              "caught up on the transactional topics (after the markers)"),
    GroupSpec("approval-bot", "no-commits", ("approvals",), (),
              "no commits (the broker keeps no trace; named here only)"),
)


@dataclass(frozen=True)
class EstatePlan:
    scale: int
    seed: int
    workflows: int
    records: tuple[SeedRecord, ...]  # in write order

    def by_partition(self, include_aborted: bool = False) -> dict[tuple[str, int], list[SeedRecord]]:
        """Planned records per (topic suffix, partition), in write (= offset) order."""
        out: dict[tuple[str, int], list[SeedRecord]] = {
            (t.suffix, p): [] for t in TOPICS for p in range(t.partitions)
        }
        for record in self.records:
            if include_aborted or not record.aborted:
                out[(record.topic, record.partition)].append(record)
        return out

    def transactions(self) -> dict[int, bool]:
        """Transaction number -> committed."""
        return {r.txn: not r.aborted for r in self.records if r.txn is not None}


@dataclass(frozen=True)
class TopicSummary:
    name: str
    partitions: int
    configs: Mapping[str, str]
    records: int  # committed records (what read_committed readers must see)
    aborted: int  # records written in aborted transactions
    tombstones: int
    null_keys: int
    large_values: int
    description: str


@dataclass(frozen=True)
class GroupSummary:
    name: str
    position: str
    offsets: tuple[tuple[str, int, int], ...]  # (topic, partition, committed offset)
    description: str


@dataclass(frozen=True)
class SeedSummary:
    cluster: str
    prefix: str
    seed: int
    scale: int
    workflows: int
    topics: tuple[TopicSummary, ...]
    groups: tuple[GroupSummary, ...]
    transactions_committed: int
    transactions_aborted: int

    @property
    def records(self) -> int:
        return sum(t.records for t in self.topics)

    def topic(self, suffix: str) -> TopicSummary:
        return next(t for t in self.topics if t.name == self.prefix + suffix)

    def group(self, suffix: str) -> GroupSummary:
        return next(g for g in self.groups if g.name == self.prefix + suffix)

    def rows(self) -> list[dict[str, object]]:
        """One row per topic and per group, for `emit`."""
        rows: list[dict[str, object]] = []
        for t in self.topics:
            extras = [f"{n} {label}" for n, label in ((t.aborted, "aborted"), (t.tombstones, "tombstones"),
                                                      (t.null_keys, "null keys"), (t.large_values, "large"))
                      if n]
            detail = "; ".join([t.description, *extras, *(f"{k}={v}" for k, v in t.configs.items())])
            rows.append({"kind": "topic", "name": t.name, "partitions": t.partitions,
                         "records": t.records, "detail": detail})
        for g in self.groups:
            rows.append({"kind": "group", "name": g.name, "partitions": len(g.offsets), "records": None,
                         "detail": g.description})
        return rows


# --- planning (pure) ---------------------------------------------------------------------------


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The Java client's default partitioner, so keys land where a Kafka producer puts them."""
    m, r = 0x5BD1E995, 24
    length = len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(key[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= key[tail + 2] << 16
    if extra >= 2:
        h ^= key[tail + 1] << 8
    if extra >= 1:
        h ^= key[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


_PARTITIONS = {t.suffix: t.partitions for t in TOPICS}


def _json(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class _Planner:
    """Builds the records of one estate; every random choice comes from one Random(seed)."""

    def __init__(self, scale: int, seed: int):
        self.rng = random.Random(seed)
        self.scale = scale
        self.records: list[tuple[int, int, SeedRecord]] = []  # (timestamp, sequence, record)
        self.sequence = 0
        self.txn = 0
        self.large_left = LARGE_VALUES_PER_SCALE * scale

    def add(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers, ts: int,
            txn: int | None = None, aborted: bool = False, partition: int | None = None) -> None:
        if partition is None:
            assert key is not None
            partition = murmur2_partition(key, _PARTITIONS[topic])
        record = SeedRecord(topic, partition, key, value, headers, ts, txn, aborted)
        # Transactions are written as one unit at their first record's time: sort by that.
        self.records.append((ts, self.sequence, record))
        self.sequence += 1

    def workflow(self, index: int) -> None:
        rng = self.rng
        wf = f"wf-{index:06d}"
        key = wf.encode()
        agent = rng.choice(AGENTS)
        trace = b"%032x" % rng.getrandbits(128)
        base = [("trace-id", trace), ("agent", agent.encode())]
        ts = REFERENCE_MS - SPREAD_MS + rng.randrange(SPREAD_MS - 6 * 3600 * 1000)
        steps = rng.randint(1, 3)
        tools = [rng.choice(TOOLS) for _ in range(steps)]
        needs_approval = TRANSACTIONAL_TOOL in tools or rng.random() < 0.4
        failed = rng.random() < 0.15
        seq = 0

        def event(kind: str, extra: dict, headers: Headers = ()) -> None:
            nonlocal seq
            self.add("workflow.events", key, _json({"workflow_id": wf, "seq": seq, "type": kind, **extra}),
                     (*base, *headers), ts)
            self.add("audit.log", agent.encode(), _json({"actor": agent, "workflow_id": wf, "event": kind}),
                     tuple(base), ts + 1)
            seq += 1

        def state(status: str, step: int, txn: int | None = None, aborted: bool = False, at: int = 0) -> None:
            self.add("workflow.state", key, _json({"workflow_id": wf, "status": status, "step": step,
                                                   "agent": agent}),
                     tuple(base), at or ts, txn, aborted)

        event("workflow.started", {"agent": agent, "steps": steps}, (("parent-span", None),))
        state("running", 0)
        for step, tool in enumerate(tools, start=1):
            ts += rng.randint(200, 5000)
            decision = {"workflow_id": wf, "step": step, "action": "call_tool", "tool": tool,
                        "confidence": round(rng.uniform(0.5, 1.0), 3), "tokens": rng.randint(50, 4000)}
            self.add("agent.decisions", key, _json(decision), tuple(base), ts)
            event("agent.decision", {"step": step, "tool": tool})
            ts += rng.randint(10, 500)
            call_id = f"{wf}-c{step}"
            hops: Headers = (("hop", b"planner"), ("hop", agent.encode())) if rng.random() < 0.35 else ()
            self.add("tool.calls", key, _json({"call_id": call_id, "workflow_id": wf, "tool": tool,
                                              "args": {"n": rng.randint(1, 99)}}), (*base, *hops), ts)
            event("tool.call", {"step": step, "call_id": call_id})
            ts += rng.randint(100, 20000)
            self.result(key, wf, call_id, tool, step, base, ts, failed and step == steps, state)
            event("tool.result", {"step": step, "call_id": call_id})
        if needs_approval:
            ts += rng.randint(1000, 600000)
            granted = not failed and rng.random() < 0.9
            failed = failed or not granted
            self.add("approvals", key, _json({"workflow_id": wf, "approver": rng.choice(("ana", "bo", "chen")),
                                             "decision": "granted" if granted else "rejected"}),
                     (*base, ("signature", rng.randbytes(16))), ts)
            event("approval", {"granted": granted})
        ts += rng.randint(100, 3000)
        final = "compensated" if failed else "completed"
        event(f"workflow.{final}", {})
        state(final, steps, at=ts)
        if rng.random() < 0.3:  # archived later: its state is deleted
            self.add("workflow.state", key, None, tuple(base), ts + rng.randint(60000, 3600000))
        if index % 10 == 0:  # system entries carry no key; their partition is chosen, not hashed
            self.add("audit.log", None, _json({"actor": "system", "event": "retention.sweep", "after": wf}),
                     tuple(base), ts + 2, partition=rng.randrange(_PARTITIONS["audit.log"]))

    def result(self, key: bytes, wf: str, call_id: str, tool: str, step: int,
               base: Sequence[tuple[str, bytes | None]], ts: int,
               failed: bool, state) -> None:
        rng = self.rng
        output: dict = {"rows": rng.randint(0, 50)}
        if tool == "docs.fetch" and self.large_left > 0 and rng.random() < 0.3:
            self.large_left -= 1
            output = {"document": base64.b64encode(rng.randbytes(LARGE_VALUE_BYTES * 3 // 4)).decode()}
        payload = {"call_id": call_id, "workflow_id": wf, "tool": tool,
                   "status": "error" if failed else "ok", "output": output}
        headers = (*base, ("signature", rng.randbytes(16)))
        if tool != TRANSACTIONAL_TOOL:
            self.add("tool.results", key, _json({**payload, "attempt": 1}), headers, ts)
            state(f"step-{step}-done", step, at=ts)
            return
        attempts = 2 if rng.random() < 0.35 else 1  # an aborted first attempt, retried
        for attempt in range(1, attempts + 1):
            self.txn += 1
            aborted = attempt < attempts
            at = ts + attempt - 1
            self.add("tool.results", key, _json({**payload, "attempt": attempt}), headers, at, self.txn, aborted)
            state(f"step-{step}-done", step, self.txn, aborted, at=at)

    def plan(self, workflows: int) -> tuple[SeedRecord, ...]:
        for index in range(workflows):
            self.workflow(index)
        first_of_txn: dict[int, tuple[int, int]] = {}
        for ts, sequence, record in self.records:
            if record.txn is not None:
                first_of_txn.setdefault(record.txn, (ts, sequence))
        ordered = sorted(
            self.records,
            key=lambda item: first_of_txn[item[2].txn] + (item[1],) if item[2].txn is not None
            else (item[0], item[1], item[1]),
        )
        return tuple(record for _, _, record in ordered)


def plan_estate(scale: int = 1, seed: int = 7) -> EstatePlan:
    """Every record of the estate for (scale, seed), in write order; no I/O."""
    if scale < 1:
        raise UsageError("scale must be at least 1")
    workflows = WORKFLOWS_PER_SCALE * scale
    return EstatePlan(scale, seed, workflows, _Planner(scale, seed).plan(workflows))


# --- writing -------------------------------------------------------------------------------------


def seed_estate(profile: ClusterProfile, scale: int = 1, seed: int = 7, prefix: str = "") -> SeedSummary:
    """Write the estate for (scale, seed) to a cluster under `prefix`; refuse if any topic exists."""
    plan = plan_estate(scale, seed)
    _create_topics(profile, prefix)
    _write_records(profile, plan, prefix, seed)
    positions = _commit_groups(profile, prefix)
    return _summarise(profile, plan, prefix, positions)


def _create_topics(profile: ClusterProfile, prefix: str) -> None:
    names = [prefix + t.suffix for t in TOPICS]
    with kafka.AdminSession(profile) as session:
        existing = sorted(set(names) & set(session.list_topics()))
        if existing:
            raise UsageError(
                f'cluster "{profile.name}" already has estate topics ({", ".join(existing)}); '
                "pass another --prefix or delete them"
            )
        for spec in TOPICS:
            if not kafka.create_topic(profile, prefix + spec.suffix, spec.partitions, spec.configs):
                raise UsageError(f'topic "{prefix + spec.suffix}" appeared on cluster "{profile.name}" while '
                                 "seeding; pass another --prefix")
        # Some platforms auto-create unknown topics on produce: never write before ours exist.
        for spec in TOPICS:
            session.wait_for_topic(prefix + spec.suffix, spec.partitions)


class _Delivery:
    """Collects the first delivery error of a producer."""

    def __init__(self) -> None:
        self.error: str | None = None

    def __call__(self, err, _msg) -> None:
        if err is not None and self.error is None:
            self.error = f"{err.name()}: {err.str()}"


def _units(records: tuple[SeedRecord, ...]) -> Iterator[tuple[int | None, list[SeedRecord]]]:
    """Consecutive plain records as one unit, each transaction as one unit."""
    current: list[SeedRecord] = []
    current_txn: int | None = None
    for record in records:
        if current and record.txn != current_txn:
            yield current_txn, current
            current = []
        current_txn = record.txn
        current.append(record)
    if current:
        yield current_txn, current


def _write_records(profile: ClusterProfile, plan: EstatePlan, prefix: str, seed: int) -> None:
    plain = kafka.producer(profile, **{"linger.ms": 5})
    transactional = kafka.producer(profile, **{"linger.ms": 5, "transactional.id": f"migrate-seed-{prefix}{seed}"})
    delivery = _Delivery()
    try:
        transactional.init_transactions(30)
        for txn, records in _units(plan.records):
            if txn is None:
                _produce(plain, records, prefix, delivery)
                continue
            # Offsets stay deterministic only if the two producers never interleave in flight.
            _flush(profile, plain, delivery)
            transactional.begin_transaction()
            _produce(transactional, records, prefix, delivery)
            if records[0].aborted:
                _flush(profile, transactional, delivery)  # abort would purge unsent records
                transactional.abort_transaction(30)
            else:
                transactional.commit_transaction(30)
            _check(profile, delivery)
        _flush(profile, plain, delivery)
    except KafkaException as exc:
        raise kafka.fail(profile, "writing the seeded estate", exc) from exc


def _produce(client, records: list[SeedRecord], prefix: str, delivery: _Delivery) -> None:
    for record in records:
        while True:
            try:
                client.produce(prefix + record.topic, value=record.value, key=record.key,
                               partition=record.partition, headers=list(record.headers),
                               timestamp=record.timestamp, on_delivery=delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                client.poll(0.1)
        client.poll(0)


def _flush(profile: ClusterProfile, client, delivery: _Delivery) -> None:
    if client.flush(60) > 0:
        raise KafkaOperationError(f'cluster "{profile.name}" did not acknowledge the seeded records within 60s')
    _check(profile, delivery)


def _check(profile: ClusterProfile, delivery: _Delivery) -> None:
    if delivery.error:
        raise KafkaOperationError(f'writing the seeded estate on cluster "{profile.name}" failed: {delivery.error}')


def _commit_groups(profile: ClusterProfile, prefix: str) -> list[GroupSummary]:
    wanted = [(prefix + t.suffix, p) for t in TOPICS for p in range(t.partitions)]
    ends = kafka.partition_ends(profile, wanted)
    summaries, plans = [], {}
    for spec in GROUPS:
        offsets = []
        for suffix in spec.topics:
            for partition in range(_PARTITIONS[suffix]):
                if spec.partitions is not None and partition not in spec.partitions:
                    continue
                end = ends[(prefix + suffix, partition)].high
                offsets.append((prefix + suffix, partition, end * 2 // 3 if spec.position == "lagging" else end))
        plans[prefix + spec.suffix] = {(t, p): o for t, p, o in offsets}
        summaries.append(GroupSummary(prefix + spec.suffix, spec.position, tuple(offsets), spec.description))
    refused = sorted(group for group, reason in groups.commit(profile, plans).items() if reason)
    if refused:
        raise UsageError(f'groups {", ".join(refused)} on cluster "{profile.name}" have live members; '
                         "pass another --prefix")
    return summaries


def _summarise(profile: ClusterProfile, plan: EstatePlan, prefix: str,
               positions: list[GroupSummary]) -> SeedSummary:
    topics = []
    for spec in TOPICS:
        records = [r for r in plan.records if r.topic == spec.suffix]
        kept = [r for r in records if not r.aborted]
        topics.append(TopicSummary(
            name=prefix + spec.suffix, partitions=spec.partitions, configs=dict(spec.configs),
            records=len(kept), aborted=len(records) - len(kept),
            tombstones=sum(r.value is None for r in kept), null_keys=sum(r.key is None for r in kept),
            large_values=sum(len(r.value or b"") >= LARGE_VALUE_BYTES for r in kept),
            description=spec.description,
        ))
    txns = plan.transactions()
    return SeedSummary(
        cluster=profile.name, prefix=prefix, seed=plan.seed, scale=plan.scale, workflows=plan.workflows,
        topics=tuple(topics), groups=tuple(positions),
        transactions_committed=sum(txns.values()), transactions_aborted=sum(not c for c in txns.values()),
    )
