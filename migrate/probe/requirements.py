"""Gates over a probe report: named requirements for playbooks, and the mirror's transaction test.

A requirement is a check name (see migrate.probe.checks.CHECK_NAMES).  It is met when the
report holds at least one result for it and every client's result passes: estates use
both confluent-kafka and kafka-python, so a behaviour one of them cannot rely on is unmet.
An unknown name is a usage error (a typo must neither pass nor block silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from migrate.probe.checks import validate_names
from migrate.probe.model import PASS, ProbeReport

# What exactly-once mirroring into a target needs from its transactions: they work, readers
# with read_committed never see an aborted write, and markers take offsets as in Kafka.
TRANSACTION_CHECKS = ("transactions", "read-committed-hides-aborted", "transaction-markers-take-offsets")


@dataclass(frozen=True)
class UnmetRequirement:
    name: str
    reason: str


def check_requirements(report: ProbeReport, requires: Iterable[str]) -> list[UnmetRequirement]:
    unmet = []
    for name in validate_names(list(requires), "requirement"):
        results = report.named(name)
        if not results:
            unmet.append(UnmetRequirement(name, f"not probed on {report.cluster}; run: migrate probe --cluster "
                                                f"{report.cluster} --only {name}"))
            continue
        bad = [r for r in results if r.status != PASS]
        if bad:
            unmet.append(UnmetRequirement(name, "; ".join(f"{r.client}: {r.status} ({r.observed})" for r in bad)))
    return unmet


def transactions_trustworthy(report: ProbeReport) -> bool:
    """True when the mirror may write exactly-once into this cluster (else: at-least-once + warning)."""
    return not check_requirements(report, TRANSACTION_CHECKS)


def transaction_warning(report: ProbeReport) -> str | None:
    """The warning the mirror prints when it falls back to at-least-once, or None."""
    unmet = check_requirements(report, TRANSACTION_CHECKS)
    if not unmet:
        return None
    return (f"cluster {report.cluster} fails transaction checks ({', '.join(u.name for u in unmet)}): "
            "mirroring at-least-once (a batch retried after a failure may be written twice to the target)")
