"""The migration plan from an inventory: copy time, dual-run bandwidth and storage, costs, playbook vars.

Pure arithmetic over measured figures and the user's inputs; nothing here talks to a cluster.
There are no built-in prices: costs are computed only from a `--costs` TOML file

    currency = "EUR"            # optional label
    storage_gb_month = 0.10     # per GB stored on the target for a month
    transfer_gb = 0.02          # per GB moved between the platforms
    worker_hour = 0.05          # per mirror worker and hour

and without one the plan gives the quantities only.  GB here is 10^9 bytes.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Iterable

import yaml

from migrate.assess.model import CostFigures, Costs, Inventory, Plan, TopicInventory
from migrate.errors import ConfigError
from migrate.probe.mirror_checks import mirror_figure

GB = 1e9
MB = 1e6
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
PRICE_KEYS = ("storage_gb_month", "transfer_gb", "worker_hour")
DEFAULT_MAX_LAG = 1000  # the shipped cutover's default
MAX_LAG_SECONDS = 5  # the caught-up gate allows about this many seconds of writes
_RECORDS_S = re.compile(r"\(([\d,]+) records/s\)")


def load_costs(path: str | Path) -> Costs:
    """Prices from a TOML file; a ConfigError naming the file and the problem otherwise."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read costs file {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"costs file {path} is not valid TOML ({exc}); fix the file") from exc
    unknown = sorted(set(data) - set(PRICE_KEYS) - {"currency"})
    if unknown:
        raise ConfigError(f"costs file {path} has unknown keys: {', '.join(unknown)}; "
                          f"known: currency, {', '.join(PRICE_KEYS)}")
    missing = [k for k in PRICE_KEYS if k not in data]
    if missing:
        raise ConfigError(f"costs file {path} lacks {', '.join(missing)}; give every price (there are no defaults)")
    prices = {}
    for key in PRICE_KEYS:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"costs file {path}: {key} must be a number >= 0, not {value!r}")
        prices[key] = float(value)
    currency = data.get("currency", "")
    if not isinstance(currency, str):
        raise ConfigError(f"costs file {path}: currency must be a string, not {currency!r}")
    return Costs(currency=currency, **prices)


def probe_throughput(report) -> tuple[float | None, str, float | None]:
    """What one mirror worker copies (MB/s, where it comes from, records/s), from a probe report.

    Only the probe's real mirror run (check mirror-throughput) counts: a raw producer's figure
    (check throughput) is many times what a mirror worker reaches.
    """
    if report is None:
        return None, "none", None
    result = report.get("mirror-throughput", "confluent-kafka")
    if result is None or not result.ok:
        return None, "none", None
    mb_s = mirror_figure(result.observed)
    records = _RECORDS_S.search(result.observed)
    if not mb_s:
        return None, "none", None
    return mb_s, (f"measured: a real mirror run on the target in probe run {report.run_id} ({report.ran_at}): "
                  f"{result.observed}"), float(records.group(1).replace(",", "")) if records else None


def target_storage(topic: TopicInventory, overlap_s: float) -> int:
    """Bytes the target holds for a topic at the end of the overlap, under the topic's retention."""
    rate = topic.bytes_per_s_estimate or 0.0
    grown = topic.copied_bytes + rate * overlap_s
    retention = topic.retention_ms
    if retention is not None and not topic.compacted:
        grown = min(grown, max(topic.copied_bytes, rate * retention / 1000))
    limit = topic.configs.get("retention.bytes", "(default)")
    if limit not in ("(default)", "-1") and int(limit) >= 0:
        grown = min(grown, int(limit) * topic.partitions)
    return int(grown)


def topics_regex(names: Iterable[str]) -> str:
    """A regex that matches exactly the selected topics (what the playbooks' `topics` takes)."""
    return "|".join(re.escape(n) for n in sorted(names))


def make_plan(inventory: Inventory, source: str, target: str | None, throughput_mb_s: float | None = None,
              throughput_source: str = "given", copy_window_s: float | None = None, headroom: float = 1.5,
              overlap_days: float = 30.0, costs: Costs | None = None,
              throughput_records_s: float | None = None) -> Plan:
    """The plan; the copy is of committed records (the mirror leaves aborted ones out), and a worker
    takes the longer of its byte rate and, when known, its record rate (small records are bound by it)."""
    topics = inventory.topics
    copy_bytes = sum(t.copied_bytes for t in topics)
    copy_records = sum(t.copied_records for t in topics)
    measured = [t.bytes_per_s_estimate for t in topics if t.bytes_per_s_estimate is not None]
    write_rate = sum(measured) if measured else None
    notes = []
    if throughput_mb_s is None:
        throughput_source = "none"
    copy_workers, copy_s, dual_workers = 1, None, None
    if throughput_mb_s:
        one_worker_s = copy_bytes / (throughput_mb_s * MB)
        if throughput_records_s:
            one_worker_s = max(one_worker_s, copy_records / throughput_records_s)
        if copy_window_s:
            copy_workers = max(1, math.ceil(one_worker_s / copy_window_s))
        copy_s = one_worker_s / copy_workers
    else:
        notes.append("copy duration not estimated: pass --throughput MB/s (per mirror worker), or measure a mirror "
                     f"worker on the target: migrate probe --cluster {target or 'TARGET'} --only mirror-throughput")
    bandwidth = write_rate * headroom if write_rate is not None else None
    if bandwidth is not None and throughput_mb_s:
        dual_workers = max(1, math.ceil(bandwidth / (throughput_mb_s * MB)))
    if write_rate is None:
        notes.append("write rates not measured (--sample-seconds 0): dual-run bandwidth unknown")
    overlap_s = overlap_days * 86400
    storage = sum(target_storage(t, overlap_s) for t in topics)
    cost = None
    if costs is not None:
        workers = dual_workers or 1
        monthly_storage = storage / GB * costs.storage_gb_month
        monthly_transfer = (write_rate or 0.0) * SECONDS_PER_MONTH / GB * costs.transfer_gb
        monthly_workers = workers * HOURS_PER_MONTH * costs.worker_hour
        copy_cost = copy_bytes / GB * costs.transfer_gb + (copy_workers * (copy_s or 0.0) / 3600) * costs.worker_hour
        cost = CostFigures(costs.currency, round(monthly_storage, 2), round(monthly_transfer, 2),
                           round(monthly_workers, 2), round(monthly_storage + monthly_transfer + monthly_workers, 2),
                           round(copy_cost, 2))
        if copy_s is None:
            notes.append("copy cost counts the transfer only (no throughput, so no worker hours)")
    return Plan(copy_bytes, copy_records, throughput_mb_s, throughput_source,
                round(copy_s, 1) if copy_s is not None else None, copy_workers, copy_window_s,
                round(write_rate, 1) if write_rate is not None else None, headroom,
                round(bandwidth, 1) if bandwidth is not None else None, dual_workers, overlap_days, storage, cost,
                playbook_vars(inventory, source, target), tuple(notes),
                copy_exact=all(t.sample_complete for t in topics), throughput_records_s=throughput_records_s,
                copy_aborted_records=sum(t.aborted_records for t in topics))


def playbook_vars(inventory: Inventory, source: str, target: str | None) -> dict[str, object]:
    """Values for the shipped cutover playbook's variables (names as it declares them)."""
    rate = sum(t.records_per_s or 0.0 for t in inventory.topics)
    out: dict[str, object] = {"source": source}
    if target:
        out["target"] = target
    out["topics"] = topics_regex(t.name for t in inventory.topics)
    moved = [g.group for g in inventory.groups]
    if moved:
        out["groups"] = ",".join(moved)
    out["max_lag"] = max(DEFAULT_MAX_LAG, math.ceil(rate * MAX_LAG_SECONDS))
    return out


def vars_yaml(values: dict[str, object], filename: str) -> str:
    """The vars as a flat YAML mapping, with a comment saying how to use the file."""
    return ("# playbook variables from `migrate assess`; use with: "
            f"migrate playbook rehearse cutover --vars-file {filename}\n"
            + yaml.safe_dump(values, sort_keys=False, default_flow_style=False))
