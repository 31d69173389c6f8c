"""The dashboard against a real Prometheus: every expression returns data, and the figures are true.

A real Prometheus (Debian package `prometheus`) scrapes a running mirror and a real Pushgateway
(`prometheus-pushgateway`) that a `migrate validate` run pushed to; both start on free loopback
ports with their own temporary config and storage (tests/system_deps.sh installs them).  Every
PromQL expression of dashboards/migrate.json is evaluated through the HTTP query API, and the
lag and records figures are compared with what kafka-python counts on both clusters.

The target is noida-db here: one topic's partition is stuck behind a record the target refuses
(noida-db applies max.message.bytes; Tansu does not), so the lag, freshness and retry panels
have something other than 0 to show, and the comparison a non-zero lag to check.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from confluent_kafka import Producer

from metrics_support import KEEP_TARGET_LIMIT, MetricsMirror, Service, counts, stuck_topic  # noqa: F401 (a fixture)
from migrate.local.platforms import free_port
from mirror_support import make_topic, produce_workload
from support import run_cli, unique, wait_until

DASHBOARD = Path(__file__).parent.parent / "dashboards" / "migrate.json"
METRICS_DOC = Path(__file__).parent.parent / "docs" / "metrics.md"


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_every_dashboard_expression_returns_data_and_the_figures_match_both_clusters(stuck_topic, tmp_path):
    from migrate.mirror.slots import DEFAULT_SLOTS, slot_of

    source, target, stuck = stuck_topic
    # A record the target refuses fails its slot's every transaction, so the other partitions of
    # that slot wait with it (in --follow the slot is retried with backoff): about one run in three
    # failed here when a healthy partition hashed to the stuck one's slot.  This test is about the
    # dashboard, so the healthy topic is named to land in other slots.
    stuck_slot = slot_of(stuck, 0, DEFAULT_SLOTS)
    healthy = next(n for n in (unique("healthy") for _ in range(100))
                   if stuck_slot not in {slot_of(n, p, DEFAULT_SLOTS) for p in range(3)})
    name = unique("m")
    make_topic(source.profile, healthy, 3)
    produce_workload(source.profile, healthy, 300, 3)
    gw = free_port()  # (Debian's build persists to /var/lib/prometheus by default: keep it in our temp dir)
    gateway = Service("prometheus-pushgateway", [f"--web.listen-address=127.0.0.1:{gw}",
                                                 f"--persistence.file={tmp_path / 'pushgateway.data'}"], gw,
                      "/-/ready", tmp_path)
    mirror_port = free_port()
    config = tmp_path / "migrate.toml"
    config.write_text(f'[metrics]\nport = {mirror_port}\ndetail = "partition"\npushgateway = "{gateway.url}"\n')
    state = tmp_path / "state.db"
    mirror = MetricsMirror(state, source.profile, target.profile, f"{healthy}|{stuck}", name,
                           "--commit-interval", "0.2", *KEEP_TARGET_LIMIT, config=config)
    prometheus = None
    try:
        assert mirror.url == f"http://127.0.0.1:{mirror_port}/metrics"  # the port came from the config file
        wait_until(lambda: mirror.scrape().per_partition("migrate_mirror_lag_records", healthy) == {0: 0, 1: 0, 2: 0},
                   timeout=90, message="the healthy topic to be mirrored")
        # More records while following, for the replication latency histogram.
        producer = Producer({"bootstrap.servers": source.bootstrap, "linger.ms": 5})
        for i in range(30):
            producer.produce(healthy, f"live-{i}".encode(), partition=i % 3)
        assert producer.flush(30) == 0
        wait_until(lambda: mirror.scrape().value("migrate_mirror_records_total", topic=healthy) == 330,
                   timeout=60, message="the live records to be mirrored")
        latency = mirror.scrape()
        observed = latency.value("migrate_mirror_replication_latency_seconds_count")
        assert observed >= 1
        # Only transactions begun after a partition reached its end count: the backlog's records
        # are an hour old (produce_workload), the live ones seconds, so the mean tells them apart.
        assert latency.value("migrate_mirror_replication_latency_seconds_sum") / observed < 60
        wait_until(lambda: mirror.scrape().value("migrate_mirror_partitions", state="retrying") == 1, timeout=60,
                   message="the stuck partition to be retrying")

        documented = set(re.findall(r"`(migrate_mirror_[a-z_]+)`", METRICS_DOC.read_text()))
        families = mirror.scrape().families
        served = set(families) | {s.name for family in families.values() for s in family.samples}
        assert len(documented) >= 12 and documented <= served, documented - served  # docs/metrics.md's table is true

        parity = run_cli("--config", str(config), "--state", str(state), "validate", "--source", source.bootstrap,
                         "--target", target.bootstrap, "--name", name, "--topics", healthy)
        assert parity.returncode == 0, parity.stderr
        assert "warning" not in parity.stderr

        (tmp_path / "prometheus.yml").write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "migrate-mirror", "static_configs": [{"targets": [f"127.0.0.1:{mirror_port}"]}]},
                {"job_name": "pushgateway", "honor_labels": True,
                 "static_configs": [{"targets": [f"127.0.0.1:{gateway.port}"]}]},
            ]}))
        port = free_port()
        prometheus = Service("prometheus", [f"--config.file={tmp_path / 'prometheus.yml'}",
                                            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                            f"--web.listen-address=127.0.0.1:{port}"], port, "/-/ready", tmp_path)

        def query(expr: str) -> list:
            answer = prometheus.get_json("/api/v1/query", query=expr.replace("$mirror", ".*"))
            assert answer["status"] == "success", (expr, answer)
            return answer["data"]["result"]

        expressions = dashboard_expressions()
        assert len(expressions) >= 15
        empty: list[str] = []

        def all_answer() -> bool:
            empty[:] = [e for e in expressions if not query(e)]
            return not empty

        try:
            wait_until(all_answer, timeout=120, interval=1, message="every dashboard expression to return data")
        except AssertionError:
            raise AssertionError(f"expressions without data: {empty}") from None

        def by_topic(expr: str) -> dict[str, float]:
            return {r["metric"]["topic"]: float(r["value"][1]) for r in query(expr)}

        source_counts = {t: sum(counts(source.profile, t).values()) for t in (healthy, stuck)}
        target_counts = {t: sum(counts(target.profile, t).values()) for t in (healthy, stuck)}
        assert source_counts == {healthy: 330, stuck: 11}
        assert target_counts[stuck] <= 5  # nothing at or after the refused record
        expected_lag = {t: source_counts[t] - target_counts[t] for t in (healthy, stuck)}
        wait_until(lambda: by_topic("sum by (topic) (migrate_mirror_lag_records)") == expected_lag, timeout=30,
                   message=f"Prometheus to show the lag kafka-python counts: {expected_lag}")
        # (a topic nothing was mirrored of yet has no records series: counted as 0)
        wait_until(lambda: {t: by_topic("sum by (topic) (migrate_mirror_records_total)").get(t, 0)
                            for t in target_counts} == target_counts, timeout=30,
                   message=f"Prometheus to show the records kafka-python counts on the target: {target_counts}")
        assert by_topic("max by (topic) (migrate_mirror_lag_seconds)")[stuck] >= 55
        assert by_topic("max by (topic) (migrate_mirror_lag_seconds)")[healthy] == 0
        assert float(query("min(migrate_validate_parity)")[0]["value"][1]) == 1
        assert float(query("sum(migrate_validate_records_compared)")[0]["value"][1]) == 330
        assert float(query('sum(migrate_mirror_partitions{state!="mirroring"})')[0]["value"][1]) == 1
    finally:
        if prometheus is not None:
            prometheus.stop()
        gateway.stop()
        assert mirror.stop() == 0, mirror.stderr()
