"""Mirror actions: start a named background mirror, stop it, wait until it has caught up.

The mirror runs as a child `migrate mirror --follow` (so it outlives this process and a
resumed run finds it); lag is read as `migrate mirror status` reads it (state + partition
ends from Fetch, or the fleet status on the target, so workers on other machines count).
A reverse mirror (rollback) copies back the topics of a forward mirror, which must have
stopped first.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, cast

from migrate import kafka
from migrate.errors import StepFailed
from migrate.mirror import fleet, registry
from migrate.playbooks import processes
from migrate.playbooks.actions import ActionContext, Param, StepResult, action
from migrate.playbooks.cluster_support import POLL, last_line, shadow_mirror

if TYPE_CHECKING:
    from migrate.groups import GroupInfo


def _mirror_key(name: str) -> str:
    return f"mirror:{name}"


def _deadline_passed(ctx: ActionContext) -> bool:
    return ctx.cancel.is_set() or (ctx.deadline is not None and time.monotonic() > ctx.deadline)


def _shadow_mirror_start(params: dict, shadow) -> dict:
    params = shadow_mirror(params, shadow)
    if params.get("reverse_of"):
        params["reverse_of"] = shadow.mirror(params["reverse_of"])
    else:
        params["rename"] = shadow.rename(params.get("rename") or "{topic}")
    return params


@action(
    "mirror.start",
    Param("name", "str", required=True, doc="mirror name"),
    Param("source", "str", required=True, doc="cluster to read"),
    Param("target", "str", required=True, doc="cluster to write"),
    Param("topics", "list", doc="topic regexes (not with reverse_of)", regex=True),
    Param("exclude", "list", doc="topic regexes to skip", regex=True),
    Param("rename", "str", doc="target topic template, default {topic}"),
    Param("reverse_of", "str", doc="mirror back the topics of this forward mirror (its targets, by name)"),
    Param("sync_groups", "str", doc="also sync offsets of matching inactive groups", regex=True),
    Param("args", "list", doc="more `migrate mirror` options"),
    summary="Start a named background mirror (`migrate mirror --follow`); already running is fine.",
    default_timeout=60.0, shadow=_shadow_mirror_start,
    check=lambda p: None if (p.get("topics") or p.get("reverse_of")) else "mirror.start needs 'topics' or 'reverse_of'",
)
def run_mirror_start(ctx: ActionContext, params: dict) -> StepResult:
    name = params["name"]
    key = _mirror_key(name)
    running = processes.find(ctx.state, key)
    if running is not None:
        return StepResult(f"mirror {name} already running (pid {running.pid})", {"pid": running.pid})
    args = ["mirror", "--source", params["source"], "--target", params["target"], "--name", name, "--follow"]
    if params.get("reverse_of"):
        _check_forward_stopped(ctx, params["reverse_of"])
        topics, rename = _reverse_topics(ctx, params["reverse_of"])
        args += ["--topics", topics, "--rename", params.get("rename") or rename]
    else:
        for pattern in params["topics"]:
            args += ["--topics", pattern]
        args += ["--rename", params.get("rename") or "{topic}"]
    for pattern in params.get("exclude") or []:
        args += ["--exclude", pattern]
    if params.get("sync_groups"):
        args += ["--sync-groups", params["sync_groups"]]
    args += list(params.get("args") or [])
    log_path = ctx.state_path.parent / "mirrors" / f"{name}.log"
    proc = processes.start(ctx.state, key, ctx.migrate_command(*args), log_path, ctx.run_id)
    # A mirror that cannot start (bad topics, unreachable cluster) exits at once: wait for
    # its first progress row or an early exit, whichever comes first.  Not ctx.wait_until:
    # this wait looks at the clock before the mirror, so a step cancelled or out of time
    # stops the mirror without looking at it once more.
    while not _deadline_passed(ctx):
        if processes.exited(proc):
            raise StepFailed(f"mirror {name} exited at start: {last_line(processes.log_tail(proc))}",
                             processes.log_tail(proc, lines=20))
        if _progress_rows(ctx, name):
            break
        time.sleep(POLL)
    else:
        processes.stop(ctx.state, key)
        raise StepFailed(f"mirror {name} did not start mirroring within the step's timeout",
                         processes.log_tail(proc, lines=20))
    return StepResult(f"mirror {name} started (pid {proc.pid}, log {log_path})", {"pid": proc.pid})


def _check_forward_stopped(ctx: ActionContext, forward: str) -> None:
    """A reverse mirror must not start while its forward mirror runs: together they loop."""
    from migrate import groups as kgroups

    row = ctx.state.db.execute("SELECT source FROM mirrors WHERE name = ?", [forward]).fetchone()
    if row is None:
        return  # _reverse_topics says the forward mirror is unknown
    group = f"migrate.mirror.{forward}"
    source = ctx.cluster(row[0])
    info = kgroups.describe(source, [group]).get(group)
    if info is not None and info.active:
        raise StepFailed(
            f"forward mirror {forward} is still running (its group {group} is {info.state} on {source.name}); "
            "a reverse mirror now would copy records back to their source in a loop: stop it "
            f"(mirror.stop {forward}, or stop its workers), then resume this run")


def _progress_rows(ctx: ActionContext, name: str) -> list:
    return registry.local_progress(ctx.state, name)


def _reverse_topics(ctx: ActionContext, forward: str) -> tuple[str, str]:
    rows = [(s, t) for s, (t, _n) in registry.topics(ctx.state, forward).items()]
    if not rows:
        raise StepFailed(f"mirror {forward} has mirrored no topics yet; nothing to mirror back")
    renamed = [(s, t) for s, t in rows if s != t]
    if renamed and any(not t.endswith(s) for s, t in renamed):
        raise StepFailed(f"mirror {forward} renames topics in a way a reverse mirror cannot undo")
    prefix = rows[0][1][: len(rows[0][1]) - len(rows[0][0])]
    if any(t != prefix + s for s, t in rows):
        raise StepFailed(f"mirror {forward} does not use one prefix for all topics; reverse it by hand")
    names = "|".join(re.escape(t) for _s, t in sorted(rows))
    # Production: identity names. Rehearsal: the shadow prefix stays on the way back, so the
    # reverse mirror writes shadow topics on the source, never the production ones.
    return f"({names})", "{topic}"


@action(
    "mirror.stop",
    Param("name", "str", required=True, doc="mirror name"),
    summary="Stop a named background mirror gracefully; not running is fine.",
    default_timeout=60.0, shadow=shadow_mirror,
)
def run_mirror_stop(ctx: ActionContext, params: dict) -> StepResult:
    from migrate import groups as kgroups

    name = params["name"]
    grace = max(5.0, ctx.remaining(60.0) - 10.0)
    stopped = processes.stop(ctx.state, _mirror_key(name), grace=grace)
    # Workers this tool did not start (a `migrate mirror --follow` run by hand) would go on
    # copying: the mirror counts as stopped only when its source consumer group is inactive.
    record = registry.get(ctx.state, name)
    if record is not None and record.source:
        group = f"migrate.mirror.{name}"
        source = ctx.cluster(record.source)
        info = None

        def inactive() -> bool:
            nonlocal info
            info = kgroups.describe(source, [group]).get(group)
            return info is None or not info.active

        # on_timeout runs only after inactive() has seen the group active
        ctx.wait_until(inactive, POLL, lambda: StepFailed(
            f"mirror {name} still has active workers (group {group} is {cast('GroupInfo', info).state} on "
            f"{source.name}); stop them, then resume"))
    return StepResult(f"mirror {name} {'stopped' if stopped else 'was not running'}; no worker left")


def mirror_lag(ctx: ActionContext, name: str, ends_cache: dict | None = None,
               reader: fleet.StatusReader | None = None) -> tuple[int, dict[str, int], list[str]]:
    """(total lag, lag per partition, problems) as `migrate mirror status` computes it (the registry's rules).

    With `ends_cache`, source ends are read once and kept: lag against a fixed snapshot.  With
    `reader`, the fleet status on the target is followed, so workers on other machines count.
    """
    record = registry.get(ctx.state, name)
    if record is None or not record.source:
        raise StepFailed(f'no mirror named "{name}" in the state; start it first')
    source = ctx.cluster(record.source)
    status = registry.read_fleet(ctx.cluster(record.target), name, reader) if reader is not None else None
    progress = registry.progress(ctx.state, name, status)
    known = {(r.topic, r.partition) for r in progress}
    wanted = sorted(known | {(t, p) for t, (_tt, n) in registry.topics(ctx.state, name).items() for p in range(n)})
    missing = [tp for tp in wanted if ends_cache is None or tp not in ends_cache]
    ends = kafka.partition_ends(source, missing, timeout=min(30.0, max(1.0, ctx.remaining(30.0)))) if missing else {}
    if ends_cache is not None:
        ends_cache.update(ends)
        ends = {tp: ends_cache[tp] for tp in wanted}
    return registry.lag(progress, ends, wanted)


@action(
    "mirror.wait-caught-up",
    Param("name", "str", required=True, doc="mirror name"),
    Param("max_lag", "int", default=0, doc="records behind the source that still count as caught up"),
    Param("hold", "float", default=0.0, doc="seconds the lag must stay within max_lag"),
    Param("snapshot", "bool", default=False,
          doc="measure lag against the source ends seen when the step starts (rehearsals: production keeps writing)"),
    summary="Wait until a mirror's lag is <= max_lag, and stays so for `hold` seconds.",
    default_timeout=600.0, shadow=lambda p, sh: {**shadow_mirror(p, sh), "snapshot": True},
)
def run_mirror_wait(ctx: ActionContext, params: dict) -> StepResult:
    name, max_lag, hold = params["name"], params["max_lag"], params["hold"]
    since = None
    ends_cache: dict = {}
    per: dict[str, int]
    problems: list[str]
    lag, per, problems = 0, {}, []
    record = registry.get(ctx.state, name)
    reader = fleet.StatusReader(ctx.cluster(record.target), name) if record is not None and record.target else None

    def caught_up() -> StepResult | None:
        nonlocal since, lag, per, problems
        proc = processes.find(ctx.state, _mirror_key(name))
        recorded = ctx.state.db.execute("SELECT 1 FROM playbook_processes WHERE key = ?",
                                        [_mirror_key(name)]).fetchone()
        if recorded and proc is None:
            raise StepFailed(f"mirror {name} is not running any more; see its log "
                             f"{ctx.state_path.parent / 'mirrors' / (name + '.log')}")
        lag, per, problems = mirror_lag(ctx, name, ends_cache if params.get("snapshot") else None, reader)
        if problems:
            raise StepFailed(f"mirror {name} has stopped partitions: {'; '.join(problems[:3])}")
        if lag <= max_lag:
            since = since or time.monotonic()
            if time.monotonic() - since >= hold:
                return StepResult(f"mirror {name} caught up: lag {lag}", {"lag": lag})
        else:
            since = None
        return None

    def behind() -> StepFailed:
        worst = sorted(per.items(), key=lambda kv: -kv[1])[:3]
        return StepFailed(f"mirror {name} lag {lag} > {max_lag} at the step's timeout "
                          f"(worst: {', '.join(f'{k} {v}' for k, v in worst)})", data={"lag": lag})

    return ctx.wait_until(caught_up, POLL, behind)
