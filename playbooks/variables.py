"""Playbook variables: which a playbook declares, which are given and which are missing.

Variables come from the playbook's `vars`, then `--var k=v` (which win), then built-ins
(`run_id`, `rehearsal`, `playbook_dir`).  A variable declared null is required: every
required one without a value is reported at once (`MissingVariables`).  `--vars-file`
gives them from YAML or TOML; `companion_vars` are the names the playbooks beside one
(cutover and rollback) declare, since one set of variables serves them all.  How `${x}`
references are replaced is `substitution.py`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from migrate.errors import PlaybookError
from migrate.playbooks.marked_yaml import Source, mapping, plain

BUILTIN_VARS = ("run_id", "rehearsal", "playbook_dir")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def parse_var_overrides(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`--var k=v` items as a dict; a malformed item is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _VAR_NAME.match(key.strip()):
            raise PlaybookError(f'--var "{item}" is not NAME=VALUE')
        out[key.strip()] = value
    return out


def declared_vars(top, src: Source) -> dict[str, tuple[Any, yaml.Node]]:
    if "vars" not in top:
        return {}
    knode, vnode = top["vars"]
    if isinstance(vnode, yaml.ScalarNode) and vnode.value in ("", "~", "null"):
        return {}
    if not isinstance(vnode, yaml.MappingNode):
        raise src.error(vnode, "'vars' must be a mapping of NAME: value")
    out = {}
    for name, (kn, vn) in mapping(vnode, src, None).items():
        if not _VAR_NAME.match(name):
            raise src.error(kn, f"variable name '{name}' may hold only letters, digits, '_' and '-'")
        if name in BUILTIN_VARS:
            raise src.error(kn, f"variable '{name}' is built in; choose another name")
        if isinstance(vn, yaml.MappingNode):
            raise src.error(vn, f"variable '{name}' must be a string, number, boolean, list or null (required)")
        out[name] = (plain(vn, src, None), vn)
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


def check_required(declared, overrides: Mapping[str, Any], src: Source) -> None:
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
