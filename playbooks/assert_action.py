"""The `assert` action: check a predicate now (two values equal, a file exists, a mirror's
lag, consumer groups' state, parity) and fail the step if it does not hold.
"""

from __future__ import annotations

from migrate.errors import StepFailed
from migrate.playbooks.actions import ActionContext, Param, StepResult, action
from migrate.playbooks.mirror_actions import mirror_lag
from migrate.playbooks.parity_action import run_validate


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
