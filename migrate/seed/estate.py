"""The reference estate as values: its topics, consumer groups and planned records.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

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


PARTITIONS = {t.suffix: t.partitions for t in TOPICS}
