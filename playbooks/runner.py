"""Running a playbook: steps in order, journaled, with retries, timeouts and failure policy.

`Runner.run` starts a new run, `resume` continues one that was interrupted, killed or failed
(from the step that did not finish: actions are idempotent, so repeating it is safe), and
`rehearse` runs the same plan with shadow names (see `shadow.py`), then stops what the
rehearsal started and removes its shadow topics.

A stop request (the CLI's Ctrl-C) is honoured between steps: the current step finishes and
is journaled, the run is marked `interrupted`, and `resume` picks it up.  A step that fails
follows its `on_failure`: `abort` ends the run as failed, `continue` records the failure
and goes on, `rollback` runs the playbook's rollback steps and ends the run `rolled-back`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from migrate.config import Config, redact_text
from migrate.errors import MigrateError, PlaybookError, StepFailed, UsageError
from migrate.playbooks import processes
from migrate.playbooks.actions import ActionContext, StepResult, registry
from migrate.playbooks.journal import FINISHED_OK, Journal, StepRow, new_run_id, parse_iso
from migrate.playbooks.loader import load_playbook
from migrate.playbooks.model import Playbook, Step
from migrate.playbooks.shadow import Shadow, tag_of
from migrate.playbooks.variables import MissingVariables, missing_message

log = logging.getLogger("migrate.playbooks")
SHADOW_TAG_MARK = ".rh-{}"  # in a shadow mirror's name


@dataclass
class RunOptions:
    assume_yes: bool = False
    approver: Callable[[str], bool] | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    on_event: Callable[[str, Step | None, dict], None] | None = None  # step None: a "playbook" event
    keep_shadow: bool = False


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    playbook: str
    mode: str
    status: str
    steps: tuple[StepRow, ...]
    downtime_s: float | None
    duration_s: float | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class RehearsalReport:
    outcomes: tuple[RunOutcome, ...]
    shadow_prefix: str
    cleaned: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def downtime_s(self) -> float | None:
        return self.outcomes[0].downtime_s if self.outcomes else None


class Runner:
    def __init__(self, state, config: Config, state_path: Path, config_path: Path,
                 options: RunOptions | None = None):
        self.state = state
        self.config = config
        self.state_path = Path(state_path)
        self.config_path = Path(config_path)
        self.options = options or RunOptions()
        self.journal = Journal(state)

    # --- entry points --------------------------------------------------------------------------

    def load(self, path: str | Path, overrides: Mapping[str, str] | None = None, run_id: str = "<run-id>",
             rehearsal: bool = False, strict: bool = True) -> Playbook:
        return load_playbook(path, overrides, self.config,
                             builtins={"run_id": run_id, "rehearsal": "1" if rehearsal else "0"},
                             strict_overrides=strict)

    def run(self, path: str | Path, overrides: Mapping[str, str] | None = None) -> RunOutcome:
        run_id = new_run_id()
        playbook = self.load(path, overrides, run_id)
        self.journal.create_run(run_id, playbook, "run", overrides=dict(overrides or {}))
        return self._execute(run_id, playbook, shadow=None)

    def resume(self, run_id: str) -> RunOutcome:
        run = self.journal.run(run_id)
        if run.status in ("succeeded", "rolled-back"):
            raise UsageError(f"run {run_id} already ended ({run.status}); nothing to resume")
        shadow = Shadow(run.shadow_tag) if run.mode == "rehearsal" and run.shadow_tag else None
        playbook = self._reload(run_id, shadow)
        self.journal.claim(run_id)
        return self._execute(run_id, playbook, shadow=shadow)

    def _reload(self, run_id: str, shadow: Shadow | None) -> Playbook:
        """The run's playbook, resolved again (profile secrets are never stored, so the stored
        plan cannot be run as is), and refused if the file changed since the run started."""
        stored = self.journal.plan(run_id)
        try:
            playbook = self.load(stored.path, self.journal.overrides(run_id), run_id,
                                 rehearsal=shadow is not None, strict=False)
        except UsageError as exc:
            raise UsageError(f"cannot resume run {run_id}: {exc}") from exc
        if playbook.digest != stored.digest:
            raise UsageError(f"cannot resume run {run_id}: {stored.path} changed since the run started; "
                             "restore it, or start a new run")
        return shadowed(playbook, shadow) if shadow is not None else playbook

    def rehearse(self, path: str | Path, overrides: Mapping[str, str] | None = None,
                 rollback_path: str | Path | None = None) -> RehearsalReport:
        """Rehearse a playbook (and its rollback); both are loaded and checked before anything runs."""
        run_id = new_run_id()
        shadow = Shadow(tag_of(run_id))
        ids = [run_id]
        if rollback_path is not None:
            second = new_run_id()
            while second == run_id:
                second = new_run_id()
            ids.append(second)
        paths = [path] + ([rollback_path] if rollback_path is not None else [])
        plans = [(rid, shadowed(playbook, shadow)) for rid, playbook in
                 zip(ids, self.load_all(paths, overrides, ids, rehearsal=True))]
        outcomes: list[RunOutcome] = []
        try:
            for i, (rid, playbook) in enumerate(plans):
                if outcomes and (not outcomes[-1].ok or self.options.stop_requested.is_set()):
                    break
                self.journal.create_run(rid, playbook, "rehearsal", shadow_tag=shadow.run_tag,
                                        parent=run_id if i else None, overrides=dict(overrides or {}))
                self._event("playbook", None, {"playbook": playbook.name, "run_id": rid, "mode": "rehearsal"})
                outcomes.append(self._execute(rid, playbook, shadow=shadow))
        finally:  # also after a failure or an exception: a rehearsal leaves nothing behind
            started = [rid for rid, _ in plans if self.journal.has_run(rid)]
            cleaned = self.clean_rehearsal(started, shadow) if started else []
        return RehearsalReport(tuple(outcomes), shadow.topic_prefix, tuple(cleaned))

    def load_all(self, paths: list[str | Path], overrides: Mapping[str, Any] | None, run_ids: list[str],
                 rehearsal: bool = False) -> list[Playbook]:
        """Load playbooks that share one set of variables; every missing variable of all of them at once."""
        loaded, missing = [], []
        for path, rid in zip(paths, run_ids):
            try:
                loaded.append(self.load(path, overrides, rid, rehearsal=rehearsal))
            except MissingVariables as exc:
                missing.append(exc)
        if len(missing) == 1:
            raise missing[0]
        if missing:
            names = list(dict.fromkeys(n for m in missing for n in m.names))
            empty = [n for m in missing for n in m.empty]
            raise PlaybookError(missing_message(", ".join(f"{m.shown}:{m.line}" for m in missing), names, empty))
        return loaded

    # --- the loop --------------------------------------------------------------------------------

    def _execute(self, run_id: str, playbook: Playbook, shadow: Shadow | None) -> RunOutcome:
        done = self.journal.step_status(run_id)
        in_rollback = any(phase == "rollback" for phase, _ in done)
        status, error = "succeeded", None
        if not in_rollback:
            status, error, failed = self._phase(run_id, playbook, "main", done, shadow)
            if status == "rollback":
                in_rollback = True
                log.warning("step %s failed; rolling back", failed.name if failed else "?")
        if in_rollback:
            main_error = error or self._failed_main_step(run_id)
            status, error, _ = self._phase(run_id, playbook, "rollback", done, shadow)
            if status == "succeeded":
                status, error = "rolled-back", main_error
            elif status == "failed":
                status = "rollback-failed"
        self.journal.finish_run(run_id, status, error)
        return self.outcome(run_id)

    def _failed_main_step(self, run_id: str) -> str | None:
        """On a resumed rollback: which main step failed and why, from the journal."""
        for step in self.journal.steps(run_id):
            if step.phase == "main" and step.status == "failed":
                return f"step '{step.name}' failed: {step.error}"
        return None

    def _phase(self, run_id, playbook: Playbook, phase: str, done, shadow) -> tuple[str, str | None, Step | None]:
        steps = playbook.phase_steps(phase)
        for step in steps:
            if done.get((phase, step.index)) in FINISHED_OK:
                continue
            if self.options.stop_requested.is_set():
                return "interrupted", "stopped on request before step " + repr(step.name), step
            ok, message = self._run_step(run_id, playbook, step, shadow, len(steps))
            if ok:
                continue
            policy = "abort" if phase == "rollback" and step.on_failure == "rollback" else step.on_failure
            if policy == "continue":
                continue
            error = f"step '{step.name}' failed: {message}"
            if policy == "rollback":
                return "rollback", error, step
            return "failed", error, step
        return "succeeded", None, None

    def _run_step(self, run_id: str, playbook: Playbook, step: Step, shadow, total: int) -> tuple[bool, str]:
        spec = registry()[step.action]
        attempts = step.retries + 1
        started = time.monotonic()
        self.journal.step_started(run_id, step, 1)
        self._event("start", step, {"total": total})
        message, output, data = "", "", {}
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self.journal.step_attempt(run_id, step, attempt)
                time.sleep(step.retry_delay)
            ctx = ActionContext(
                run_id=run_id, playbook=playbook.name, step_name=step.name, state=self.state,
                config=self.config, state_path=self.state_path, config_path=self.config_path,
                rehearsal=shadow is not None, shadow=shadow,
                deadline=time.monotonic() + step.timeout if step.timeout else None,
                assume_yes=self.options.assume_yes, approver=self.options.approver,
                cancel=self.options.cancel, vars=dict(playbook.vars),
                # the default binds this step; mypy cannot infer a lambda with one (mypy#15459)
                log=lambda line, s=step: self._event("log", s, {"line": line}),  # type: ignore[misc]
            )
            try:
                result = spec.run(ctx, dict(step.params))
                if not isinstance(result, StepResult):
                    result = StepResult(str(result or ""))
            except StepFailed as exc:
                message, output, data = str(exc), exc.output, exc.data
            except MigrateError as exc:
                message, output, data = str(exc), "", {}
            except Exception as exc:  # an action bug must still end the step, journaled
                log.exception("action %s raised", step.action)
                message, output, data = f"{type(exc).__name__}: {exc}", "", {}
            else:
                duration = time.monotonic() - started
                self.journal.step_finished(run_id, step, "ok", duration, result.output, None, dict(result.data))
                self._event("end", step, {"status": "ok", "duration": duration, "output": result.output})
                return True, ""
            message = redact_text(message)
            if self.options.cancel.is_set():
                break
        duration = time.monotonic() - started
        status = "continued" if step.on_failure == "continue" else "failed"
        self.journal.step_finished(run_id, step, status, duration, output, message, data)
        self._event("end", step, {"status": status, "duration": duration, "error": message, "output": output})
        return False, message

    def _event(self, kind: str, step: Step | None, info: dict) -> None:
        if self.options.on_event:
            self.options.on_event(kind, step, info)

    # --- results ---------------------------------------------------------------------------------

    def outcome(self, run_id: str) -> RunOutcome:
        run = self.journal.run(run_id)
        steps = self.journal.steps(run_id)
        plan = self.journal.plan(run_id)
        started, finished = parse_iso(run.started_at), parse_iso(run.finished_at)
        return RunOutcome(run.id, run.playbook, run.mode, self.journal.effective_status(run), tuple(steps),
                          downtime(plan, steps), round(finished - started, 3) if started and finished else None,
                          run.error)

    def clean_rehearsal(self, run_ids: list[str], shadow: Shadow) -> list[str]:
        """Stop the rehearsal's background mirrors; drop its shadow topics and groups on both clusters.

        Groups: the shadow consumer groups (`<group>.rehearsal`) and the consumer groups of the
        shadow mirrors (`migrate.mirror.<mirror>.rh-<id>`).  Production names are never touched:
        only names carrying the rehearsal's marks are deleted.  `--keep-shadow` keeps topics and groups.
        """
        for run_id in run_ids:
            for key in processes.all_for_run(self.state, run_id):
                processes.stop(self.state, key)
        if self.options.keep_shadow:
            return []
        plans = [self.journal.plan(rid) for rid in run_ids]
        groups = shadow_groups(plans, shadow)
        removed: list[str] = []
        specs = {plan.vars.get(role) for plan in plans for role in ("source", "target")}
        for spec in sorted(s for s in specs if isinstance(s, str) and s):
            removed.extend(self._clean_cluster(spec, shadow, groups))
        return removed

    def _clean_cluster(self, spec: str, shadow: Shadow, groups: list[str]) -> list[str]:
        from migrate import groups as kgroups
        from migrate import kafka

        removed: list[str] = []
        try:
            profile = self.config_cluster(spec)
            # groups first: Tansu (measured) listed no group right after the topics a group had
            # committed on were deleted, and an unlisted group cannot be told from an absent one
            removed.extend(f"{profile.name}:group {g}" for g in kgroups.delete(profile, groups))
            names = [t for t in kafka.list_topics(profile)
                     if t.startswith(shadow.topic_prefix) or f".rh-{shadow.run_tag}." in t]
            kafka.delete_topics(profile, names)
            removed.extend(f"{profile.name}:{n}" for n in names)
        except MigrateError as exc:
            log.warning("could not remove the rehearsal's topics and groups on %s: %s", spec, exc)
        return removed

    def cleanup(self, run_id: str) -> list[str]:
        """`playbook cleanup RUN`: what a killed rehearsal left, for it and its rollback half."""
        run = self.journal.run(run_id)
        if run.mode != "rehearsal" or not run.shadow_tag:
            raise UsageError(f"run {run_id} is not a rehearsal; cleanup removes only what a rehearsal created")
        if self.journal.effective_status(run) == "running":
            raise UsageError(f"rehearsal {run_id} is still running (pid {run.pid}); stop it first")
        family = [r.id for r in self.journal.runs(limit=10_000)
                  if r.shadow_tag == run.shadow_tag and r.mode == "rehearsal"]
        return self.clean_rehearsal(sorted(family), Shadow(run.shadow_tag))

    def config_cluster(self, spec: str):
        from migrate.config import resolve_cluster

        return resolve_cluster(spec, self.config, "cluster")


def shadow_groups(plans: list[Playbook], shadow: Shadow) -> list[str]:
    """Every consumer group a rehearsal of these (shadowed) plans may have created."""
    groups: list[str] = []
    for plan in plans:
        for step in list(plan.steps) + list(plan.rollback_steps):
            if step.action == "mirror.start" and SHADOW_TAG_MARK.format(shadow.run_tag) in str(step.params.get("name")):
                groups.append(f"migrate.mirror.{step.params['name']}")
            names = step.params.get("groups")
            if isinstance(names, list):
                groups.extend(shadow.group(str(g)) for g in names)
    return list(dict.fromkeys(groups))


def shadowed(playbook: Playbook, shadow: Shadow) -> Playbook:
    """The same plan with every production name rewritten to its rehearsal shadow."""
    actions = registry()

    def rewrite(step: Step) -> Step:
        spec = actions[step.action]
        if spec.shadow is None:
            return step
        return replace(step, params=spec.shadow(dict(step.params), shadow))

    return replace(playbook, steps=tuple(rewrite(s) for s in playbook.steps),
                   rollback_steps=tuple(rewrite(s) for s in playbook.rollback_steps))


def downtime(plan: Playbook, steps: list[StepRow] | tuple[StepRow, ...]) -> float | None:
    """Seconds from the start of the step marked `downtime: start` to the end of `downtime: end`."""
    start = next((s for s in plan.steps if s.downtime == "start"), None)
    end = next((s for s in plan.steps if s.downtime == "end"), None)
    if start is None or end is None:
        return None
    rows = {(s.phase, s.idx): s for s in steps}
    a, b = rows.get(("main", start.index)), rows.get(("main", end.index))
    if a is None or b is None or b.status != "ok":
        return None
    begun, ended = parse_iso(a.started_at), parse_iso(b.finished_at)
    return round(ended - begun, 3) if begun is not None and ended is not None else None


def plan_rows(playbook: Playbook) -> list[dict[str, Any]]:
    """The resolved steps, in order, as rows for `playbook plan` (secrets redacted)."""
    import json

    rows = []
    for step in list(playbook.steps) + list(playbook.rollback_steps):
        rows.append({
            "phase": step.phase, "step": step.index, "name": step.name, "action": step.action,
            "with": redact_text(json.dumps(dict(step.params), sort_keys=True, default=str)),
            "timeout": step.timeout, "retries": step.retries, "on_failure": step.on_failure,
            "downtime": step.downtime or "",
        })
    return rows
