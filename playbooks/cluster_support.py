"""What the actions on clusters share: the poll interval of their waits, the rehearsal
rewrite of mirror names, and running our own CLI as a child for a step.
"""

from __future__ import annotations

import subprocess

from migrate.errors import StepFailed
from migrate.playbooks.actions import ActionContext
from migrate.playbooks.local_actions import tail

POLL = 0.2


def shadow_mirror(params: dict, shadow) -> dict:
    for key in ("name", "reverse_mirror", "mirror"):
        if params.get(key):
            params[key] = shadow.mirror(params[key])
    return params


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def call_migrate(ctx: ActionContext, args: list[str], default_timeout: float) -> subprocess.CompletedProcess:
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
