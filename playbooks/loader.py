"""Reading a playbook file: YAML with line numbers, `${var}` substitution, schema checks.

Everything that can be wrong with a playbook is found here, before any step runs: bad YAML,
an unknown key, an unknown action, a missing or unknown parameter, a value of the wrong
type, an undefined or cyclic variable.  Each error is a `PlaybookError` naming the file,
the line and the step: `cutover.yaml:14: step 'parity gate': unknown action 'validte'`.

Variables come from the playbook's `vars`, then `--var k=v` (which win), then built-ins
(`run_id`, `rehearsal`, `playbook_dir`).  `${a.b}` reads a cluster profile: `a` is a
variable naming a profile (or a profile name) and `b` is `bootstrap` or a profile setting.
Secret settings are registered for redaction, so plans and journals show `***`.
A literal `${` is written `$${`.  A string that is exactly one `${x}` takes x's value with
its type (a list stays a list); strings given to number or boolean parameters are parsed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from migrate import config as cfg
from migrate.errors import ConfigError, PlaybookError
from migrate.playbooks.actions import ActionSpec, Param, registry
from migrate.playbooks.model import DOWNTIME_MARKS, ON_FAILURE, Playbook, Step

TOP_KEYS = ("name", "description", "vars", "steps", "rollback")
STEP_KEYS = ("name", "action", "with", "timeout", "retries", "retry_delay", "on_failure", "downtime")
BUILTIN_VARS = ("run_id", "rehearsal", "playbook_dir")
_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_WHOLE_REF = re.compile(r"^\$\{([^}]+)\}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class _Source:
    """Where we are in which file, for messages."""

    def __init__(self, path: Path, shown: str):
        self.path = path
        self.shown = shown

    def error(self, node: yaml.Node | None, message: str, step: str | None = None) -> PlaybookError:
        line = node.start_mark.line + 1 if node is not None else 1
        where = f"step '{step}': " if step else ""
        return PlaybookError(f"{self.shown}:{line}: {where}{message}")


def parse_var_overrides(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`--var k=v` items as a dict; a malformed item is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _VAR_NAME.match(key.strip()):
            raise PlaybookError(f'--var "{item}" is not NAME=VALUE')
        out[key.strip()] = value
    return out


def load_playbook(path: str | Path, overrides: Mapping[str, str] | None = None,
                  config: cfg.Config | None = None, builtins: Mapping[str, str] | None = None,
                  strict_overrides: bool = True) -> Playbook:
    """Read, substitute and check a playbook; raise PlaybookError on the first problem."""
    file = Path(path)
    src = _Source(file, str(path))
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookError(f"cannot read playbook {path} ({exc.strerror or exc})") from exc
    root = _compose(text, src)
    if not isinstance(root, yaml.MappingNode):
        raise src.error(root, "a playbook is a mapping with name, vars and steps")
    top = _mapping(root, src, None)
    for key, (knode, _v) in top.items():
        if key not in TOP_KEYS:
            raise src.error(knode, f"unknown key '{key}' (allowed: {', '.join(TOP_KEYS)})")
    name = _scalar_str(top, "name", src, None, required=True)
    assert name is not None  # required: a missing name has raised
    description = _scalar_str(top, "description", src, None) or ""
    config = config or cfg.Config(Path(cfg.DEFAULT_CONFIG), {}, exists=False)
    declared = _declared_vars(top, src)
    overrides = dict(overrides or {})
    if strict_overrides:
        # one set of variables serves a playbook and its companions (cutover and rollback)
        shared = companion_vars(file)
        for key in overrides:
            if key not in declared and key not in shared:
                known = ", ".join(sorted(declared)) or "none"
                raise PlaybookError(f"{src.shown}: --var/--vars-file {key}: the playbook declares no variable '{key}' "
                                    f"(declared: {known})")
    _check_required(declared, overrides, src)
    base = {"playbook_dir": str(file.resolve().parent), "rehearsal": "0", "run_id": "<run-id>"}
    base.update(builtins or {})
    resolver = _Resolver(declared, overrides, base, config, src)
    steps = _steps(top, "steps", src, resolver, "main", required=True)
    rollback: tuple[Step, ...] = ()
    if "rollback" in top:
        knode, vnode = top["rollback"]
        if isinstance(vnode, yaml.ScalarNode):
            other = file.resolve().parent / resolver.substitute(vnode.value, vnode, None)
            nested = load_playbook(other, {k: v for k, v in overrides.items()}, config, builtins,
                                   strict_overrides=False)
            rollback = tuple(_as_phase(s, "rollback") for s in nested.steps)
        else:
            rollback = _steps(top, "rollback", src, resolver, "rollback", required=False)
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


# --- YAML with marks -------------------------------------------------------------------------


def _compose(text: str, src: _Source) -> yaml.Node:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and mark is not None and mark.line >= len(text.splitlines()):
            mark = exc.context_mark  # "unexpected end of file": point at what was left open
        line = mark.line + 1 if mark else 1
        raise PlaybookError(f"{src.shown}:{line}: bad YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{src.shown}:1: bad YAML: {exc}") from exc
    if node is None:
        raise PlaybookError(f"{src.shown}:1: the file is empty; a playbook has name, vars and steps")
    return node


def _mapping(node: yaml.MappingNode, src: _Source, step: str | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):
            raise src.error(knode, "keys must be plain names", step)
        if knode.value in out:
            raise src.error(knode, f"key '{knode.value}' appears twice", step)
        out[knode.value] = (knode, vnode)
    return out


def _plain(node: yaml.Node, src: _Source, step: str | None) -> Any:
    """A node as a Python value, with YAML's own scalar typing (ints, bools, nulls)."""
    if isinstance(node, yaml.ScalarNode):
        return yaml.SafeLoader(" ").construct_object(node, deep=True) if node.tag != "tag:yaml.org,2002:str" \
            else node.value
    if isinstance(node, yaml.SequenceNode):
        return [_plain(n, src, step) for n in node.value]
    return {k: _plain(v, src, step) for k, (_kn, v) in _mapping(node, src, step).items()}


def _scalar_str(top: Mapping[str, tuple[yaml.Node, yaml.Node]], key: str, src: _Source, step: str | None,
                required: bool = False) -> str | None:
    if key not in top:
        if required:
            raise PlaybookError(f"{src.shown}:1: missing '{key}'")
        return None
    knode, vnode = top[key]
    if not isinstance(vnode, yaml.ScalarNode) or vnode.value == "":
        raise src.error(vnode, f"'{key}' must be a non-empty string", step)
    return vnode.value


# --- variables -----------------------------------------------------------------------------------


def _declared_vars(top, src: _Source) -> dict[str, tuple[Any, yaml.Node]]:
    if "vars" not in top:
        return {}
    knode, vnode = top["vars"]
    if isinstance(vnode, yaml.ScalarNode) and vnode.value in ("", "~", "null"):
        return {}
    if not isinstance(vnode, yaml.MappingNode):
        raise src.error(vnode, "'vars' must be a mapping of NAME: value")
    out = {}
    for name, (kn, vn) in _mapping(vnode, src, None).items():
        if not _VAR_NAME.match(name):
            raise src.error(kn, f"variable name '{name}' may hold only letters, digits, '_' and '-'")
        if name in BUILTIN_VARS:
            raise src.error(kn, f"variable '{name}' is built in; choose another name")
        if isinstance(vn, yaml.MappingNode):
            raise src.error(vn, f"variable '{name}' must be a string, number, boolean, list or null (required)")
        out[name] = (_plain(vn, src, None), vn)
    return out


class MissingVariables(PlaybookError):
    """Required variables without a value, all of them at once (`names`, in file order)."""

    def __init__(self, shown: str, line: int, names: list[str], empty: list[str]):
        self.shown, self.line, self.names, self.empty = shown, line, names, empty
        super().__init__(missing_message(f"{shown}:{line}", names, empty))


def missing_message(where: str, names: list[str], empty: list[str]) -> str:
    labels = [f"{n} (empty)" if n in empty else n for n in names]
    if len(names) == 1:
        what = f"variable '{names[0]}' is empty" if empty else f"variable '{names[0]}' has no value"
        return f"{where}: {what}; pass --var {names[0]}=VALUE (or set it in --vars-file FILE)"
    return (f"{where}: {len(names)} variables have no value: {', '.join(labels)}; pass --var NAME=VALUE "
            "for each, or put them in --vars-file FILE")


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _check_required(declared, overrides: Mapping[str, Any], src: _Source) -> None:
    """Variables declared null are required: report every one that is missing or empty, in one go."""
    names, empty, line = [], [], None
    for name, (value, node) in declared.items():
        if value is not None:
            continue
        given = overrides.get(name)
        if _is_empty(given):
            names.append(name)
            if name in overrides:
                empty.append(name)
            line = line or node.start_mark.line + 1
    if names:
        raise MissingVariables(src.shown, line or 1, names, empty)


def companion_vars(path: Path) -> set[str]:
    """Variable names declared by the playbooks beside `path` and the shipped ones (best effort)."""
    from importlib import resources

    folders = {path.resolve().parent, Path(str(resources.files("migrate.playbooks")))}
    names: set[str] = set()
    for folder in folders:
        for other in sorted(folder.glob("*.yaml")):
            try:
                data = yaml.safe_load(other.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(data, dict) and isinstance(data.get("vars"), dict):
                names.update(str(k) for k in data["vars"])
    return names


def load_vars_file(path: str | Path) -> dict[str, Any]:
    """A flat mapping of variable name to value, from YAML or (by a .toml suffix) TOML."""
    import tomllib

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookError(f"--vars-file {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text) if file.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        kind = "TOML" if file.suffix.lower() == ".toml" else "YAML"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PlaybookError(f"--vars-file {path}: not valid {kind} ({detail})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlaybookError(f"--vars-file {path}: must be a mapping of variable name to value")
    out: dict[str, Any] = {}
    for name, value in data.items():
        if not isinstance(name, str) or not _VAR_NAME.match(name):
            raise PlaybookError(f"--vars-file {path}: {name!r} is not a variable name")
        scalars = (str, int, float, bool)
        if isinstance(value, list) and all(isinstance(v, scalars) for v in value):
            out[name] = [str(v) if not isinstance(v, bool) else ("true" if v else "false") for v in value]
        elif value is None:
            continue  # not set: a required variable is then reported missing with the others
        elif isinstance(value, scalars):
            out[name] = value
        else:
            raise PlaybookError(f"--vars-file {path}: variable '{name}' must be a string, number, boolean or "
                                "list of those, not a nested mapping")
    return out


class _Resolver:
    def __init__(self, declared, overrides, builtins, config: cfg.Config, src: _Source):
        self.declared = declared
        self.overrides = overrides
        self.builtins = builtins
        self.config = config
        self.src = src
        self.cache: dict[str, Any] = {}

    def resolved_vars(self) -> dict[str, Any]:
        names = list(self.declared) + [k for k in self.overrides if k not in self.declared]
        return {name: self.value(name, None, None, ()) for name in names}

    def value(self, name: str, node: yaml.Node | None, step: str | None, chain: tuple[str, ...]) -> Any:
        if name in self.cache:
            return self.cache[name]
        if name in chain:
            raise self.src.error(node, f"variable '{name}' refers to itself ({' -> '.join(chain + (name,))})", step)
        if name in self.overrides:
            raw, where = self.overrides[name], node
            declared = self.declared.get(name)
            if declared is not None and isinstance(declared[0], list) and isinstance(raw, str):
                raw = [part.strip() for part in raw.split(",") if part.strip()]
        elif name in self.declared:
            raw, where = self.declared[name]
            if raw is None:
                raise self.src.error(where, f"variable '{name}' has no value; pass --var {name}=VALUE", step)
        elif name in self.builtins:
            return self.builtins[name]
        else:
            known = ", ".join(sorted(set(self.declared) | set(self.overrides) | set(self.builtins)))
            raise self.src.error(node, f"unknown variable '${{{name}}}' (known: {known})", step)
        value = self._substitute_any(raw, where, step, chain + (name,))
        self.cache[name] = value
        return value

    def _substitute_any(self, raw: Any, node, step, chain) -> Any:
        if isinstance(raw, str):
            return self.substitute(raw, node, step, chain)
        if isinstance(raw, list):
            out: list[Any] = []
            for item in raw:  # `["${topics}"]` with a list variable means its items, not a nested list
                value = self._substitute_any(item, node, step, chain)
                out.extend(value if isinstance(value, list) and isinstance(item, str) else [value])
            return out
        return raw

    def reference(self, ref: str, node, step, chain) -> Any:
        ref = ref.strip()
        if "." in ref and ref.split(".", 1)[0] not in self.builtins:
            head, setting = ref.split(".", 1)
            if head in self.declared or head in self.overrides:
                spec = str(self.value(head, node, step, chain))
            else:
                spec = head
            try:
                profile = cfg.resolve_cluster(spec, self.config, "cluster")
            except ConfigError as exc:
                raise self.src.error(node, f"'${{{ref}}}': {exc}", step) from exc
            if setting == "bootstrap":
                return profile.bootstrap
            if setting not in profile.settings:
                raise self.src.error(node, f"'${{{ref}}}': cluster profile '{profile.name}' has no setting "
                                           f"'{setting}'", step)
            value = profile.settings[setting]
            if cfg.is_secret_key(setting):
                cfg.register_secret(value)
            return value
        return self.value(ref, node, step, chain)

    def substitute(self, text: str, node, step, chain: tuple[str, ...] = ()) -> Any:
        whole = _WHOLE_REF.match(text)
        if whole:
            return self.reference(whole.group(1), node, step, chain)

        def one(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            value = self.reference(match.group(1), node, step, chain)
            if isinstance(value, list):
                return ",".join(str(v) for v in value)
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)

        return _REF.sub(one, text)


# --- steps ----------------------------------------------------------------------------------------


def _steps(top, key: str, src: _Source, resolver: _Resolver, phase: str, required: bool) -> tuple[Step, ...]:
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


def _step(snode: yaml.Node, position: int, src: _Source, resolver: _Resolver,
          actions: Mapping[str, ActionSpec], phase: str) -> Step:
    if not isinstance(snode, yaml.MappingNode):
        raise src.error(snode, f"step {position} must be a mapping with name, action and with")
    fields = _mapping(snode, src, None)
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
    value = _plain(vnode, src, label)
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


def parse_duration(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number = float(match.group(1))
            return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    return None


def _int_field(pair, src, resolver, label, key) -> int | None:
    if pair is None:
        return None
    value, node = _resolved_scalar(pair, src, resolver, label)
    try:
        number = _to_int(value)
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


def _params(pair, spec: ActionSpec, src: _Source, resolver: _Resolver, label: str, snode) -> dict[str, Any]:
    given: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    if pair is not None:
        knode, vnode = pair
        if isinstance(vnode, yaml.ScalarNode) and vnode.value in ("", "~", "null"):
            pass
        elif not isinstance(vnode, yaml.MappingNode):
            raise src.error(vnode, "'with' must be a mapping of parameters", label)
        else:
            given = _mapping(vnode, src, label)
    out: dict[str, Any] = {}
    for name, (kn, vn) in given.items():
        param = spec.param(name)
        if param is None:
            known = ", ".join(p.name for p in spec.params)
            raise src.error(kn, f"action '{spec.name}' has no parameter '{name}' (parameters: {known})", label)
        raw = resolver._substitute_any(_plain(vn, src, label), vn, label, ()) if not isinstance(vn, yaml.MappingNode) \
            else _substitute_map(_plain(vn, src, label), resolver, vn, label)
        out[name] = _check_type(raw, param, spec, src, vn, label)
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


def _substitute_map(value: dict, resolver: _Resolver, node, label) -> dict:
    return {k: (_substitute_map(v, resolver, node, label) if isinstance(v, dict)
                else resolver._substitute_any(v, node, label, ())) for k, v in value.items()}


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError


def _check_type(value: Any, param: Param, spec: ActionSpec, src: _Source, node, label: str) -> Any:
    checked = _typed(value, param, spec, src, node, label)
    values = checked if isinstance(checked, list) else [checked]
    if param.required and (checked in ("", None) or (isinstance(checked, list) and not checked)):
        raise src.error(node, f"parameter '{param.name}' of '{spec.name}' is empty; give it a value", label)
    if param.regex:
        for item in values:
            if item in ("", None):
                raise src.error(node, f"parameter '{param.name}' of '{spec.name}' has an empty regular expression, "
                                      "which matches no topic", label)
            try:
                re.compile(item)
            except re.error as exc:
                raise src.error(node, f"parameter '{param.name}' of '{spec.name}': {item!r} is not a valid "
                                      f"regular expression ({exc})", label) from None
    return checked


def _typed(value: Any, param: Param, spec: ActionSpec, src: _Source, node, label: str) -> Any:
    def bad(expected: str) -> PlaybookError:
        return src.error(node, f"parameter '{param.name}' of '{spec.name}' must be {expected}, got {value!r}", label)

    kind = param.type
    if kind == "any":
        return value
    if kind == "str":
        if isinstance(value, (dict, list)) or value is None:
            raise bad("a string")
        text = value if isinstance(value, str) else ("true" if value is True else "false" if value is False
                                                      else str(value))
        if param.choices and text not in param.choices:
            raise bad(f"one of {', '.join(param.choices)}")
        return text
    if kind == "int":
        try:
            return _to_int(value)
        except ValueError:
            raise bad("a whole number") from None
    if kind == "float":
        if isinstance(value, str):
            seconds = parse_duration(value)
            if seconds is None:
                raise bad("a number (or a duration like 5s)")
            return seconds
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise bad("true or false")
    if kind in ("list", "names"):
        if isinstance(value, str):
            # names (groups, clusters) may come as one comma-separated --var; regexes may not
            return [v.strip() for v in value.split(",") if v.strip()] if kind == "names" else [value]
        if not isinstance(value, list) or any(isinstance(v, (dict, list)) or v is None for v in value):
            raise bad("a list of strings")
        return [str(v) for v in value]
    if kind == "map":
        if not isinstance(value, dict):
            raise bad("a mapping")
        return value
    raise AssertionError(f"unknown param type {kind}")
