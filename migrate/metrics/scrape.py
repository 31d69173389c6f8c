"""Reading a running mirror's /metrics back (the demo's final figures), with prometheus_client's parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def mirror_lag(url: str, timeout: float = 10.0) -> int | None:
    """The exact lag a mirror reports, summed over its partitions; None when it has no figure yet."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "migrate_mirror_lag_records":
            values = [s.value for s in family.samples]
            return int(sum(values)) if values else None
    return None
