"""The `groups.wait-inactive` action: wait until consumer groups have no active members
(their state, from `migrate.groups`, is Empty or Dead), e.g. once producers and consumers
were told to stop before a cutover.
"""

from __future__ import annotations

from migrate.errors import StepFailed
from migrate.playbooks.actions import ActionContext, Param, StepResult, action
from migrate.playbooks.cluster_support import POLL


def _shadow_groups(params: dict, shadow) -> dict:
    if params.get("groups"):
        params["groups"] = [shadow.group(g) for g in params["groups"]]
    return params


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
