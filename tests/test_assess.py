"""`migrate assess` against real brokers, every figure checked with kafka-python (the independent client).

Two estates: the seeded one (written with confluent-kafka) and one written here with
kafka-python that has transactions with aborts, tombstones, headers (one with a NUL byte in
its name), a compacted topic, 2020 timestamps under retention.ms=-1, Schema Registry framed
values with known ids, a 900 KB record and two groups.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from migrate import kafka
from migrate.seed import seed_estate
from support import TestCluster, kafka_python_read, run_cli, unique, wait_until

TXN_CHECKS = {"transactions", "read-committed-hides-aborted", "transaction-markers-take-offsets"}
SCHEMA_IDS = (5, 42)
BIG = 900 * 1024
OLD_MS = 1577836800000  # 2020-01-01T00:00:00Z
ESTIMATE_TOLERANCE = 0.2  # bytes and records extrapolated from a partial sample, on topics of even record sizes


# --- the kafka-python estate -------------------------------------------------------------------------


@dataclass
class Estate:
    cluster: TestCluster
    prefix: str

    def topic(self, suffix: str) -> str:
        return self.prefix + suffix


def _admin(cluster: TestCluster) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=15000)


def create_topics(cluster: TestCluster, *topics: NewTopic) -> None:
    admin = _admin(cluster)
    try:
        admin.create_topics(list(topics))
    finally:
        admin.close()
    names = {t.name for t in topics}
    wait_until(lambda: names <= set(kafka.list_topics(cluster.profile)), message=f"{names} listed")


def write_kafka_python_estate(cluster: TestCluster) -> Estate:
    estate = Estate(cluster, unique("kp") + ".")
    t = estate.topic
    create_topics(cluster, NewTopic(t("txn"), 2, 1), NewTopic(t("plain"), 1, 1),
                  NewTopic(t("compacted"), 1, 1, topic_configs={"cleanup.policy": "compact"}),
                  NewTopic(t("old"), 1, 1, topic_configs={"retention.ms": "-1"}),
                  NewTopic(t("schema"), 2, 1), NewTopic(t("big"), 1, 1), NewTopic(t("nul"), 1, 1))
    admin = _admin(cluster)
    try:
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, transactional_id=unique("kp-txn"), linger_ms=5)
        producer.init_transactions()
        for i in range(6):  # transactions 1 and 4 are aborted: 10 aborted records
            producer.begin_transaction()
            for j in range(5):
                producer.send(t("txn"), key=f"k{i}-{j}".encode(), value=f"v{i}-{j}".encode(), partition=i % 2,
                              headers=[("trace-id", f"{i}".encode())])
            producer.flush(15)
            producer.commit_transaction() if i % 3 != 1 else producer.abort_transaction()
        producer.close(5)

        plain = KafkaProducer(bootstrap_servers=cluster.bootstrap, linger_ms=5, max_request_size=2 * 1024 * 1024)
        for i in range(30):
            plain.send(t("plain"), key=None if i < 5 else f"p{i}".encode(), value=b"x" * 100,
                       headers=[("trace-id", b"t")])
        for i in range(20):
            plain.send(t("compacted"), key=f"c{i % 10}".encode(), value=f"state-{i}".encode())
        for i in range(3):
            plain.send(t("compacted"), key=f"c{i}".encode(), value=None)
        for i in range(10):
            plain.send(t("old"), value=f"old-{i}".encode(), timestamp_ms=OLD_MS + i * 1000)
        for i in range(12):
            sid = SCHEMA_IDS[i % 2]
            plain.send(t("schema"), value=b"\x00" + sid.to_bytes(4, "big") + b"avro-bytes", partition=i % 2)
        plain.send(t("big"), value=b"b" * BIG)
        plain.send(t("big"), value=b"small")
        for i in range(3):
            plain.send(t("nul"), value=b"v", headers=[("trace\x00id", b"1")])
        plain.flush(30)
        plain.close(5)

        admin.alter_group_offsets(t("g-plain"), {TopicPartition(t("plain"), 0): OffsetAndMetadata(10, "", -1)})
        ends = independent(cluster, t("txn"))[1]
        admin.alter_group_offsets(t("g-txn"), {TopicPartition(t("txn"), p): OffsetAndMetadata(high, "", -1)
                                               for p, (_, high) in ends.items()})
    finally:
        admin.close()
    return estate


def independent(cluster: TestCluster, topic: str, isolation: str = "read_uncommitted"):
    """kafka-python's view of a topic: its records per partition and each partition's (start, end).

    The end is the high watermark of a Fetch response (`highwater`), right on every platform.
    """
    records = kafka_python_read(cluster.profile, topic, isolation=isolation)
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=50)
    try:
        tps = [TopicPartition(topic, p) for p in records]
        consumer.assign(tps)
        starts = consumer.beginning_offsets(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 15
        while any(consumer.highwater(tp) is None for tp in tps) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        return records, {tp.partition: (starts[tp], consumer.highwater(tp)) for tp in tps}
    finally:
        consumer.close()


def committed_offsets(cluster: TestCluster, group: str) -> dict[tuple[str, int], int]:
    admin = _admin(cluster)
    try:
        answer = admin.list_group_offsets({group: None})[group]
        return {(tp.topic, tp.partition): meta.offset for tp, meta in answer.items() if meta.offset >= 0}
    finally:
        admin.close()


_estates: dict[tuple[str, int], Estate] = {}


def kp_estate(cluster: TestCluster) -> Estate:
    key = (cluster.platform, cluster.broker.pid)
    if key not in _estates:
        _estates[key] = write_kafka_python_estate(cluster)
    return _estates[key]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml")}


def assess_json(env, *args: str, expect: int = 0) -> dict:
    result = run_cli("assess", "--format", "json", *args, env=env)
    assert result.returncode == expect, result.stderr
    return json.loads(result.stdout)


def by_name(items, key="name") -> dict:
    return {item[key]: item for item in items}


# --- inventory ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["noida", "tansu"])
def test_inventory_of_a_kafka_python_estate_equals_what_kafka_python_reads(cluster_pool, env, platform):
    cluster = cluster_pool("source", platform)
    estate = kp_estate(cluster)
    report = assess_json(env, "--source", cluster.bootstrap, "--topics", re.escape(estate.prefix) + ".*",
                         "--sample-seconds", "0")
    topics = by_name(report["inventory"]["topics"])
    assert set(topics) == {estate.topic(s) for s in ("txn", "plain", "compacted", "old", "schema", "big", "nul")}
    for name, inv in topics.items():
        records, ends = independent(cluster, name)
        committed, _ = independent(cluster, name, "read_committed")
        everything = [r for part in records.values() for r in part]
        assert inv["partitions"] == len(ends)
        assert inv["offsets"] == sum(high - low for low, high in ends.values())
        assert inv["sample_complete"] and inv["records_estimate"] == len(everything), name
        payload = sum(len(r.key or b"") + len(r.value or b"") + sum(len(k.encode()) + len(v or b"") for k, v in r.headers)
                      for r in everything)
        # librdkafka (the sample's client) cuts "trace\x00id" to "trace": 3 bytes fewer per record on that topic
        cut = 3 * len(everything) if name == estate.topic("nul") else 0
        assert inv["bytes_estimate"] == payload - cut, name
        # Tansu's read_committed returns aborted records too, so there the independent reader sees 0 aborted as well
        assert inv["usage"]["aborted"] == len(everything) - sum(len(p) for p in committed.values()), name
        framed = {int.from_bytes(r.value[1:5], "big") for r in everything if r.value and r.value[0] == 0}
        assert inv["usage"]["schema_ids"] == (sorted(framed) if name == estate.topic("schema") else [])
        assert inv["usage"]["tombstones"] == sum(1 for r in everything if r.value is None)
        assert inv["usage"]["null_keys"] == sum(1 for r in everything if r.key is None)
        assert inv["usage"]["oldest_timestamp"] == min(r.timestamp for r in everything)
    txn, plain = topics[estate.topic("txn")], topics[estate.topic("plain")]
    assert txn["transactions"] == ("yes" if platform == "noida" else "likely")
    assert platform == "tansu" or txn["usage"]["aborted"] == 10
    assert plain["transactions"] == "no" and plain["usage"]["offset_gaps"] == 0
    assert topics[estate.topic("schema")]["usage"]["schema_ids"] == list(SCHEMA_IDS)
    assert topics[estate.topic("old")]["usage"]["oldest_timestamp"] == OLD_MS
    assert topics[estate.topic("old")]["configs"]["retention.ms"] == "-1"
    assert topics[estate.topic("compacted")]["configs"]["cleanup.policy"] == "compact"
    big = topics[estate.topic("big")]["usage"]
    assert big["sizes"]["max"] == BIG and big["near_max_bytes"] == 1
    assert topics[estate.topic("nul")]["usage"]["nul_header_names"] == ["trace\\x00id"]

    groups = by_name(report["inventory"]["groups"], "group")
    assert set(groups) == {estate.topic("g-plain"), estate.topic("g-txn")}
    for group, inv in groups.items():
        offsets = committed_offsets(cluster, group)
        expected_lag = sum(independent(cluster, topic)[1][p][1] - o for (topic, p), o in offsets.items())
        assert inv["topics"][0]["lag"] == expected_lag and inv["outside"] == []
    assert groups[estate.topic("g-plain")]["topics"][0]["lag"] == 20
    plain_records = independent(cluster, estate.topic("plain"))[0][0]
    assert groups[estate.topic("g-plain")]["topics"][0]["oldest_unread_timestamp"] == plain_records[10].timestamp
    assert groups[estate.topic("g-txn")]["topics"][0]["lag"] == 0


def test_seeded_estate_exact_figures_and_labelled_estimates_from_a_bounded_sample(source_cluster, env):
    prefix = unique("seed") + "."
    seed_estate(source_cluster.profile, prefix=prefix)
    selection = ("--source", source_cluster.bootstrap, "--topics", re.escape(prefix) + ".*", "--sample-seconds", "0")
    full = assess_json(env, *selection)
    bounded = assess_json(env, *selection, "--sample-records", "20")
    for name, inv in by_name(full["inventory"]["topics"]).items():
        records, ends = independent(source_cluster, name)
        count = sum(len(p) for p in records.values())
        assert (inv["partitions"], inv["offsets"], inv["records_estimate"]) == (
            len(ends), sum(h - lo for lo, h in ends.values()), count), name
        part = by_name(bounded["inventory"]["topics"])[name]
        assert part["offsets"] == inv["offsets"]  # exact whatever the sample
        assert all(p["sampled"] <= 20 for p in part["partition_figures"]), name  # the sample bound holds
        assert part["usage"]["sampled"] <= 20 * part["partitions"]
        if part["usage"]["sampled"] < count:
            assert not part["sample_complete"]
        if name.endswith(("workflow.events", "audit.log", "agent.decisions")):  # even record sizes, no gaps
            assert abs(part["bytes_estimate"] - inv["bytes_estimate"]) <= ESTIMATE_TOLERANCE * inv["bytes_estimate"]
            assert part["records_estimate"] == count  # no gaps: one record per offset
    groups = by_name(full["inventory"]["groups"], "group")
    assert set(groups) == {prefix + g for g in ("orchestrator", "decision-auditor", "tool-runner", "billing-projector")}
    for group, inv in groups.items():
        offsets = committed_offsets(source_cluster, group)
        ends = {}
        for topic in {t for t, _ in offsets}:
            ends.update({(topic, p): high for p, (_, high) in independent(source_cluster, topic)[1].items()})
        assert sum(t["lag"] for t in inv["topics"]) == sum(ends[k] - o for k, o in offsets.items()), group
    assert groups[prefix + "decision-auditor"]["topics"][0]["lag"] > 0

    table = run_cli("assess", *selection, "--sample-records", "20", env=env)
    assert table.returncode == 0, table.stderr
    assert f"TOPICS (names under {prefix})" in table.stdout
    assert re.search(r"^workflow\.events\s+6\s+~\d", table.stdout, re.M)  # estimates marked ~
    assert "readiness not assessed" in table.stdout


def test_write_rate_is_measured_from_partition_ends(source_cluster, env):
    topic = unique("rate")
    create_topics(source_cluster, NewTopic(topic, 1, 1))
    producer = KafkaProducer(bootstrap_servers=source_cluster.bootstrap, linger_ms=5)
    producer.send(topic, b"first").get(15)
    stop = threading.Event()
    sent = []

    def write():
        while not stop.is_set():
            producer.send(topic, b"y" * 50)
            sent.append(1)
            time.sleep(0.01)
        producer.flush(15)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        report = assess_json(env, "--source", source_cluster.bootstrap, "--topics", re.escape(topic),
                             "--sample-seconds", "3")
    finally:
        stop.set()
        writer.join()
        producer.close(5)
    inv = report["inventory"]["topics"][0]
    # at most what was written while it measured (3 s or a little more), and clearly more than nothing
    assert 5 <= inv["records_per_s"] <= len(sent) / 3
    assert inv["bytes_per_s_estimate"] > 0
    assert report["plan"]["write_bytes_per_s"] == inv["bytes_per_s_estimate"]


# --- readiness -----------------------------------------------------------------------------------------


class AnyStr:
    """Equal to a string the pattern matches whole (for comparing lists of messages)."""

    def __init__(self, pattern: str):
        self.pattern = re.compile(pattern)

    def __eq__(self, other) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __repr__(self) -> str:
        return f"AnyStr({self.pattern.pattern!r})"


def findings_of(report: dict, subject: str) -> list[dict]:
    return [f for f in report["readiness"]["findings"] if f["subject"] == subject]


def test_readiness_noida_to_tansu_flags_transactional_topics_from_a_stored_probe_run(cluster_pool, env):
    source, target = cluster_pool("source", "noida"), cluster_pool("target", "tansu")
    estate = kp_estate(source)
    probe = run_cli("probe", "--cluster", target.bootstrap, "--only", ",".join(sorted(TXN_CHECKS)), env=env)
    assert probe.returncode == 1, probe.stderr  # Tansu's read_committed shows aborted records
    report = assess_json(env, "--source", source.bootstrap, "--target", target.bootstrap, "--sample-seconds", "0",
                         "--topics", re.escape(estate.topic("txn")), "--topics", re.escape(estate.topic("plain")))
    assert report["readiness"]["probe"]["how"] == "stored run"
    txn = {f["check"]: f for f in findings_of(report, estate.topic("txn"))}
    assert txn["read-committed-hides-aborted"]["level"] == "risk"
    assert "observed c1, c2, a1, a2, c3" in txn["read-committed-hides-aborted"]["evidence"]
    assert "the mirror still copies exactly" in txn["read-committed-hides-aborted"]["remedy"]
    assert txn["transactions"]["level"] == "ok"
    plain = findings_of(report, estate.topic("plain"))
    assert plain and not [f for f in plain if f["check"] in TXN_CHECKS]  # it uses no transactions
    # checks the stored run lacks are said to be so, not passed
    assert {f["level"] for f in plain if f["check"] == "produce-fetch-fidelity"} == {"not probed"}


def test_readiness_tansu_to_noida_flags_no_transaction_behaviour_with_a_probe_run_now(cluster_pool, env):
    source, target = cluster_pool("source", "tansu"), cluster_pool("target", "noida")
    estate = kp_estate(source)
    probe = run_cli("probe", "--cluster", source.bootstrap, "--only", "read-committed-hides-aborted", env=env)
    assert probe.returncode == 1, probe.stderr
    report = assess_json(env, "--source", source.bootstrap, "--target", target.bootstrap, "--sample-seconds", "0",
                         "--probe", "--topics", re.escape(estate.topic("txn")), "--topics",
                         re.escape(estate.topic("plain")))
    assert report["readiness"]["probe"]["how"] == "probed now"
    txn = [f for f in findings_of(report, estate.topic("txn")) if f["check"] in TXN_CHECKS]
    assert {f["check"] for f in txn} == TXN_CHECKS  # Tansu's markers leave gaps: the topic is seen as transactional
    assert {f["level"] for f in txn} == {"ok"}
    assert [f["level"] for f in report["readiness"]["findings"] if f["level"] != "ok"] == []
    assert report["plan"]["throughput_source"].startswith("measured: a real mirror run on the target in probe run")
    # the source's own probe run explains why its aborted records are not counted
    assert report["notes"] == [AnyStr(r"the source shows aborted records to read_committed readers \(probe run \w+ "
                                      r"at [\dT:+-]+\): aborted records cannot be counted there, so transactional "
                                      r"topics are recognised by their offset gaps only \(transactions: likely\)")]


def test_blockers_name_the_nul_header_topic_and_make_the_exit_code_1(cluster_pool, env):
    source, target = cluster_pool("source", "noida"), cluster_pool("target", "tansu")
    estate = kp_estate(source)
    result = run_cli("assess", "--source", source.bootstrap, "--target", target.bootstrap, "--sample-seconds", "0",
                     "--topics", re.escape(estate.prefix) + "(nul|big|schema)", env=env)
    assert result.returncode == 1, result.stderr
    flat = re.sub(r"\n\s+", " ", result.stdout)  # lines below the tables wrap at the terminal width
    assert re.search(rf"BLOCKER topic {re.escape(estate.topic('nul'))}: header names with NUL bytes\. "
                     r"Evidence: header names trace\\x00id", flat)
    assert re.search(rf"RISK topic {re.escape(estate.topic('schema'))}: Schema Registry framed values\. "
                     r"Evidence: .*schema ids 5, 42", flat)
    # not probed: said once, not per topic
    assert len(re.findall("has not been probed", result.stdout)) == 1 and "NOT PROBED" not in result.stdout


def test_topics_and_groups_already_on_the_target_are_name_clashes(cluster_pool, env):
    source, target = cluster_pool("source", "noida"), cluster_pool("target", "tansu")
    topic, group = unique("clash"), unique("clash-group")
    for cluster, partitions in ((source, 3), (target, 1)):
        create_topics(cluster, NewTopic(topic, partitions, 1))
        admin = _admin(cluster)
        try:
            producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, linger_ms=5)
            producer.send(topic, b"x", partition=0).get(15)
            producer.close(5)
            admin.alter_group_offsets(group, {TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
        finally:
            admin.close()
    report = assess_json(env, "--source", source.bootstrap, "--target", target.bootstrap, "--sample-seconds", "0",
                         "--topics", re.escape(topic), expect=1)
    clash = {f["kind"]: f for f in report["readiness"]["findings"] if f["behaviour"] == "name clash on the target"}
    assert clash["topic"]["level"] == "blocker"
    assert clash["topic"]["evidence"] == f"the target already has {topic} with 1 partitions (source: 3)"
    assert clash["group"]["level"] == "risk" and clash["group"]["subject"] == group


def test_a_group_whose_unread_records_near_the_retention_is_flagged(cluster_pool, env):
    source, target = cluster_pool("source", "noida"), cluster_pool("target", "tansu")
    topic, group = unique("expiring"), unique("slow-group")
    day = 86_400_000
    create_topics(source, NewTopic(topic, 1, 1, topic_configs={"retention.ms": str(10 * day)}))
    admin = _admin(source)
    try:
        producer = KafkaProducer(bootstrap_servers=source.bootstrap, linger_ms=5)
        six_days_ago = int(time.time() * 1000) - 6 * day
        for i in range(5):
            producer.send(topic, f"r{i}".encode(), timestamp_ms=six_days_ago + i).get(15)
        producer.close(5)
        admin.alter_group_offsets(group, {TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
    finally:
        admin.close()
    report = assess_json(env, "--source", source.bootstrap, "--target", target.bootstrap, "--sample-seconds", "0",
                         "--topics", re.escape(topic))
    risk = [f for f in findings_of(report, group) if f["behaviour"] == "lag within retention"]
    assert len(risk) == 1 and risk[0]["level"] == "risk"
    assert re.fullmatch(rf"on {re.escape(topic)} its oldest unread record is 14[34]\.\d h old; retention\.ms is "
                        r"240\.0 h \(4 records unread\)", risk[0]["evidence"])


# --- read-only ------------------------------------------------------------------------------------------


def snapshot(cluster: TestCluster) -> dict:
    """Every topic with its partitions' ends, every group with its committed offsets (kafka-python)."""
    admin = _admin(cluster)
    try:
        topics = sorted(admin.list_topics())
        groups = sorted(g["group_id"] for g in admin.list_groups())
    finally:
        admin.close()
    ends = {name: independent(cluster, name)[1] for name in topics if not name.startswith("__")}
    return {"topics": topics, "ends": ends, "groups": {g: committed_offsets(cluster, g) for g in groups}}


def test_assess_changes_nothing_on_either_cluster(private_cluster, env):
    # Clusters of its own: the snapshot reads every topic of both clusters, and the session's shared
    # ones hold whatever earlier tests left (188 s for this test in a full run on them).
    source, target = private_cluster("noida", "source"), private_cluster("tansu", "target")
    estate = kp_estate(source)
    before = snapshot(source), snapshot(target)
    result = run_cli("assess", "--source", source.bootstrap, "--target", target.bootstrap, "--sample-seconds", "1",
                     "--topics", re.escape(estate.prefix) + ".*", env=env)
    assert result.returncode in (0, 1), result.stderr
    assert "TOPICS" in result.stdout
    assert (snapshot(source), snapshot(target)) == before


# --- bad input ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_input_is_one_line_and_exit_2(source_cluster, env, tmp_path):
    out = tmp_path / "report.html"
    not_toml = tmp_path / "costs.toml"
    not_toml.write_text("storage_gb_month = = 1\n")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("storage_gb_month = 1\ntransfer_gb = 1\nworker_hour = 1\negress_gb = 2\n")
    cases = [
        (["--source", f"127.0.0.1:{_free_port()}"], r'^error: cannot reach cluster "source" at 127\.0\.0\.1:\d+ '),
        (["--source", source_cluster.bootstrap, "--target", f"127.0.0.1:{_free_port()}"],
         r'^error: cannot reach cluster "target"'),
        (["--source", source_cluster.bootstrap, "--costs", str(not_toml)],
         rf"^error: costs file {re.escape(str(not_toml))} is not valid TOML"),
        (["--source", source_cluster.bootstrap, "--costs", str(unknown)],
         r"^error: costs file .* has unknown keys: egress_gb; known: currency, storage_gb_month"),
        (["--source", source_cluster.bootstrap, "--topics", "no-such-topic-.*"],
         r"""^error: no topic on cluster "source" matches --topics 'no-such-topic-\.\*'"""),
        (["--source", source_cluster.bootstrap, "--topics", "(unclosed"],
         r"^error: --topics '\(unclosed' is not a valid regular expression"),
        (["--source", source_cluster.bootstrap, "--probe"], r"^error: --probe needs --target"),
    ]
    for args, message in cases:
        result = run_cli("assess", *args, "--format", "html", "--output", str(out), env=env, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert re.search(message, result.stderr), result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert not out.exists()  # nothing half-written


# --- outputs ----------------------------------------------------------------------------------------------


def test_vars_file_names_cutover_variables_and_selects_exactly_the_assessed_topics(cluster_pool, env, tmp_path):
    from importlib import resources

    source = cluster_pool("source", "noida")
    estate = kp_estate(source)
    path = tmp_path / "vars.yaml"
    report = assess_json(env, "--source", source.bootstrap, "--sample-seconds", "0", "--topics",
                         re.escape(estate.prefix) + "(txn|plain)", "--vars-file", str(path))
    values = yaml.safe_load(path.read_text())
    declared = yaml.safe_load((resources.files("migrate.playbooks") / "cutover.yaml").read_text())["vars"]
    assert set(values) <= set(declared)
    assert values == report["plan"]["vars"]
    pattern = re.compile(values["topics"])
    assert [t for t in snapshot(source)["topics"] if pattern.fullmatch(t)] == sorted(
        [estate.topic("plain"), estate.topic("txn")])
    assert sorted(values["groups"].split(",")) == [estate.topic("g-plain"), estate.topic("g-txn")]
    assert values["max_lag"] == 1000


CHROMIUM = shutil.which("chromium")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{unique('p')}"
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium (tests/system-packages.txt) not installed")
def test_html_report_renders_in_a_headless_browser_readiness_first(cluster_pool, env, tmp_path):
    source, target = cluster_pool("source", "noida"), cluster_pool("target", "tansu")
    estate = kp_estate(source)
    page = tmp_path / "assessment.html"
    costs = tmp_path / "costs.toml"
    costs.write_text('currency = "EUR"\nstorage_gb_month = 0.1\ntransfer_gb = 0.05\nworker_hour = 0.2\n')
    result = run_cli("assess", "--source", source.bootstrap, "--target", target.bootstrap, "--sample-seconds", "1",
                     "--topics", re.escape(estate.prefix) + ".*", "--throughput", "20", "--costs", str(costs),
                     "--format", "html", "--output", str(page), env=env)
    assert result.returncode == 1, result.stderr  # the NUL header names are a blocker
    assert f"report written to {page}" in result.stderr
    html_text = page.read_text()
    assert not re.search(r"(src|href)\s*=|<script|@import|url\(", html_text)  # nothing to fetch: self-contained

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 4  # bytes, write rate, lag, record sizes
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", "", dom.stdout, flags=re.S)))
    assert "Estate assessment 1 BLOCKERS" in text
    order = [text.index(h) for h in (" Readiness ", " Topics ", " Consumer groups ", " Charts ", " Plan ")]
    assert order == sorted(order)  # the readiness table comes first
    assert "The target was not probed: pass --probe, or run migrate probe on it first." in text
    assert re.search(rf"topic {re.escape(estate.topic('nul'))} blocker .*?; header names with NUL bytes \[blocker\]",
                     text)
    assert re.search(rf"topic {re.escape(estate.topic('txn'))} not probed transactions \(10 aborted records", text)
    assert "Lag per group (records)" in text and f"{estate.topic('g-plain')}: 20 records" in text
    assert "Record-size distribution" in text and "overlap cost per month" in text and "EUR" in text

    shot = tmp_path / "assessment.png"
    taken = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    assert taken.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_library_assesses_without_a_state_file(source_cluster, target_cluster):
    """run_assessment(None, ...) with a target: no stored probe run to read, so readiness says "not probed"."""
    from migrate.assess.assessment import AssessOptions, run_assessment

    estate = kp_estate(source_cluster)
    result = run_assessment(None, source_cluster.profile, "source", target_cluster.profile, "target",
                            AssessOptions(topics=(re.escape(estate.prefix) + ".*",), sample_seconds=0))
    assert result.inventory.topics and all(t.name.startswith(estate.prefix) for t in result.inventory.topics)
    assert result.readiness is not None and result.readiness.probe.how == "not probed"
    assert result.notes == ()
