"""Actions that need no cluster: `exec` (a shell hook), `approve` (a human gate), `sleep`.

Hooks run in their own session so that a Ctrl-C meant for the playbook does not kill a
half-done hook (the runner stops cleanly after the step instead); a hook past its timeout
is ended with its whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from migrate import shutdown
from migrate.config import redact_text
from migrate.errors import StepFailed
from migrate.playbooks.actions import ActionContext, Param, StepResult, action

OUTPUT_TAIL = 4000


def hook_env(ctx: ActionContext, extra: dict | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "MIGRATE_RUN_ID": ctx.run_id,
        "MIGRATE_PLAYBOOK": ctx.playbook,
        "MIGRATE_STEP": ctx.step_name,
        "MIGRATE_REHEARSAL": "1" if ctx.rehearsal else "0",
        "MIGRATE_STATE": str(ctx.state_path),
        "MIGRATE_CONFIG": str(ctx.config_path),
    })
    if ctx.shadow is not None:
        env.update(ctx.shadow.env())
    for role in ("source", "target"):
        spec = ctx.vars.get(role)
        if isinstance(spec, str) and spec:
            try:
                env[f"MIGRATE_{role.upper()}_BOOTSTRAP"] = ctx.cluster(spec).bootstrap
            except Exception:  # a hook may run where a profile is missing; it just lacks the variable
                pass
    for key, value in (extra or {}).items():
        env[str(key)] = "" if value is None else str(value)
    return env


def tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    text = redact_text(text)
    return text if len(text) <= limit else "..." + text[-limit:]


@action(
    "exec",
    Param("command", "str", required=True, doc="a shell command"),
    Param("env", "map", doc="extra environment variables"),
    Param("cwd", "str", doc="working directory"),
    summary="Run a shell hook with MIGRATE_* variables (run id, rehearsal flag, bootstraps).",
    default_timeout=600.0,
)
def run_exec(ctx: ActionContext, params: dict) -> StepResult:
    env = hook_env(ctx, params.get("env"))
    timeout = ctx.remaining(600.0) if ctx.deadline is not None else None
    proc = subprocess.Popen(params["command"], shell=True, cwd=params.get("cwd") or None, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    shutdown.adopt(proc.pid, own_group=True)  # an abandoned stop of the playbook kills it
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        raise StepFailed(f"hook did not finish within {timeout:.0f}s and was stopped",
                         tail(out.decode(errors="replace"))) from None
    shutdown.release(proc.pid)
    text = tail(out.decode(errors="replace"))
    if proc.returncode != 0:
        last = text.strip().splitlines()[-1] if text.strip() else ""
        raise StepFailed(f"hook exited with code {proc.returncode}" + (f": {last}" if last else ""), text)
    return StepResult(text, {"exit_code": 0})


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


@action(
    "sleep",
    Param("seconds", "float", required=True, doc="how long, e.g. 5 or 5s"),
    summary="Wait a fixed time (a settle period; never use it to synchronise).",
)
def run_sleep(ctx: ActionContext, params: dict) -> StepResult:
    seconds = float(params["seconds"])
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if ctx.cancel.is_set():
            raise StepFailed("cancelled")
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))
    return StepResult(f"slept {seconds:g}s")


def approval_file(ctx: ActionContext, params: dict) -> Path:
    if params.get("file"):
        return Path(params["file"])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ctx.step_name)
    return ctx.state_path.parent / "approvals" / f"{ctx.run_id}.{safe}"


@action(
    "approve",
    Param("message", "str", default="continue?", doc="what the human approves"),
    Param("file", "str", doc="approval file to wait for when not on a terminal"),
    summary="A human gate: a terminal prompt, --yes, or an approval file (written by someone else).",
    default_timeout=3600.0,
)
def run_approve(ctx: ActionContext, params: dict) -> StepResult:
    message = params.get("message") or "continue?"
    if ctx.rehearsal:
        return StepResult(f"rehearsal: auto-approved ({message})")
    if ctx.assume_yes:
        return StepResult(f"approved by --yes ({message})")
    path = approval_file(ctx, params)
    if ctx.approver is not None:
        if ctx.approver(message):
            return StepResult(f"approved at the terminal ({message})")
        raise StepFailed(f"not approved at the terminal ({message})")
    ctx.log(f"waiting for approval: create {path} to approve ({message})")
    ctx.wait_until(path.exists, 0.2, lambda: StepFailed(
        "cancelled while waiting for approval" if ctx.cancel.is_set()
        else f"no approval within the step's timeout (create {path} to approve)"))
    return StepResult(f"approved by file {path} ({message})")
