"""The `offsets.sync` action: commit each consumer group's exactly translated offsets on the
receiving cluster, through `migrate.offset_maps.checkpoint` (with a route from
`migrate.offset_maps.route`), forward or back; in a rehearsal, into shadow groups.
"""

from __future__ import annotations

from migrate.errors import StepFailed
from migrate.mirror import registry
from migrate.playbooks.actions import ActionContext, Param, StepResult, action
from migrate.playbooks.cluster_support import POLL, shadow_mirror


def _shadow_offsets(params: dict, shadow) -> dict:
    params = shadow_mirror(params, shadow)
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
