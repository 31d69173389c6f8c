"""The values of a playbook once loaded: frozen, resolved, ready to plan or to run.

A `Playbook` is what `loader.load_playbook` returns after every `${var}` is substituted and
every step is checked against its action's schema; nothing here touches a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

ON_FAILURE = ("abort", "rollback", "continue")
DOWNTIME_MARKS = ("start", "end")


@dataclass(frozen=True)
class Step:
    index: int  # position in its phase, from 1
    name: str
    action: str
    params: Mapping[str, Any]
    timeout: float | None = None  # seconds; None = the action's default
    retries: int = 0
    retry_delay: float = 1.0
    on_failure: str = "abort"
    downtime: str | None = None  # "start" / "end": the consumer downtime window's edges
    line: int = 0  # line of the step in its file, for messages
    phase: str = "main"  # "main" or "rollback"

    def describe(self) -> str:
        return f"step {self.index} '{self.name}' ({self.action})"


@dataclass(frozen=True)
class Playbook:
    name: str
    path: str
    vars: Mapping[str, str]
    steps: tuple[Step, ...]
    rollback_steps: tuple[Step, ...] = ()
    description: str = ""
    digest: str = ""  # sha256 of the file text, to notice a changed file on resume
    secret_values: tuple[str, ...] = field(default=(), repr=False)

    def phase_steps(self, phase: str) -> tuple[Step, ...]:
        return self.steps if phase == "main" else self.rollback_steps
