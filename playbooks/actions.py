"""The action registry: each built-in action's parameter schema and the function that runs it.

An action is registered once with `@action(name, params, ...)`.  The loader checks every
step against the schema before anything runs (unknown parameter, missing one, wrong type);
the runner calls the function with an `ActionContext` and the step's checked parameters.
In a rehearsal the runner first passes the parameters through the action's `shadow`
rewrite (see `shadow.py`), so the same plan runs against the real clusters on shadow
groups, topics and mirrors.

Every action must be idempotent: a resumed run repeats the step that did not finish.
An action reports failure by raising `migrate.errors.StepFailed`; anything else it raises is a bug or an
environment problem and fails the step the same way, with its message.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

TYPES = ("str", "int", "float", "bool", "list", "names", "map", "any")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool = False
    default: Any = None
    doc: str = ""
    choices: tuple[str, ...] = ()
    regex: bool = False  # each value must compile as a regular expression (checked before anything runs)


@dataclass(frozen=True)
class StepResult:
    output: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ActionContext:
    """What an action may use: the run, the state, the clusters, the clock it must respect."""

    run_id: str
    playbook: str
    step_name: str
    state: Any  # migrate.state.State
    config: Any  # migrate.config.Config
    state_path: Path
    config_path: Path
    rehearsal: bool = False
    shadow: Any = None  # shadow.Shadow in a rehearsal
    deadline: float | None = None  # time.monotonic() value the step must finish by
    assume_yes: bool = False
    approver: Callable[[str], bool] | None = None  # a terminal prompt, given by the CLI
    cancel: threading.Event = field(default_factory=threading.Event)  # second Ctrl-C: give up now
    vars: Mapping[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda line: None

    def remaining(self, default: float) -> float:
        import time

        if self.deadline is None:
            return default
        return max(0.0, self.deadline - time.monotonic())

    def wait_until(self, condition: Callable[[], Any], interval: float,
                   on_timeout: Callable[[], BaseException]) -> Any:
        """`condition()`'s first truthy value, polled every `interval` seconds; at the step's
        deadline, or once the run cancels its waits (a stop, at half its grace), raises
        `on_timeout()` (see `migrate.waiting.wait_until`)."""
        from migrate.waiting import wait_until

        timeout = None if self.deadline is None else self.remaining(0.0)
        return wait_until(condition, timeout, interval, on_timeout, cancel=self.cancel)

    def cluster(self, spec: str):
        from migrate.config import resolve_cluster

        return resolve_cluster(spec, self.config, "cluster")

    def migrate_command(self, *args: str) -> list[str]:
        """How to call our own CLI in a child process, on the same config and state."""
        import sys

        return [sys.executable, "-m", "migrate", "--config", str(self.config_path),
                "--state", str(self.state_path), *args]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    params: tuple[Param, ...]
    run: Callable[[ActionContext, dict], StepResult]
    summary: str
    default_timeout: float | None = None
    shadow: Callable[[dict, Any], dict] | None = None
    check: Callable[[dict], str | None] | None = None  # cross-parameter rule; returns a message

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


REGISTRY: dict[str, ActionSpec] = {}


def action(name: str, *params: Param, summary: str, default_timeout: float | None = None,
           shadow: Callable[[dict, Any], dict] | None = None,
           check: Callable[[dict], str | None] | None = None) -> Callable:
    def register(fn: Callable[[ActionContext, dict], StepResult]) -> Callable:
        REGISTRY[name] = ActionSpec(name, tuple(params), fn, summary, default_timeout, shadow, check)
        return fn

    return register


def registry() -> dict[str, ActionSpec]:
    """Every built-in action, importing the modules that register them."""
    from migrate.playbooks import cluster_actions, local_actions  # noqa: F401  (registration)

    return REGISTRY
