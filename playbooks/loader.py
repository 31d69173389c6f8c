"""Reading a playbook file: YAML with line numbers, `${var}` substitution, schema checks.

Everything that can be wrong with a playbook is found here, before any step runs: bad YAML,
an unknown key, an unknown action, a missing or unknown parameter, a value of the wrong
type, an undefined or cyclic variable.  Each error is a `PlaybookError` naming the file,
the line and the step: `cutover.yaml:14: step 'parity gate': unknown action 'validte'`.

This module owns the top level of a playbook (its keys, the rollback section, possibly in
a companion file) and puts the pieces together: YAML nodes with marks (`marked_yaml`),
variables (`variables`) and their substitution (`substitution`), steps (`steps`) and their
parameter values (`param_types`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

import yaml

from migrate import config as cfg
from migrate.errors import PlaybookError
from migrate.playbooks.marked_yaml import Source, compose, mapping, scalar_str
from migrate.playbooks.model import Playbook, Step
from migrate.playbooks.param_types import parse_duration
from migrate.playbooks.steps import STEP_KEYS, parse_steps
from migrate.playbooks.substitution import Resolver
from migrate.playbooks.variables import (BUILTIN_VARS, MissingVariables, check_required, companion_vars,
                                         declared_vars, load_vars_file, missing_message, parse_var_overrides)

# the names callers have imported from here since before the split
__all__ = ["TOP_KEYS", "STEP_KEYS", "BUILTIN_VARS", "MissingVariables", "companion_vars", "load_playbook",
           "load_vars_file", "missing_message", "parse_duration", "parse_var_overrides"]

TOP_KEYS = ("name", "description", "vars", "steps", "rollback")


def load_playbook(path: str | Path, overrides: Mapping[str, str] | None = None,
                  config: cfg.Config | None = None, builtins: Mapping[str, str] | None = None,
                  strict_overrides: bool = True) -> Playbook:
    """Read, substitute and check a playbook; raise PlaybookError on the first problem."""
    file = Path(path)
    src = Source(file, str(path))
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookError(f"cannot read playbook {path} ({exc.strerror or exc})") from exc
    root = compose(text, src)
    if not isinstance(root, yaml.MappingNode):
        raise src.error(root, "a playbook is a mapping with name, vars and steps")
    top = mapping(root, src, None)
    for key, (knode, _v) in top.items():
        if key not in TOP_KEYS:
            raise src.error(knode, f"unknown key '{key}' (allowed: {', '.join(TOP_KEYS)})")
    name = scalar_str(top, "name", src, None, required=True)
    assert name is not None  # required: a missing name has raised
    description = scalar_str(top, "description", src, None) or ""
    config = config or cfg.Config(Path(cfg.DEFAULT_CONFIG), {}, exists=False)
    declared = declared_vars(top, src)
    overrides = dict(overrides or {})
    if strict_overrides:
        # one set of variables serves a playbook and its companions (cutover and rollback)
        shared = companion_vars(file)
        for key in overrides:
            if key not in declared and key not in shared:
                known = ", ".join(sorted(declared)) or "none"
                raise PlaybookError(f"{src.shown}: --var/--vars-file {key}: the playbook declares no variable '{key}' "
                                    f"(declared: {known})")
    check_required(declared, overrides, src)
    base = {"playbook_dir": str(file.resolve().parent), "rehearsal": "0", "run_id": "<run-id>"}
    base.update(builtins or {})
    resolver = Resolver(declared, overrides, base, config, src)
    steps = parse_steps(top, "steps", src, resolver, "main", required=True)
    rollback: tuple[Step, ...] = ()
    if "rollback" in top:
        knode, vnode = top["rollback"]
        if isinstance(vnode, yaml.ScalarNode):
            other = file.resolve().parent / resolver.substitute(vnode.value, vnode, None)
            nested = load_playbook(other, {k: v for k, v in overrides.items()}, config, builtins,
                                   strict_overrides=False)
            rollback = tuple(_as_phase(s, "rollback") for s in nested.steps)
        else:
            rollback = parse_steps(top, "rollback", src, resolver, "rollback", required=False)
    for step in steps:
        if step.on_failure == "rollback" and not rollback:
            raise PlaybookError(f"{src.shown}:{step.line}: step '{step.name}': on_failure is rollback "
                                f"but the playbook has no rollback steps; add a 'rollback:' section")
    return Playbook(
        name=name, path=str(file.resolve()), vars=resolver.resolved_vars(), steps=steps,
        rollback_steps=rollback, description=description,
        digest=hashlib.sha256(text.encode()).hexdigest(),
    )


def _as_phase(step: Step, phase: str) -> Step:
    from dataclasses import replace

    return replace(step, phase=phase)
