"""Actions on clusters: probe, background mirrors, waits on lag and groups, parity, offsets.

Each action calls the piece of the tool that owns the work: the mirror runs as a child
`migrate mirror --follow` (so it outlives this process and a resumed run finds it), lag is
read as `migrate mirror status` reads it (state + partition ends from Fetch), group states
come from `migrate.groups`, offsets from `migrate.offset_maps.checkpoint` (through a route
from `migrate.offset_maps.route`), parity from `migrate validate` (exit 0 parity, 1
divergence, 2 could not run).  Every action is idempotent; waits poll until their condition
holds or the step's deadline passes.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import TYPE_CHECKING, cast

from migrate import kafka
from migrate.errors import StepFailed
from migrate.mirror import fleet, registry
from migrate.mirror.registry import MirrorRecord
from migrate.playbooks import processes
from migrate.playbooks.actions import ActionContext, Param, StepResult, action
from migrate.playbooks.local_actions import tail

if TYPE_CHECKING:
    from migrate.groups import GroupInfo

POLL = 0.2


def _mirror_key(name: str) -> str:
    return f"mirror:{name}"


def _shadow_mirror(params: dict, shadow) -> dict:
    for key in ("name", "reverse_mirror", "mirror"):
        if params.get(key):
            params[key] = shadow.mirror(params[key])
    return params


def _shadow_groups(params: dict, shadow) -> dict:
    if params.get("groups"):
        params["groups"] = [shadow.group(g) for g in params["groups"]]
    return params


def _deadline_passed(ctx: ActionContext) -> bool:
    return ctx.cancel.is_set() or (ctx.deadline is not None and time.monotonic() > ctx.deadline)


# --- probe ---------------------------------------------------------------------------------------


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
    from migrate.probe.store import load_latest, save_report

    profile = ctx.cluster(spec)
    report, how = None, "probed"
    if max_age > 0:
        stored = load_latest(ctx.state, spec, profile.bootstrap)
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


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _migrate(ctx: ActionContext, args: list[str], default_timeout: float) -> subprocess.CompletedProcess:
    from migrate.local.platforms import kill_with_parent
    from migrate.playbooks.local_actions import hook_env

    timeout = ctx.remaining(default_timeout) if ctx.deadline is not None else default_timeout
    try:
        # own session: a Ctrl-C meant for the playbook lets this step finish instead of killing it
        # and it dies with the playbook if the playbook's stop is abandoned (PR_SET_PDEATHSIG)
        return subprocess.run(ctx.migrate_command(*args), capture_output=True, text=True,
                              env=hook_env(ctx), timeout=max(timeout, 1.0), stdin=subprocess.DEVNULL,
                              start_new_session=True, preexec_fn=kill_with_parent)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise StepFailed(f"migrate {args[0]} did not finish within {timeout:.0f}s", tail(str(out))) from None


# --- mirrors -------------------------------------------------------------------------------------


def _shadow_mirror_start(params: dict, shadow) -> dict:
    params = _shadow_mirror(params, shadow)
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
            raise StepFailed(f"mirror {name} exited at start: {_last_line(processes.log_tail(proc))}",
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
    default_timeout=60.0, shadow=_shadow_mirror,
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
    default_timeout=600.0, shadow=lambda p, sh: {**_shadow_mirror(p, sh), "snapshot": True},
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


# --- groups --------------------------------------------------------------------------------------


@action(
    "groups.wait-inactive",
    Param("cluster", "str", required=True, doc="where the groups live"),
    Param("groups", "names", required=True, doc="consumer group ids"),
    summary="Wait until the groups have no active members on a cluster (state Empty or Dead).",
    default_timeout=300.0, shadow=_shadow_groups,
)
def run_groups_wait(ctx: ActionContext, params: dict) -> StepResult:
    from migrate import groups as kgroups

    profile = ctx.cluster(params["cluster"])
    active: dict = {}

    def inactive() -> StepResult | None:
        nonlocal active
        info = kgroups.describe(profile, params["groups"])
        active = {g: i.state for g, i in info.items() if i.active}
        if not active:
            states = ", ".join(f"{g}={info[g].state}" for g in params["groups"] if g in info)
            return StepResult(f"inactive on {profile.name}: {states}")
        return None

    return ctx.wait_until(inactive, POLL * 2, lambda: StepFailed(
        f"groups still active on {profile.name}: " + ", ".join(f"{g} ({s})" for g, s in sorted(active.items()))))


# --- parity --------------------------------------------------------------------------------------


@action(
    "validate",
    Param("mirror", "str", required=True, doc="the mirror whose topics to compare"),
    Param("source", "str", doc="source cluster (default: the mirror's)"),
    Param("target", "str", doc="target cluster (default: the mirror's)"),
    Param("until", "str", doc="compare records older than this (a duration like 10s, or a time)"),
    Param("until_step", "str", doc="compare records written before this step of the run finished"),
    Param("args", "list", doc="more `migrate validate` options"),
    summary="Parity gate: run `migrate validate` on the mirror; fails on any divergence.",
    default_timeout=900.0, shadow=_shadow_mirror,
)
def run_validate(ctx: ActionContext, params: dict) -> StepResult:
    record = registry.get(ctx.state, params["mirror"])
    if (record is None or not record.source) and not (params.get("source") and params.get("target")):
        raise StepFailed(f'no mirror named "{params["mirror"]}" in the state; nothing to validate')
    # record is None (or without a source) only when both clusters are given (refused above otherwise)
    args = ["validate", "--name", params["mirror"],
            "--source", params.get("source") or cast(MirrorRecord, record).source,
            "--target", params.get("target") or cast(MirrorRecord, record).target]
    if params.get("until"):
        args += ["--until", params["until"]]
    elif params.get("until_step"):
        args += ["--until", _step_finished(ctx, params["until_step"])]
    args += list(params.get("args") or [])
    proc = _migrate(ctx, args, default_timeout=900.0)
    text = tail(proc.stdout + ("\n" + proc.stderr if proc.stderr.strip() else ""))
    summary = text.strip().splitlines()[0] if text.strip() else ""
    if proc.returncode == 0:
        # the summary line again at the end: history shows a step's last line
        return StepResult(f"{text.rstrip()}\n{summary}", {"parity": True})
    if proc.returncode == 1:
        raise StepFailed(f"divergence found: {summary}", text, {"parity": False})
    raise StepFailed(f"validation could not run (exit {proc.returncode}): {_last_line(text)}", text)


def _step_finished(ctx: ActionContext, name: str) -> str:
    """When a step of this run finished: records written later (e.g. by producers moved to the
    target, which the mirror map rightly does not cover) are left out of the comparison."""
    row = ctx.state.db.execute("SELECT finished_at FROM playbook_steps WHERE run_id = ? AND name = ? "
                               "AND status = 'ok'", [ctx.run_id, name]).fetchone()
    if row is None or not row[0]:
        raise StepFailed(f"step '{name}' has not finished in run {ctx.run_id}; cannot bound the comparison")
    return row[0]


# --- offsets -------------------------------------------------------------------------------------


def _shadow_offsets(params: dict, shadow) -> dict:
    params = _shadow_mirror(params, shadow)
    if params.get("direction") == "reverse":
        # the rehearsed cutover wrote GROUP.rehearsal on the target: bring those back,
        # into GROUP.rehearsal on the source
        params["groups"] = [shadow.group(g) for g in params["groups"]]
    else:
        # read the production groups (read only), write their shadows on the target
        params["target_group_suffix"] = shadow.group_suffix
    return params


@action(
    "offsets.sync",
    Param("mirror", "str", required=True, doc="the mirror whose map translates"),
    Param("groups", "names", required=True, doc="consumer group ids"),
    Param("direction", "str", default="forward", choices=("forward", "reverse"),
          doc="forward: source groups to target; reverse: target groups back to source"),
    Param("reverse_mirror", "str", doc="for reverse: the mirror from target back to source"),
    Param("source", "str", doc="the mirror's source (default: recorded)"),
    Param("target", "str", doc="the mirror's target (default: recorded)"),
    Param("target_group_suffix", "str", doc="commit into GROUP+suffix instead (rehearsals)"),
    summary="Commit each group's exactly translated offsets on the receiving cluster.",
    default_timeout=300.0, shadow=_shadow_offsets,
)
def run_offsets_sync(ctx: ActionContext, params: dict) -> StepResult:
    from migrate.offset_maps import checkpoint
    from migrate.offset_maps import route as offroute

    reverse = params["direction"] == "reverse"
    route = offroute.route_for(ctx.state, params["mirror"], lambda spec, role: ctx.cluster(spec) if spec else
                               _recorded(ctx, params["mirror"], role), params.get("source"), params.get("target"),
                               reverse, params.get("reverse_mirror"), "none")
    suffix = params.get("target_group_suffix") or ""
    if suffix:
        return _sync_into_shadow(ctx, route, params["groups"], suffix)
    results = checkpoint.sync_groups(route, params["groups"])
    text = "\n".join(f"{r.group}: {r.outcome}{' (' + r.reason + ')' if r.reason else ''}" for r in results)
    moved = sum(1 for r in results for c in r.changes if c.action in ("commit", "rewind"))
    refused = [r for r in results if r.outcome == "refused"]
    if refused:
        raise StepFailed("; ".join(r.reason for r in refused), text)
    return StepResult(text + f"\n{moved} partition offsets committed on {route.receiving.name}",
                      {"groups": len(results), "partitions": moved})


def _reload_route(ctx: ActionContext, route):
    """The same route with the maps as they are now (the mirror keeps extending them)."""
    from migrate.offset_maps import route as offroute

    return offroute.route_for(ctx.state, route.forward.name, lambda spec, role: ctx.cluster(spec) if spec else
                              _recorded(ctx, route.forward.name, role), None, None, False, None, "none")


def _recorded(ctx: ActionContext, mirror: str, role: str):
    record = registry.get(ctx.state, mirror)
    if record is None or not record.source:
        raise StepFailed(f'no mirror named "{mirror}" in the state')
    return ctx.cluster(record.source if role == "source" else record.target)


def _sync_into_shadow(ctx: ActionContext, route, groups: list[str], suffix: str) -> StepResult:
    """Rehearsal: translate production groups (read only) and commit into GROUP+suffix.

    Production consumers keep running in a rehearsal, so their offsets move on: take one
    snapshot of them and wait until the shadow mirror covers it (it is "not yet" mirrored
    for a moment), rather than chase offsets that keep moving.
    """
    from migrate import groups as kgroups

    snapshot = kgroups.committed(route.sending, groups)
    plans: dict[str, dict[tuple[str, int], int]] = {}
    bad: list[str] = []
    looked = False

    def translatable() -> bool:
        nonlocal route, plans, bad, looked
        if looked:
            route = _reload_route(ctx, route)
        looked = True
        plans, bad = {}, []
        for group, offsets in snapshot.items():
            for (topic, partition), committed in sorted(offsets.items()):
                if not route.covers(topic):
                    continue
                routed = route.translate(topic, partition, committed)
                tr = routed.translation
                if not tr.exact or tr.offset is None:
                    bad.append(f"{group} {topic}[{partition}]@{committed} {tr.status}")
                else:
                    plans.setdefault(group + suffix, {})[(routed.to_topic, partition)] = tr.offset
        return not bad

    ctx.wait_until(translatable, POLL * 2, lambda: StepFailed("not exactly translatable: " + "; ".join(bad[:5])))
    outcome = kgroups.commit(route.receiving, plans)
    active = [g for g, why in outcome.items() if why]
    if active:
        raise StepFailed(f"shadow groups refused: {', '.join(active)}")
    count = sum(len(v) for v in plans.values())
    return StepResult(f"rehearsal: {count} partition offsets committed into {', '.join(sorted(plans))}",
                      {"groups": len(plans), "partitions": count})


# --- assert --------------------------------------------------------------------------------------


def _shadow_assert(params: dict, shadow) -> dict:
    if isinstance(params.get("lag"), dict) and params["lag"].get("mirror"):
        params["lag"] = {**params["lag"], "mirror": shadow.mirror(params["lag"]["mirror"])}
    if isinstance(params.get("groups"), dict) and params["groups"].get("groups"):
        gs = params["groups"]["groups"]
        gs = [gs] if isinstance(gs, str) else gs
        params["groups"] = {**params["groups"], "groups": [shadow.group(g) for g in gs]}
    if isinstance(params.get("parity"), dict) and params["parity"].get("mirror"):
        params["parity"] = {**params["parity"], "mirror": shadow.mirror(params["parity"]["mirror"])}
    return params


def _assert_check(params: dict) -> str | None:
    given = [k for k in ("equals", "lag", "groups", "parity", "file_exists") if params.get(k) is not None]
    if not given:
        return "assert needs at least one of: equals, lag, groups, parity, file_exists"
    if "equals" in params and (not isinstance(params["equals"], list) or len(params["equals"]) != 2):
        return "assert 'equals' takes a list of two values"
    for key, needed in (("lag", "mirror"), ("groups", "cluster"), ("parity", "mirror")):
        if params.get(key) is not None and (not isinstance(params[key], dict) or needed not in params[key]):
            return f"assert '{key}' takes a mapping with '{needed}'"
    return None


@action(
    "assert",
    Param("equals", "list", doc="two values that must be equal"),
    Param("lag", "map", doc="{mirror: NAME, max: N}: the mirror's lag is at most N"),
    Param("groups", "map", doc="{cluster: C, groups: [..], state: inactive|active}"),
    Param("parity", "map", doc="{mirror: NAME}: a validation of the mirror finds parity"),
    Param("file_exists", "str", doc="a path that must exist"),
    Param("message", "str", doc="what the assertion means, for the journal"),
    summary="Check a predicate now (lag, parity, group state, equality); fails if it does not hold.",
    default_timeout=900.0, shadow=_shadow_assert, check=_assert_check,
)
def run_assert(ctx: ActionContext, params: dict) -> StepResult:
    from pathlib import Path

    held = []
    if params.get("equals") is not None:
        a, b = params["equals"]
        if a != b:
            raise StepFailed(f"{a!r} != {b!r}" + (f" ({params['message']})" if params.get("message") else ""))
        held.append(f"{a!r} == {b!r}")
    if params.get("file_exists"):
        if not Path(params["file_exists"]).exists():
            raise StepFailed(f"{params['file_exists']} does not exist")
        held.append(f"{params['file_exists']} exists")
    if params.get("lag") is not None:
        spec = params["lag"]
        limit = int(spec.get("max", 0))
        lag, _per, problems = mirror_lag(ctx, spec["mirror"])
        if problems or lag > limit:
            raise StepFailed(f"mirror {spec['mirror']} lag {lag} > {limit}" + (f"; {problems[0]}" if problems else ""))
        held.append(f"lag {lag} <= {limit}")
    if params.get("groups") is not None:
        from migrate import groups as kgroups

        spec = params["groups"]
        names = spec.get("groups") or []
        names = [names] if isinstance(names, str) else names
        want = spec.get("state", "inactive")
        info = kgroups.describe(ctx.cluster(spec["cluster"]), names)
        wrong = [g for g in names if (info[g].active if want == "inactive" else not info[g].active)]
        if wrong:
            raise StepFailed(f"groups not {want} on {spec['cluster']}: {', '.join(wrong)}")
        held.append(f"groups {want}")
    if params.get("parity") is not None:
        run_validate(ctx, {"mirror": params["parity"]["mirror"], "args": params["parity"].get("args") or []})
        held.append(f"parity on {params['parity']['mirror']}")
    return StepResult("; ".join(held))

