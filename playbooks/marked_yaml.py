"""YAML with marks: a playbook file composed into nodes that remember their line, and the
few readers the loader needs over them (mappings without duplicate keys, plain values with
YAML's own scalar typing, required strings).  Every problem is a `PlaybookError` that names
the file and the line: `cutover.yaml:14: step 'parity gate': ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from migrate.errors import PlaybookError


class Source:
    """Where we are in which file, for messages."""

    def __init__(self, path: Path, shown: str):
        self.path = path
        self.shown = shown

    def error(self, node: yaml.Node | None, message: str, step: str | None = None) -> PlaybookError:
        line = node.start_mark.line + 1 if node is not None else 1
        where = f"step '{step}': " if step else ""
        return PlaybookError(f"{self.shown}:{line}: {where}{message}")


def compose(text: str, src: Source) -> yaml.Node:
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


def mapping(node: yaml.MappingNode, src: Source, step: str | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):
            raise src.error(knode, "keys must be plain names", step)
        if knode.value in out:
            raise src.error(knode, f"key '{knode.value}' appears twice", step)
        out[knode.value] = (knode, vnode)
    return out


def plain(node: yaml.Node, src: Source, step: str | None) -> Any:
    """A node as a Python value, with YAML's own scalar typing (ints, bools, nulls)."""
    if isinstance(node, yaml.ScalarNode):
        return yaml.SafeLoader(" ").construct_object(node, deep=True) if node.tag != "tag:yaml.org,2002:str" \
            else node.value
    if isinstance(node, yaml.SequenceNode):
        return [plain(n, src, step) for n in node.value]
    return {k: plain(v, src, step) for k, (_kn, v) in mapping(node, src, step).items()}


def scalar_str(top: Mapping[str, tuple[yaml.Node, yaml.Node]], key: str, src: Source, step: str | None,
               required: bool = False) -> str | None:
    if key not in top:
        if required:
            raise PlaybookError(f"{src.shown}:1: missing '{key}'")
        return None
    knode, vnode = top[key]
    if not isinstance(vnode, yaml.ScalarNode) or vnode.value == "":
        raise src.error(vnode, f"'{key}' must be a non-empty string", step)
    return vnode.value
