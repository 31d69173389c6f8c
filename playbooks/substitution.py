"""`${...}` substitution: a playbook's values with every variable reference replaced.

`${a.b}` reads a cluster profile: `a` is a variable naming a profile (or a profile name)
and `b` is `bootstrap` or a profile setting.  Secret settings are registered for
redaction, so plans and journals show `***`.  A literal `${` is written `$${`.  A string
that is exactly one `${x}` takes x's value with its type (a list stays a list).  A
variable that refers to itself, directly or through others, is an error naming the chain.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from migrate import config as cfg
from migrate.errors import ConfigError
from migrate.playbooks.marked_yaml import Source

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_WHOLE_REF = re.compile(r"^\$\{([^}]+)\}$")


class Resolver:
    def __init__(self, declared, overrides, builtins, config: cfg.Config, src: Source):
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
        value = self.substitute_any(raw, where, step, chain + (name,))
        self.cache[name] = value
        return value

    def substitute_any(self, raw: Any, node, step, chain) -> Any:
        if isinstance(raw, str):
            return self.substitute(raw, node, step, chain)
        if isinstance(raw, list):
            out: list[Any] = []
            for item in raw:  # `["${topics}"]` with a list variable means its items, not a nested list
                value = self.substitute_any(item, node, step, chain)
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
