"""Parameter values: a step's substituted value made the type its action's schema declares.

Strings given to number or boolean parameters are parsed (`"5"`, `"true"`, durations like
`5s`); `names` (groups, clusters) may come as one comma-separated string; parameters marked
`regex` must compile.  Each problem is a `PlaybookError` naming the file, line and step.
"""

from __future__ import annotations

import re
from typing import Any

from migrate.errors import PlaybookError
from migrate.playbooks.actions import ActionSpec, Param
from migrate.playbooks.marked_yaml import Source

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


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


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError


def check_type(value: Any, param: Param, spec: ActionSpec, src: Source, node, label: str) -> Any:
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


def _typed(value: Any, param: Param, spec: ActionSpec, src: Source, node, label: str) -> Any:
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
            return to_int(value)
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
