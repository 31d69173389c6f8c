"""Whether --transactions can be trusted on a target: only where `migrate probe` found its transactions sound.

A target whose transactions fail the probe's transaction checks (Tansu's read_committed shows
aborted records, measured) cannot commit records and their map entries atomically; the mirror
then runs in the default mode, which stays exactly-once through reconciliation, and says so.
"""

from __future__ import annotations

import logging

from migrate.mirror.spec import MirrorSpec
from migrate.state import State

log = logging.getLogger("migrate.mirror")


def target_transactions_trusted(spec: MirrorSpec, state: State) -> bool:
    """--transactions only where `migrate probe` found the target's transactions sound."""
    from migrate.probe.requirements import TRANSACTION_CHECKS, check_requirements
    from migrate.probe.store import load_latest

    target = spec.target
    report = load_latest(state, target.name, target.bootstrap)
    if report is None:
        log.warning('--transactions: cluster "%s" was never probed; trusting its transactions '
                    "(run: migrate probe --cluster %s)", target.name, spec.target_spec or target.bootstrap)
        return True
    unmet = [u for u in check_requirements(report, TRANSACTION_CHECKS) if report.named(u.name)]
    if unmet:
        log.warning('--transactions: cluster "%s" fails the transaction checks (%s), so records and map '
                    "entries cannot commit atomically there; mirroring in the default mode, which stays "
                    "exactly-once through reconciliation", target.name, ", ".join(u.name for u in unmet))
        return False
    return True
