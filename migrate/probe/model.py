"""The probe's values: one check's result and one probe run's report.

A result is evidence, not a verdict only: it says what Kafka semantics expect and what the
platform did, so that a reader can judge a finding without rerunning it.  Statuses:

    pass         the platform behaved as Kafka does (or, for figures, the measurement ran)
    fail         it answered, and the answer is wrong (or the client crashed or hung on it)
    unsupported  the platform does not offer the API (refused it or dropped the connection)
    error        the check itself could not run to a conclusion (a bug or an environment fault)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

PASS = "pass"
FAIL = "fail"
UNSUPPORTED = "unsupported"
ERROR = "error"
STATUSES = (PASS, FAIL, UNSUPPORTED, ERROR)

CONFLUENT = "confluent-kafka"
KAFKA_PYTHON = "kafka-python"
BOTH = "both"
WIRE = "kafka-wire"  # a request written by the probe itself (migrate.probe.wire_checks)


@dataclass(frozen=True)
class CheckResult:
    name: str
    client: str
    status: str
    expected: str
    observed: str
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == PASS

    def with_duration(self, seconds: float) -> "CheckResult":
        return replace(self, duration_s=round(seconds, 3))


@dataclass(frozen=True)
class ProbeReport:
    """Every result of one probe run against one cluster (or the latest stored ones)."""

    cluster: str
    bootstrap: str
    run_id: str
    ran_at: str
    duration_s: float
    results: tuple[CheckResult, ...]
    kept_topics: tuple[str, ...] = field(default=())
    cluster_id: str | None = None  # as the cluster's metadata reported it (None: not reported, or not known)

    def named(self, name: str) -> list[CheckResult]:
        return [r for r in self.results if r.name == name]

    def get(self, name: str, client: str) -> CheckResult | None:
        for result in self.results:
            if result.name == name and result.client == client:
                return result
        return None

    def problems(self) -> list[CheckResult]:
        """Results that make the run's exit code 1 (unsupported is reported, not failed)."""
        return [r for r in self.results if r.status in (FAIL, ERROR)]

    def counts(self) -> dict[str, int]:
        out = {status: 0 for status in STATUSES}
        for result in self.results:
            out[result.status] += 1
        return out
