"""One validation run: check the request, compare in map or key mode, record the run."""

from __future__ import annotations

import time

from migrate import kafka
from migrate.collector import rare_collections
from migrate.config import ClusterProfile, redact_text
from migrate.errors import UsageError
from migrate.state import State
from migrate.validation.key_mode import _validate_key
from migrate.validation.map_mode import _validate_map, resolve_mirror
from migrate.validation.runs import _finish_run, _range_from, _range_to, _start_run, scope_of
from migrate.validation.spec import ValidateSpec
from migrate.validation.times import _now_iso
from migrate.validators.divergence import Tally, ValidationResult


def resolve_mode(spec: ValidateSpec) -> str:
    if spec.match in (None, "map"):
        return "map"
    if spec.match == "key":
        return "key"
    raise UsageError(f'--match must be map or key, not "{spec.match}"')


def _cluster_text(profile: ClusterProfile) -> str:
    return f"{profile.name} ({redact_text(profile.bootstrap)})"


def check_spec(spec: ValidateSpec) -> None:
    if spec.incremental and (spec.since_ms is not None or spec.until_ms is not None):
        raise UsageError("--incremental continues from the previous run; it cannot be combined with --since/--until")
    if not 0.0 < spec.sample <= 1.0:
        raise UsageError("--sample must be a rate in (0, 1], e.g. 0.1 to compare one record in ten")
    if spec.since_ms is not None and spec.until_ms is not None and spec.since_ms >= spec.until_ms:
        raise UsageError("--since must be earlier than --until")
    if spec.window < 1:
        raise UsageError("--window must be at least 1")


def run_validation(spec: ValidateSpec, state: State) -> ValidationResult:
    """Validate, record the run in the state, and return its result (never raises on divergence)."""
    check_spec(spec)
    kafka.check_reachable(spec.source)
    kafka.check_reachable(spec.target)
    mode = resolve_mode(spec)
    if mode == "map":
        spec = resolve_mirror(spec, state)
    scope = scope_of(spec, mode)
    started_at = _now_iso()
    run_id = _start_run(state, spec, mode, scope, started_at)
    began = time.monotonic()
    tally = Tally(spec.max_examples)
    try:
        with rare_collections():  # per-record work: migrate.collector
            if mode == "map":
                stats = _validate_map(spec, state, tally, scope)
            else:
                stats = _validate_key(spec, state, tally, scope)
    except BaseException as exc:
        _finish_run(state, run_id, None, redact_text(str(exc)) or type(exc).__name__, time.monotonic() - began)
        raise
    duration = time.monotonic() - began
    if spec.sample < 1.0:
        tally.note(f"sampled: about {spec.sample:.0%} of records compared")
    if stats.get("windows_differing"):
        tally.note(f"{stats['windows_differing']} of {stats['windows']} windows differed and were narrowed down")
    result = tally.result(mode, range_from=_range_from(spec), range_to=_range_to(spec, started_at),
                          duration_s=duration, run_id=run_id, started_at=started_at,
                          mirror=spec.mirror if mode == "map" else None,
                          source=_cluster_text(spec.source), target=_cluster_text(spec.target))
    _finish_run(state, run_id, result, None, duration)
    return result
