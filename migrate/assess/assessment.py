"""One assessment: inventory of the source, readiness against the target, the plan.

Runs the probe on the target only when asked (a probe writes scratch topics there);
otherwise it reuses the latest stored probe results of the target, or reports readiness
as "not probed".  Topics already on the target are checked for config drift (migrate.assess.drift).  Both clusters are checked for reachability before anything is read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Callable

from migrate import kafka
from migrate.assess import drift
from migrate.assess import plan as planning
from migrate.assess import readiness
from migrate.assess.inventory import take_inventory
from migrate.assess.model import Assessment, Costs
from migrate.assess.sampling import DEFAULT_LIMIT
from migrate.config import ClusterProfile
from migrate.state import State


@dataclass(frozen=True)
class AssessOptions:
    topics: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sample_seconds: float = 30.0
    sample_limit: int = DEFAULT_LIMIT
    probe: bool = False  # run the probe on the target now (writes scratch topics there)
    throughput_mb_s: float | None = None  # per mirror worker; None: from the target's probe (a real mirror run)
    copy_window_s: float | None = None
    headroom: float = 1.5
    overlap_days: float = 30.0
    costs: Costs | None = field(default=None)


def run_assessment(state: State | None, source: ClusterProfile, source_name: str, target: ClusterProfile | None,
                   target_name: str | None, options: AssessOptions,
                   progress: Callable[[str], None] | None = None) -> Assessment:
    say = progress or (lambda _line: None)
    kafka.check_reachable(source)
    if target is not None:
        kafka.check_reachable(target)
    inventory = take_inventory(source, options.topics, options.exclude, options.sample_seconds,
                               options.sample_limit, say)
    found_readiness, report = None, None
    if target is not None:
        report, how = _probe_report(state, target, target_name or target.name, inventory, options, say)
        say("checking the estate's behaviours against the target")
        found_readiness = readiness.assess_readiness(inventory, target, target_name or target.name, report,
                                                     readiness.probe_used(report, target_name or target.name, how))
        say("comparing topic configs with the target")
        drifted = drift.drift_findings(inventory, source, target, drift.target_names(state, source, source_name))
        found_readiness = replace(found_readiness, findings=found_readiness.findings + tuple(drifted))
    throughput, source_of, records_s = options.throughput_mb_s, "given", None
    if throughput is None:
        throughput, source_of, records_s = planning.probe_throughput(report)
    the_plan = planning.make_plan(inventory, source_name, target_name, throughput, source_of, options.copy_window_s,
                                  options.headroom, options.overlap_days, options.costs, records_s)
    return Assessment(source_name, target_name, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      inventory, found_readiness, the_plan, tuple(_source_notes(state, source, source_name)))


def _source_notes(state: State | None, source: ClusterProfile, name: str) -> list[str]:
    """What the source's stored probe results say about the inventory's own figures."""
    from migrate.probe.store import load_for

    report = load_for(state, name, source) if state is not None else None
    if report is None:
        return []
    failed = [r for r in report.named("read-committed-hides-aborted") if not r.ok]
    if not failed:
        return []
    return [f"the source shows aborted records to read_committed readers (probe run {report.run_id} at "
            f"{report.ran_at}): aborted records cannot be counted there, so transactional topics are recognised by "
            "their offset gaps only (transactions: likely)"]


def _probe_report(state: State | None, target: ClusterProfile, name: str, inventory, options: AssessOptions, say):
    """The target's probe report: run now (kept in `state` when there is one), else the stored one."""
    from migrate.probe.store import load_for, save_report

    if options.probe:
        from migrate.probe.runner import run_probe

        only = readiness.checks_needed(inventory)
        if options.throughput_mb_s is None:
            only.append("mirror-throughput")
        say(f"probing the target {name}: {', '.join(only)}")
        report = run_probe(target, only, cluster=name)
        if state is not None:
            save_report(state, report)
        return report, "probed now"
    # Without a state (a library caller) there is no stored run to read.
    stored = load_for(state, name, target) if state is not None else None
    return stored, "stored run" if stored is not None else "not probed"
