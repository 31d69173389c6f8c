"""Planning the estate, pure: `plan_estate` derives every record (partition, key, value,
headers, timestamp, transaction) from (scale, seed), with every random choice from one
Random(seed), so the same seed always gives the same records in the same partitions and
order.  Keys are partitioned as the Java client's default partitioner does.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Sequence

from migrate.errors import UsageError
from migrate.seed.estate import (AGENTS, LARGE_VALUE_BYTES, LARGE_VALUES_PER_SCALE, PARTITIONS, REFERENCE_MS,
                                 SPREAD_MS, TOOLS, TRANSACTIONAL_TOOL, WORKFLOWS_PER_SCALE, EstatePlan, Headers,
                                 SeedRecord)


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
            partition = murmur2_partition(key, PARTITIONS[topic])
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
                     tuple(base), ts + 2, partition=rng.randrange(PARTITIONS["audit.log"]))

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
