"""The assessment's values: what was measured, what the target makes of it, and the plan.

Figures are either exact (read from the cluster: partitions, offsets, committed offsets,
lag, schema ids seen) or estimates (extrapolated from a bounded sample); estimates carry
`estimate` in their name or a flag saying so, and the outputs label them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK = "ok"
RISK = "risk"
BLOCKER = "blocker"
NOT_PROBED = "not probed"
LEVELS = (OK, NOT_PROBED, RISK, BLOCKER)  # in rising order of concern


def worst(levels) -> str:
    return max(levels, key=LEVELS.index, default=OK)


@dataclass(frozen=True)
class SizeStats:
    """Record sizes (key + value + header names and values, in bytes) over the sample."""

    p50: int = 0
    p99: int = 0
    max: int = 0
    mean: float = 0.0
    buckets: tuple[int, ...] = ()  # counts per SIZE_BUCKETS upper bound (last: larger)


# Upper bounds of the record-size histogram (the last bucket holds everything larger).
SIZE_BUCKETS = (100, 1_000, 10_000, 100_000, 1_000_000)
SIZE_BUCKET_LABELS = ("<100 B", "<1 KB", "<10 KB", "<100 KB", "<1 MB", ">=1 MB")


@dataclass(frozen=True)
class Usage:
    """What the records of a topic use, from the sample (counts are of sampled records)."""

    sampled: int = 0  # records read (read_uncommitted)
    sampled_bytes: int = 0  # their sizes, summed
    offsets_covered: int = 0  # offsets in the sampled windows
    null_keys: int = 0
    tombstones: int = 0
    with_headers: int = 0
    header_names: tuple[tuple[str, int], ...] = ()  # name -> records carrying it
    nul_header_names: tuple[str, ...] = ()  # names holding a NUL byte (read with kafka-python), escaped
    sizes: SizeStats = SizeStats()
    backwards_timestamps: int = 0  # records older than the one before them in the partition
    near_max_bytes: int = 0  # records at or above NEAR_MAX_FRACTION of the topic's max.message.bytes
    log_append_time: int = 0  # records whose timestamp the broker set (LogAppendTime)
    offset_gaps: int = 0  # offsets in the windows with no record: transaction markers or compaction
    aborted: int = 0  # records read_uncommitted shows and read_committed hides
    aborted_bytes: int = 0  # their sizes, summed
    schema_framed: int = 0  # non-null values with the Schema Registry prefix
    schema_ids: tuple[int, ...] = ()  # distinct ids, when every sampled value is framed
    oldest_timestamp: int | None = None
    newest_timestamp: int | None = None


@dataclass(frozen=True)
class PartitionFigures:
    partition: int
    low: int
    high: int  # read_uncommitted end (high watermark), from a Fetch response
    sampled: int


@dataclass(frozen=True)
class TopicInventory:
    name: str
    partitions: int
    replication_factor: int | None  # None: the platform's metadata lists no replicas
    configs: dict[str, str]  # the configs that matter for a move; "(default)" when not reported
    offsets: int  # sum of end - start over partitions (records plus markers and gaps): exact
    records_estimate: int  # data records (committed and aborted), from the sample's records per offset
    bytes_estimate: int  # their bytes, from the sample's mean size
    sample_complete: bool  # the sample read every offset: records and bytes are then counted, not extrapolated
    records_per_s: float | None  # None: not measured (--sample-seconds 0)
    bytes_per_s_estimate: float | None
    transactions: str  # "yes" (aborted records seen), "likely" (offset gaps), "no"
    usage: Usage
    partition_figures: tuple[PartitionFigures, ...] = ()
    # What the mirror copies: the committed records (and their bytes) apart from the aborted ones.
    # Counted when sample_complete, else extrapolated from the sample's share of aborted records.
    committed_records: int | None = None  # None: not worked out (records_estimate then stands for both)
    aborted_records: int = 0
    committed_bytes: int | None = None

    @property
    def copied_records(self) -> int:
        return self.records_estimate if self.committed_records is None else self.committed_records

    @property
    def copied_bytes(self) -> int:
        return self.bytes_estimate if self.committed_bytes is None else self.committed_bytes

    @property
    def retention_ms(self) -> int | None:
        """None: kept forever (or compacted only)."""
        value = self.configs.get("retention.ms", "(default)")
        ms = 7 * 24 * 3600 * 1000 if value == "(default)" else int(value)
        return None if ms < 0 else ms

    @property
    def compacted(self) -> bool:
        return "compact" in self.configs.get("cleanup.policy", "")


@dataclass(frozen=True)
class GroupTopic:
    topic: str
    partitions: int  # partitions with a committed offset
    lag: int  # high watermark - committed offset, summed
    behind_log_start: int  # partitions whose committed offset the log no longer holds
    oldest_unread_timestamp: int | None = None  # of the records the group has not read yet (None: none, or unknown)


@dataclass(frozen=True)
class GroupInventory:
    group: str
    state: str
    members: int | None  # None: the platform does not report members
    topics: tuple[GroupTopic, ...]  # topics of the selection it committed on
    outside: tuple[str, ...]  # topics outside the selection it committed on

    @property
    def lag(self) -> int:
        return sum(t.lag for t in self.topics)


@dataclass(frozen=True)
class Inventory:
    cluster: str
    bootstrap: str
    measured_at: str
    sample_seconds: float
    sample_limit: int  # records read at most per partition
    topics: tuple[TopicInventory, ...]
    groups: tuple[GroupInventory, ...]
    seconds: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One readiness verdict with its evidence: what the estate uses and what the target does about it."""

    kind: str  # topic | group | estate
    subject: str
    level: str  # ok | not probed | risk | blocker
    behaviour: str
    check: str  # the probe check it rests on, or "-" when none applies
    evidence: str
    remedy: str = ""


@dataclass(frozen=True)
class ProbeUsed:
    cluster: str
    run_id: str | None
    ran_at: str | None
    how: str  # "probed now", "stored run", "not probed"


@dataclass(frozen=True)
class Readiness:
    target: str
    probe: ProbeUsed
    findings: tuple[Finding, ...]

    def level_of(self, kind: str, subject: str) -> str:
        return worst(f.level for f in self.findings if f.kind == kind and f.subject == subject)

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.level == BLOCKER]


@dataclass(frozen=True)
class Costs:
    """Prices from the user's --costs file (no built-in prices)."""

    storage_gb_month: float
    transfer_gb: float
    worker_hour: float
    currency: str = ""


@dataclass(frozen=True)
class CostFigures:
    currency: str
    monthly_storage: float
    monthly_transfer: float
    monthly_workers: float
    monthly_total: float
    copy: float


@dataclass(frozen=True)
class Plan:
    copy_bytes_estimate: int  # committed records only: what the mirror copies
    copy_records_estimate: int
    throughput_mb_s: float | None  # per mirror worker
    throughput_source: str  # where the throughput comes from ("given", a probe run, or "none")
    copy_seconds: float | None  # with `copy_workers` workers
    copy_workers: int
    copy_window_s: float | None
    write_bytes_per_s: float | None
    headroom: float
    bandwidth_bytes_per_s: float | None  # to keep up during the dual run, headroom included
    dual_run_workers: int | None
    overlap_days: float
    target_storage_bytes: int
    costs: CostFigures | None
    vars: dict[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    copy_exact: bool = False  # every partition was read whole: the copy's records and bytes are counted
    throughput_records_s: float | None = None  # per mirror worker, where the figure's source gives one
    copy_aborted_records: int = 0  # left out of the copy (aborted transactions)


@dataclass(frozen=True)
class Assessment:
    source: str
    target: str | None
    generated_at: str
    inventory: Inventory
    readiness: Readiness | None
    plan: Plan
    notes: tuple[str, ...] = ()
    schema: str = "migrate.assess/1"
