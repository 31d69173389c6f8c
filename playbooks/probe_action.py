"""The `probe` action: preflight before a cutover.  The clusters answer, the topics exist,
and the target platform meets the capabilities the plan needs (`migrate probe`'s checks,
from a recent stored probe when there is one).
"""

from __future__ import annotations

import re

from migrate import kafka
from migrate.errors import StepFailed
from migrate.playbooks.actions import ActionContext, Param, StepResult, action


@action(
    "probe",
    Param("clusters", "names", required=True, doc="cluster profiles or bootstraps that must answer"),
    Param("topics", "list", regex=True,
          doc="topic regexes that must match at least one topic on the first cluster"),
    Param("target", "str", doc="the cluster whose platform must meet `requires`"),
    Param("requires", "names", doc="capabilities the plan needs on the target (see migrate probe)"),
    Param("max_age", "float", default=0.0, doc="reuse a stored probe of the target this recent (e.g. 1h)"),
    summary="Preflight: clusters answer, the topics exist, the target supports what the plan needs.",
    default_timeout=300.0,
)
def run_probe(ctx: ActionContext, params: dict) -> StepResult:
    lines = []
    first_topics: dict = {}
    for i, spec in enumerate(params["clusters"]):
        profile = ctx.cluster(spec)
        topics = kafka.list_topics(profile, timeout=min(30.0, ctx.remaining(30.0)) or 1.0)
        if i == 0:
            first_topics = topics
        lines.append(f"{profile.name}: reachable at {profile.bootstrap}, {len(topics)} topics")
    for pattern in params.get("topics") or []:
        regex = re.compile(pattern)
        matched = [t for t in first_topics if regex.fullmatch(t)]
        if not matched:
            raise StepFailed(f"no topic on {params['clusters'][0]} matches {pattern!r}", "\n".join(lines))
        lines.append(f"topics {pattern!r}: {len(matched)}")
    if params.get("requires"):
        lines.append(_probe_requirements(ctx, params.get("target") or params["clusters"][-1], params["requires"],
                                         params.get("max_age") or 0.0))
    return StepResult("\n".join(lines))


def _probe_requirements(ctx: ActionContext, spec: str, requires: list[str], max_age: float) -> str:
    """Gate on the target meeting the checks the plan needs: a stored probe of the same
    cluster younger than `max_age` when there is one (a platform does not change in an
    hour), else a probe of exactly those checks, stored for the next run."""
    import datetime as dt

    from migrate.probe.requirements import check_requirements
    from migrate.probe.runner import run_probe
    from migrate.probe.store import load_for, save_report

    profile = ctx.cluster(spec)
    report, how = None, "probed"
    if max_age > 0:
        stored = load_for(ctx.state, spec, profile)
        if stored is not None:
            age = (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(stored.ran_at)).total_seconds()
            if age <= max_age and all(stored.named(name) for name in requires):
                report, how = stored, f"stored probe from {age:.0f}s ago"
    if report is None:
        report = run_probe(profile, only=requires, cluster=spec)
        save_report(ctx.state, report)
    unmet = check_requirements(report, requires)
    if unmet:
        raise StepFailed(f"target {spec} does not meet: " + "; ".join(f"{u.name} ({u.reason})" for u in unmet))
    return f"{spec}: meets {', '.join(requires)} ({how})"
