"""One probe run: pick the checks, run each (isolated where needed), compare clients, clean up.

Every scratch topic and group of the run shares the prefix `__migrate.probe.<token>.`, so
cleanup finds all of them, including those made by a child process that died; with
`keep=True` they are left in place and named in the report.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable, Iterable

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import MigrateError
from migrate.probe import checks
from migrate.probe.context import ProbeContext
from migrate.probe.isolation import run_inline, run_isolated
from migrate.probe.model import BOTH, CONFLUENT, FAIL, KAFKA_PYTHON, PASS, CheckResult, ProbeReport

Progress = Callable[[checks.Check], None]
log = logging.getLogger("migrate.probe")


def run_probe(profile: ClusterProfile, only: Iterable[str] | None = None, keep: bool = False, *,
              cluster: str | None = None, progress: Progress | None = None) -> ProbeReport:
    """Probe one cluster; raises ClusterUnreachable before any check when it does not answer."""
    selected, wanted = checks.select(list(only) if only else None)
    metadata = kafka.check_reachable(profile)
    ctx = ProbeContext.new(profile)
    started = time.monotonic()
    ran_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    results: list[CheckResult] = []
    try:
        for check in selected:
            if progress:
                progress(check)
            log.info("probe %s: %s (%s%s)", profile.name, check.id, check.client, ", isolated" if check.isolated else "")
            got = run_isolated(check, ctx) if check.isolated else run_inline(check, ctx)
            for r in got:
                log.debug("probe %s: %s %s %s: %s", profile.name, r.name, r.client, r.status, r.observed)
            results.extend(r for r in got if wanted is None or r.name in wanted)
    finally:
        kept = scratch_topics(ctx) if keep else cleanup(ctx)
    results.extend(client_agreement(results))
    return ProbeReport(cluster or profile.name, profile.bootstrap, ctx.token, ran_at,
                       round(time.monotonic() - started, 2), tuple(results), tuple(kept),
                       getattr(metadata, "cluster_id", None) or None)


def client_agreement(results: list[CheckResult]) -> list[CheckResult]:
    """A finding per check where the two clients disagree, and one summary row."""
    by_name: dict[str, dict[str, CheckResult]] = {}
    for r in results:
        by_name.setdefault(r.name, {})[r.client] = r
    compared, differing = 0, []
    out = []
    for name, per_client in by_name.items():
        ck, kp = per_client.get(CONFLUENT), per_client.get(KAFKA_PYTHON)
        if ck is None or kp is None:
            continue
        compared += 1
        if ck.status != kp.status:
            differing.append(name)
            out.append(CheckResult(f"client-agreement-{name}", BOTH, FAIL,
                                   f"confluent-kafka and kafka-python see the same behaviour for {name}",
                                   f"confluent-kafka: {ck.status} ({ck.observed}); "
                                   f"kafka-python: {kp.status} ({kp.observed})"))
    if compared:
        out.append(CheckResult("client-agreement", BOTH, FAIL if differing else PASS,
                               "confluent-kafka and kafka-python see the same behaviour",
                               f"{compared} checks compared; differ: {', '.join(differing)}" if differing
                               else f"{compared} checks compared; all agree"))
    return out


def scratch_topics(ctx: ProbeContext) -> list[str]:
    try:
        return sorted(name for name in kafka.list_topics(ctx.profile) if name.startswith(ctx.prefix))
    except MigrateError:
        return []


def cleanup(ctx: ProbeContext) -> list[str]:
    """Delete the run's topics and groups; returns the topics that could not be deleted."""
    topics = scratch_topics(ctx)
    try:
        kafka.delete_topics(ctx.profile, topics)
    except MigrateError:
        pass
    _delete_groups(ctx)
    deadline = time.monotonic() + 10
    left = scratch_topics(ctx)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = scratch_topics(ctx)
    return left


def _delete_groups(ctx: ProbeContext) -> None:
    client = kafka.admin(ctx.profile)
    try:
        listed = client.list_consumer_groups(request_timeout=10).result(15)
        names = [g.group_id for g in listed.valid if g.group_id.startswith(ctx.prefix)]
        if names:
            for future in client.delete_consumer_groups(names, request_timeout=10).values():
                try:
                    future.result(15)
                except Exception:  # a group that is already gone is fine
                    pass
    except Exception:  # best effort: leftover empty groups cost nothing
        pass
