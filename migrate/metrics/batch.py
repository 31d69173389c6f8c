"""What a batch command leaves behind for Prometheus: its outcome as a set of gauges.

Nightly `migrate validate`, `offsets sync` and `playbook run|rehearse` are jobs, not
servers: they write the node-exporter textfile-collector format atomically (a temporary
file beside the target, then a rename, so the collector never reads half a file) and/or
push to a Pushgateway.  Every job reports `<job>_last_run_timestamp_seconds`,
`<job>_success` (1 when it exited 0), `<job>_exit_code` (0 ok, 1 check failed, 2 could
not run) and `<job>_duration_seconds`; the rest is the command's own (`validation_metrics`
etc.), present when the command got as far as a result.
A push that fails is a warning for the caller to print: the command's result stands.
"""

from __future__ import annotations

import time
from typing import Mapping

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from migrate.metrics.options import BatchOptions

PUSH_TIMEOUT = 5.0


class BatchMetrics:
    """The gauges of one batch run, named `<prefix>_...`, labelled with the run's `labels`."""

    def __init__(self, prefix: str, labels: Mapping[str, str]):
        self.prefix = prefix
        self.labels = dict(labels)
        self.registry = CollectorRegistry()
        self.started = time.time()
        self._gauges: dict[str, Gauge] = {}

    def set(self, metric: str, help_text: str, value: float, /, **labels: str) -> None:
        full = f"{self.prefix}_{metric}"
        gauge = self._gauges.get(full)
        if gauge is None:
            names = list(self.labels) + list(labels)
            gauge = self._gauges[full] = Gauge(full, help_text, names, registry=self.registry)
        values = {**self.labels, **labels}
        (gauge.labels(**values) if values else gauge).set(value)

    def finish(self, success: bool) -> None:
        now = time.time()
        self.set("last_run_timestamp_seconds", "When the last run ended (Unix time)", now)
        self.set("success", "1 when the last run exited 0 (parity, all synced, playbook succeeded)", 1 if success else 0)
        self.set("duration_seconds", "Duration of the last run", now - self.started)


def publish(metrics: BatchMetrics, options: BatchOptions, job: str, grouping: Mapping[str, str]) -> list[str]:
    """Write the textfile and push; returns warnings (a failed push must not change the result)."""
    warnings = []
    if options.file is not None:
        write_to_textfile(str(options.file), metrics.registry)
    if options.pushgateway is not None:
        try:
            push_to_gateway(options.pushgateway, job=job, registry=metrics.registry,
                            grouping_key=dict(grouping), timeout=PUSH_TIMEOUT)
        except Exception as exc:  # URLError, timeouts, HTTP errors: all mean "not pushed"
            warnings.append(f"could not push metrics to the Pushgateway at {options.pushgateway} "
                            f"({getattr(exc, 'reason', None) or exc}); the command's result is unchanged")
    return warnings


def validation_metrics(result, cursors: Mapping[tuple[str, int], tuple[int, int]], mirror: str) -> BatchMetrics:
    """`migrate validate`: the verdict, what was compared, divergences by kind, the cursors."""
    from migrate.validators.divergence import INFO, KINDS

    m = BatchMetrics("migrate_validate", {"mirror": mirror})
    m.set("parity", "1 when the last run found source and target identical", 1 if result.parity else 0)
    m.set("records_compared", "Records compared by the last run", result.records_compared)
    m.set("partitions_compared", "Partitions compared by the last run", sum(t.partitions for t in result.topics))
    m.set("topics_compared", "Topics compared by the last run", len(result.topics))
    counts, info = result.counts, result.info
    for kind in KINDS:
        m.set("divergences", "Divergent records found by the last run, by kind", counts.get(kind, 0), kind=kind)
    for kind in INFO:
        m.set("uncompared_records", "Records the last run could not compare, by reason (not defects)",
              info.get(kind, 0), reason=kind)
    for (topic, partition), (source_next, target_next) in sorted(cursors.items()):
        for side, offset in (("source", source_next), ("target", target_next)):
            m.set("cursor_offset", "Incremental cursor: the next offset the next run starts from", offset,
                  topic=topic, partition=str(partition), side=side)
    return m


def sync_metrics(results, mirror: str) -> BatchMetrics:
    """`migrate offsets sync`: groups by outcome, partition offsets by action."""
    m = BatchMetrics("migrate_offsets_sync", {"mirror": mirror})
    for outcome in ("changed", "would-change", "unchanged", "refused", "skipped"):
        m.set("groups", "Groups of the last run, by outcome", sum(1 for r in results if r.outcome == outcome),
              outcome=outcome)
    actions: dict[str, int] = {}
    for r in results:
        for change in r.changes:
            actions[change.action] = actions.get(change.action, 0) + 1
    for action, count in sorted(actions.items()):
        m.set("partitions", "Group partitions of the last run, by action", count, action=action)
    return m


def playbook_metrics(outcomes, mode: str) -> BatchMetrics:
    """`migrate playbook run|rehearse`: each run's status, duration, downtime window and step durations."""
    m = BatchMetrics("migrate_playbook", {"mode": mode})
    for o in outcomes:
        m.set("run_succeeded", "1 when the playbook run succeeded", 1 if o.ok else 0, playbook=o.playbook)
        if o.duration_s is not None:
            m.set("run_duration_seconds", "Duration of the playbook run", o.duration_s, playbook=o.playbook)
        if o.downtime_s is not None:
            m.set("downtime_seconds", "Measured consumer downtime window", o.downtime_s, playbook=o.playbook)
        for s in o.steps:
            if s.duration_s is not None:
                m.set("step_duration_seconds", "Duration of each step", s.duration_s, playbook=o.playbook,
                      phase=s.phase, step=str(s.idx), name=s.name, status=s.status)
    return m

