"""Steps: each entry of `steps` or `rollback` checked against its action's schema.

A step is a mapping of the known keys only (`STEP_KEYS`), with a unique name and a known
action; its `with` parameters must be the action's, each of the right type (see
`param_types.py`), every required one given, and the action's cross-parameter rule met;
`timeout`, `retry_delay`, `retries`, `on_failure` and `downtime` are checked too.
Values are substituted (`${x}`) before they are checked, so a `--var` is checked the same
way as a value written in the file.
"""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from migrate.errors import PlaybookError
from migrate.playbooks.actions import ActionSpec, registry
from migrate.playbooks.marked_yaml import Source, mapping, plain
from migrate.playbooks.model import DOWNTIME_MARKS, ON_FAILURE, Step
from migrate.playbooks.param_types import check_type, parse_duration, to_int
from migrate.playbooks.substitution import Resolver

STEP_KEYS = ("name", "action", "with", "timeout", "retries", "retry_delay", "on_failure", "downtime")


def parse_steps(top, key: str, src: Source, resolver: Resolver, phase: str, required: bool) -> tuple[Step, ...]:
    if key not in top:
        if required:
            raise PlaybookError(f"{src.shown}:1: missing '{key}' (a list of steps)")
        return ()
    knode, vnode = top[key]
    if not isinstance(vnode, yaml.SequenceNode) or (required and not vnode.value):
        raise src.error(vnode, f"'{key}' must be a non-empty list of steps")
    actions = registry()
    steps: list[Step] = []
    names: set[str] = set()
    for position, snode in enumerate(vnode.value, start=1):
        step = _step(snode, position, src, resolver, actions, phase)
        if step.name in names:
            name_node = next(v for k, v in snode.value if k.value == "name")
            raise src.error(name_node, "a step of this name already exists; step names must be unique", step.name)
        names.add(step.name)
        steps.append(step)
    return tuple(steps)


def _step(snode: yaml.Node, position: int, src: Source, resolver: Resolver,
          actions: Mapping[str, ActionSpec], phase: str) -> Step:
    if not isinstance(snode, yaml.MappingNode):
        raise src.error(snode, f"step {position} must be a mapping with name, action and with")
    fields = mapping(snode, src, None)
    label = fields["name"][1].value if "name" in fields and isinstance(fields["name"][1], yaml.ScalarNode) \
        else f"#{position}"
    for key, (kn, _vn) in fields.items():
        if key not in STEP_KEYS:
            raise src.error(kn, f"unknown key '{key}' (allowed: {', '.join(STEP_KEYS)})", label)
    if "name" not in fields or not isinstance(fields["name"][1], yaml.ScalarNode) or not fields["name"][1].value:
        raise src.error(snode, "a step needs a 'name'", label)
    if "action" not in fields:
        raise src.error(snode, "a step needs an 'action'", label)
    anode = fields["action"][1]
    action_name = anode.value if isinstance(anode, yaml.ScalarNode) else None
    if action_name not in actions:
        known = ", ".join(sorted(actions))
        raise src.error(anode, f"unknown action '{action_name}' (known: {known})", label)
    assert action_name is not None  # a key of actions
    spec = actions[action_name]
    params = _params(fields.get("with"), spec, src, resolver, label, snode)
    timeout = _duration(fields.get("timeout"), src, resolver, label, "timeout")
    delay = _duration(fields.get("retry_delay"), src, resolver, label, "retry_delay")
    retries = _int_field(fields.get("retries"), src, resolver, label, "retries")
    on_failure = _choice_field(fields.get("on_failure"), ON_FAILURE, src, resolver, label, "on_failure") or "abort"
    downtime = _choice_field(fields.get("downtime"), DOWNTIME_MARKS, src, resolver, label, "downtime")
    return Step(
        index=position, name=label, action=action_name, params=params,
        timeout=timeout if timeout is not None else spec.default_timeout,
        retries=retries or 0, retry_delay=1.0 if delay is None else delay, on_failure=on_failure,
        downtime=downtime, line=snode.start_mark.line + 1, phase=phase,
    )


def _resolved_scalar(pair, src, resolver, label):
    knode, vnode = pair
    if not isinstance(vnode, yaml.ScalarNode):
        raise src.error(vnode, f"'{knode.value}' must be a single value", label)
    value = plain(vnode, src, label)
    if isinstance(value, str):
        value = resolver.substitute(value, vnode, label)
    return value, vnode


def _duration(pair, src, resolver, label, key) -> float | None:
    if pair is None:
        return None
    value, node = _resolved_scalar(pair, src, resolver, label)
    seconds = parse_duration(value)
    if seconds is None:
        raise src.error(node, f"'{key}' must be a duration like 30, 30s, 5m or 500ms, got {value!r}", label)
    return seconds


def _int_field(pair, src, resolver, label, key) -> int | None:
    if pair is None:
        return None
    value, node = _resolved_scalar(pair, src, resolver, label)
    try:
        number = to_int(value)
    except ValueError:
        raise src.error(node, f"'{key}' must be a whole number >= 0, got {value!r}", label) from None
    if number < 0:
        raise src.error(node, f"'{key}' must be a whole number >= 0, got {value!r}", label)
    return number


def _choice_field(pair, choices, src, resolver, label, key) -> str | None:
    if pair is None:
        return None
    value, node = _resolved_scalar(pair, src, resolver, label)
    if value not in choices:
        raise src.error(node, f"'{key}' must be one of {', '.join(choices)}, got {value!r}", label)
    return value


def _params(pair, spec: ActionSpec, src: Source, resolver: Resolver, label: str, snode) -> dict[str, Any]:
    given: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    if pair is not None:
        knode, vnode = pair
        if isinstance(vnode, yaml.ScalarNode) and vnode.value in ("", "~", "null"):
            pass
        elif not isinstance(vnode, yaml.MappingNode):
            raise src.error(vnode, "'with' must be a mapping of parameters", label)
        else:
            given = mapping(vnode, src, label)
    out: dict[str, Any] = {}
    for name, (kn, vn) in given.items():
        param = spec.param(name)
        if param is None:
            known = ", ".join(p.name for p in spec.params)
            raise src.error(kn, f"action '{spec.name}' has no parameter '{name}' (parameters: {known})", label)
        raw = resolver.substitute_any(plain(vn, src, label), vn, label, ()) if not isinstance(vn, yaml.MappingNode) \
            else _substitute_map(plain(vn, src, label), resolver, vn, label)
        out[name] = check_type(raw, param, spec, src, vn, label)
    for param in spec.params:
        if param.name not in out:
            if param.required:
                raise src.error(snode, f"action '{spec.name}' needs parameter '{param.name}'"
                                       f"{' (' + param.doc + ')' if param.doc else ''}", label)
            if param.default is not None:
                out[param.name] = param.default
    if spec.check:
        problem = spec.check(out)
        if problem:
            node = pair[1] if pair is not None else snode
            raise src.error(node, problem, label)
    return out


def _substitute_map(value: dict, resolver: Resolver, node, label) -> dict:
    return {k: (_substitute_map(v, resolver, node, label) if isinstance(v, dict)
                else resolver.substitute_any(v, node, label, ())) for k, v in value.items()}
