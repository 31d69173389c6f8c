"""Probe results in the state database (table `probe_results`, one row per result).

A cluster's stored picture is the latest result of each (check, client) pair across its
runs, so that a rerun with `--only` refreshes just those checks.  The client-agreement
rows are derived, so they are recomputed from that picture rather than read back.
Rows carry the cluster as the user named it (profile or bootstrap), its bootstrap and the
cluster id its metadata reported.  A stored run belongs to the cluster it probed: it is found
by bootstrap and, where the caller knows the cluster's id now, by that id too, never by the
name alone (a profile can point at another cluster, such as a local one started afresh).
"""

from __future__ import annotations

from migrate.config import ClusterProfile
from migrate.probe.model import CheckResult, ProbeReport
from migrate.probe.runner import client_agreement
from migrate.state import State

_COLUMNS = ("run_id", "cluster", "bootstrap", "ran_at", "check_name", "client", "status", "expected",
            "observed", "duration_s", "cluster_id")


def save_report(state: State, report: ProbeReport) -> int:
    """Store every result of a run; returns how many rows were written."""
    rows = [(report.run_id, report.cluster, report.bootstrap, report.ran_at, r.name, r.client, r.status,
             r.expected, r.observed, r.duration_s, report.cluster_id) for r in report.results]
    with state.transaction() as db:
        for row in rows:
            db.execute(f"INSERT INTO probe_results ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                       list(row))
    return len(rows)


def load_latest(state: State, cluster: str, bootstrap: str | None = None,
                cluster_id: str | None = None) -> ProbeReport | None:
    """The latest stored result of each check for a cluster, or None when it was never probed.

    `cluster` names the report; the runs are those of `bootstrap` (`cluster` when it is a
    bootstrap string) and, when `cluster_id` is given, of that cluster id only.
    """
    where, args = "bootstrap = ?", [bootstrap or cluster]
    if cluster_id:
        where, args = where + " AND cluster_id = ?", args + [cluster_id]
    rows = list(state.db.query(f"SELECT * FROM probe_results WHERE {where} ORDER BY ran_at, id", args))
    if not rows:
        return None
    latest: dict[tuple[str, str], dict] = {}
    for row in rows:
        if row["check_name"].startswith("client-agreement"):
            continue
        latest.pop((row["check_name"], row["client"]), None)  # re-insert: keeps the catalogue order of the last run
        latest[(row["check_name"], row["client"])] = row
    results = [CheckResult(r["check_name"], r["client"], r["status"], r["expected"] or "", r["observed"] or "",
                           r["duration_s"] or 0.0) for r in latest.values()]
    results.extend(client_agreement(results))
    last = rows[-1]
    return ProbeReport(cluster, last["bootstrap"], last["run_id"], last["ran_at"],
                       round(sum(r.duration_s for r in results), 2), tuple(results), cluster_id=last["cluster_id"])


def load_for(state: State, name: str, profile: ClusterProfile) -> ProbeReport | None:
    """The stored picture of the cluster `profile` reaches now (its bootstrap and current cluster id;
    by bootstrap alone when the cluster does not answer, so stored results can still be read)."""
    from migrate import kafka
    from migrate.errors import ClusterUnreachable

    try:
        cluster_id = getattr(kafka.check_reachable(profile), "cluster_id", None) or None
    except ClusterUnreachable:
        cluster_id = None
    return load_latest(state, name, profile.bootstrap, cluster_id)
