"""The `validate` action, the parity gate: `migrate validate` on a mirror's topics, as a
child (exit 0 parity, 1 divergence, 2 could not run); optionally bounded to records
written before a step of this run finished.
"""

from __future__ import annotations

from typing import cast

from migrate.errors import StepFailed
from migrate.mirror import registry
from migrate.mirror.registry import MirrorRecord
from migrate.playbooks.actions import ActionContext, Param, StepResult, action
from migrate.playbooks.cluster_support import call_migrate, last_line, shadow_mirror
from migrate.playbooks.local_actions import tail


@action(
    "validate",
    Param("mirror", "str", required=True, doc="the mirror whose topics to compare"),
    Param("source", "str", doc="source cluster (default: the mirror's)"),
    Param("target", "str", doc="target cluster (default: the mirror's)"),
    Param("until", "str", doc="compare records older than this (a duration like 10s, or a time)"),
    Param("until_step", "str", doc="compare records written before this step of the run finished"),
    Param("args", "list", doc="more `migrate validate` options"),
    summary="Parity gate: run `migrate validate` on the mirror; fails on any divergence.",
    default_timeout=900.0, shadow=shadow_mirror,
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
    proc = call_migrate(ctx, args, default_timeout=900.0)
    text = tail(proc.stdout + ("\n" + proc.stderr if proc.stderr.strip() else ""))
    summary = text.strip().splitlines()[0] if text.strip() else ""
    if proc.returncode == 0:
        # the summary line again at the end: history shows a step's last line
        return StepResult(f"{text.rstrip()}\n{summary}", {"parity": True})
    if proc.returncode == 1:
        raise StepFailed(f"divergence found: {summary}", text, {"parity": False})
    raise StepFailed(f"validation could not run (exit {proc.returncode}): {last_line(text)}", text)


def _step_finished(ctx: ActionContext, name: str) -> str:
    """When a step of this run finished: records written later (e.g. by producers moved to the
    target, which the mirror map rightly does not cover) are left out of the comparison."""
    row = ctx.state.db.execute("SELECT finished_at FROM playbook_steps WHERE run_id = ? AND name = ? "
                               "AND status = 'ok'", [ctx.run_id, name]).fetchone()
    if row is None or not row[0]:
        raise StepFailed(f"step '{name}' has not finished in run {ctx.run_id}; cannot bound the comparison")
    return row[0]
