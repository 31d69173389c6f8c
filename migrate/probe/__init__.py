"""`migrate probe`: what a Kafka platform really does, measured by running it.

    model.py         CheckResult, ProbeReport (the values at the boundary)
    checks.py        the catalogue: stable check names, which function answers each
    *_checks.py      the checks themselves (data, groups, admin, freshness), with confluent-kafka
    kafka_python_*   the same checks with kafka-python (data, groups, admin), over its clients
    isolation.py     running a check in a child process with a timeout
    runner.py        run_probe(): one run against one cluster, scratch topics cleaned up
    store.py         results kept in the state database
    diff.py          probe_diff(): what a target lacks that a source has
    requirements.py  check_requirements(), transactions_trustworthy(): gates for playbooks and mirror
"""

from __future__ import annotations

from migrate.probe.model import CheckResult, ProbeReport

__all__ = ["CheckResult", "ProbeReport", "run_probe", "probe_diff", "check_requirements",
           "transactions_trustworthy", "save_report", "load_latest"]


def __getattr__(name: str):
    # Imported lazily: `python -m migrate.probe.isolation` must not import itself twice.
    if name == "run_probe":
        from migrate.probe.runner import run_probe
        return run_probe
    if name == "probe_diff":
        from migrate.probe.diff import probe_diff
        return probe_diff
    if name in ("check_requirements", "transactions_trustworthy"):
        from migrate.probe import requirements
        return getattr(requirements, name)
    if name in ("save_report", "load_latest"):
        from migrate.probe import store
        return getattr(store, name)
    raise AttributeError(name)
