"""`migrate probe` against the two real local platforms, and its gates.

The probe is run once per platform for the module (about 10 s on noida-db, 35 s on Tansu)
and the tests read its report: it must find Tansu's deviations on its own and pass the
same behaviours on noida-db.  CLI tests use `--only` so that each stays short.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import UsageError
from migrate.probe.checks import Check
from migrate.probe.context import ProbeContext
from migrate.probe.diff import probe_diff
from migrate.probe.isolation import run_isolated
from migrate.probe.model import BOTH, CONFLUENT, KAFKA_PYTHON, CheckResult, ProbeReport
from migrate.probe.requirements import check_requirements, transaction_warning, transactions_trustworthy
from migrate.probe.runner import run_probe
from migrate.probe.store import load_latest, save_report
from migrate.state import State
from support import run_cli

# Behaviours both platforms get right; the probe must pass them everywhere.
WORKS_EVERYWHERE = [
    "produce-fetch-fidelity", "compression-gzip", "compression-snappy", "compression-lz4", "compression-zstd",
    "list-offsets-earliest", "idempotent-producer", "transactions", "transaction-markers-take-offsets",
    "read-uncommitted", "group-join", "group-rebalance", "group-offset-commit", "group-offset-commit-inactive-admin",
    "group-offset-commit-active-refused", "create-topic-configs", "alter-configs", "delete-topics",
    "max-record-size", "produce-latency", "end-to-end-latency", "throughput",
]


@pytest.fixture(scope="module")
def noida(cluster_pool):
    cluster = cluster_pool("source", "noida")
    return cluster, run_probe(cluster.profile, cluster=cluster.bootstrap)


@pytest.fixture(scope="module")
def tansu(cluster_pool):
    cluster = cluster_pool("target", "tansu")
    return cluster, run_probe(cluster.profile, cluster=cluster.bootstrap)


def statuses(report: ProbeReport, name: str) -> dict[str, str]:
    return {r.client: r.status for r in report.named(name)}


def test_noida_passes_every_check_it_supports(noida):
    _, report = noida
    assert not report.problems(), [(r.name, r.client, r.observed) for r in report.problems()]
    for name in ["list-offsets-latest", "list-offsets-by-timestamp", "read-committed-hides-aborted",
                 "list-offsets-latest-after-transactions", "create-partitions", "delete-records", "acl-api",
                 "describe-groups", "list-groups", "delete-groups", "offset-out-of-range"]:
        assert set(statuses(report, name).values()) == {"pass"}, name
    # kafka-python ran where it has the API, and agrees with confluent-kafka
    assert statuses(report, "read-committed-hides-aborted") == {CONFLUENT: "pass", KAFKA_PYTHON: "pass"}
    assert statuses(report, "client-agreement") == {BOTH: "pass"}
    # noida-db does not offer the SCRAM user API: reported, not failed
    assert set(statuses(report, "scram-api").values()) == {"unsupported"}


def test_probe_finds_tansu_deviations_on_its_own(tansu):
    _, report = tansu
    for name in ["list-offsets-latest", "list-offsets-by-timestamp", "read-committed-hides-aborted"]:
        assert statuses(report, name) == {CONFLUENT: "fail", KAFKA_PYTHON: "fail"}, name
    latest = report.get("list-offsets-latest", CONFLUENT)
    assert latest.observed == "7" and "9" in latest.expected  # batches of 5, 1, 3: base of the last + 1
    assert report.get("read-committed-hides-aborted", CONFLUENT).observed == "c1, c2, a1, a2, c3"
    assert set(statuses(report, "create-partitions").values()) == {"unsupported"}
    delete_records = report.get("delete-records", CONFLUENT)
    assert delete_records.status == "unsupported" and "closed the connection" in delete_records.observed
    # create_acls aborts a confluent-kafka process on Tansu: isolated, it is a finding and we are still here
    acl = report.get("acl-api", CONFLUENT)
    assert acl.status == "fail" and "SIGABRT" in acl.observed
    for name in ["offset-out-of-range", "group-offset-commit-metadata", "group-offset-commit-unknown-partition",
                 "delete-groups", "describe-configs-defaults", "create-topic-validation", "config-log-append-time"]:
        assert report.get(name, CONFLUENT).status == "fail", name
    assert report.get("describe-groups", CONFLUENT).observed.startswith("state STABLE, 0 members")
    assert report.get("alter-configs-legacy", CONFLUENT).status == "unsupported"


def test_tansu_passes_what_works_there(tansu):
    _, report = tansu
    for name in WORKS_EVERYWHERE:
        assert set(statuses(report, name).values()) == {"pass"}, (name, report.named(name))
    join = report.get("group-join", CONFLUENT)
    assert join.observed.startswith("joined in ")  # the join time is reported as a figure
    assert report.get("auto-create-on-produce", CONFLUENT).observed == "auto-created with 4 partitions"


def test_scratch_topics_and_groups_are_deleted(noida, tansu):
    for cluster, report in (noida, tansu):
        prefix = f"__migrate.probe.{report.run_id}."
        assert report.kept_topics == ()
        assert [t for t in kafka.list_topics(cluster.profile) if t.startswith(prefix)] == []
        admin = kafka.admin(cluster.profile)
        groups = admin.list_consumer_groups(request_timeout=10).result(15).valid
        assert [g.group_id for g in groups if g.group_id.startswith(prefix)] == []


def test_diff_lists_tansu_gaps(noida, tansu):
    gaps = probe_diff(noida[1], tansu[1])
    lacking = {(g.check, g.client) for g in gaps}
    for name in ["list-offsets-latest", "list-offsets-by-timestamp", "read-committed-hides-aborted",
                 "create-partitions", "delete-records"]:
        assert (name, CONFLUENT) in lacking and (name, KAFKA_PYTHON) in lacking, name
    assert ("transactions", CONFLUENT) not in lacking
    # the other way round, Tansu's list-offsets gaps are not noida's
    assert "list-offsets-latest" not in {g.check for g in probe_diff(tansu[1], noida[1])}


def test_results_are_stored_and_diffed_from_the_cli(noida, tansu, tmp_path):
    state_file = tmp_path / "state.db"
    with State(state_file) as state:
        for _, report in (noida, tansu):
            assert save_report(state, report) == len(report.results)
        loaded = load_latest(state, noida[0].bootstrap)
        assert {(r.name, r.client, r.status) for r in loaded.results} == \
               {(r.name, r.client, r.status) for r in noida[1].results}
    env = {"MIGRATE_STATE": str(state_file), "MIGRATE_CONFIG": str(tmp_path / "none.toml")}
    done = run_cli("probe", "diff", "--source", noida[0].bootstrap, "--target", tansu[0].bootstrap, env=env)
    assert done.returncode == 1, done.stderr
    assert "list-offsets-latest" in done.stdout and "read-committed-hides-aborted" in done.stdout
    assert "delete-records" in done.stdout and "create-partitions" in done.stdout
    assert "end-to-end-latency" in done.stdout  # figures side by side
    done = run_cli("probe", "diff", "--source", noida[0].bootstrap, "--target", tansu[0].bootstrap,
                   "--format", "json", env=env)
    gaps = json.loads(done.stdout)["gaps"]
    assert {"check": "list-offsets-latest", "client": CONFLUENT} in [{"check": g["check"], "client": g["client"]}
                                                                       for g in gaps]
    done = run_cli("probe", "diff", "--source", noida[0].bootstrap, "--target", "127.0.0.1:1", env=env)
    assert done.returncode == 2
    assert "no stored probe results for target" in done.stderr and "migrate probe --cluster 127.0.0.1:1" in done.stderr


def test_cli_only_and_keep(tansu, tmp_path):
    cluster, _ = tansu
    env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "none.toml")}
    done = run_cli("probe", "--cluster", cluster.bootstrap, "--only", "list-offsets-latest,delete-topics", "--keep",
                   "--format", "json", env=env)
    assert done.returncode == 1, done.stderr  # list-offsets-latest fails on Tansu
    report = json.loads(done.stdout)
    assert {(r["name"], r["client"]) for r in report["results"]} == {
        ("list-offsets-latest", CONFLUENT), ("list-offsets-latest", KAFKA_PYTHON), ("delete-topics", CONFLUENT),
        ("client-agreement", BOTH)}
    kept = report["kept_topics"]
    assert kept and all(t.startswith(f"__migrate.probe.{report['run_id']}.") for t in kept)
    assert set(kept) <= set(kafka.list_topics(cluster.profile))
    kafka.delete_topics(cluster.profile, kept)
    with State(tmp_path / "state.db") as state:
        stored = load_latest(state, cluster.bootstrap)
        assert stored.get("list-offsets-latest", CONFLUENT).status == "fail"


def test_cli_exit_codes(noida, tmp_path):
    cluster, _ = noida
    env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "none.toml")}
    done = run_cli("probe", "--cluster", cluster.bootstrap, "--only", "list-offsets-latest", env=env)
    assert done.returncode == 0, done.stderr
    assert "list-offsets-latest" in done.stdout and "results saved" in done.stdout
    done = run_cli("probe", "--cluster", cluster.bootstrap, "--only", "no-such-check", env=env)
    assert done.returncode == 2 and "unknown check name(s): no-such-check" in done.stderr
    done = run_cli("probe", env=env)
    assert done.returncode == 2 and "pass --cluster" in done.stderr
    done = run_cli("probe", "checks", "--format", "json", env=env)
    assert done.returncode == 0
    listed = [row["check"] for row in json.loads(done.stdout)]
    assert "read-committed-hides-aborted" in listed and "group-offset-commit-inactive-admin" in listed
    done = run_cli("probe", "--cluster", "127.0.0.1:1", env=env)
    assert done.returncode == 2 and 'cannot reach cluster "cluster" at 127.0.0.1:1' in done.stderr


# --- gates, without a broker ------------------------------------------------------------------------


def _report(*results: CheckResult) -> ProbeReport:
    return ProbeReport("target", "127.0.0.1:9", "run", "2026-11-27T00:00:00+00:00", 1.0, results)


def test_check_requirements():
    report = _report(
        CheckResult("transactions", CONFLUENT, "pass", "", ""),
        CheckResult("transactions", KAFKA_PYTHON, "pass", "", ""),
        CheckResult("list-offsets-latest", CONFLUENT, "pass", "", "9"),
        CheckResult("list-offsets-latest", KAFKA_PYTHON, "fail", "9", "7"),
        CheckResult("delete-records", CONFLUENT, "unsupported", "", "closed"),
    )
    assert check_requirements(report, ["transactions"]) == []
    unmet = {u.name: u.reason for u in check_requirements(
        report, ["transactions", "list-offsets-latest", "delete-records", "group-offset-commit"])}
    assert set(unmet) == {"list-offsets-latest", "delete-records", "group-offset-commit"}
    assert unmet["list-offsets-latest"] == "kafka-python: fail (7)"  # one client failing is enough
    assert unmet["delete-records"].startswith("confluent-kafka: unsupported")
    assert "not probed" in unmet["group-offset-commit"] and "--only group-offset-commit" in unmet["group-offset-commit"]
    with pytest.raises(UsageError, match="unknown requirement name"):
        check_requirements(report, ["transactionz"])


def test_transactions_trustworthy():
    good = [CheckResult(n, CONFLUENT, "pass", "", "") for n in
            ("transactions", "read-committed-hides-aborted", "transaction-markers-take-offsets")]
    assert transactions_trustworthy(_report(*good))
    assert transaction_warning(_report(*good)) is None
    bad = _report(*good[:1], CheckResult("read-committed-hides-aborted", CONFLUENT, "fail", "", "c1, a1"), good[2])
    assert not transactions_trustworthy(bad)
    assert "read-committed-hides-aborted" in transaction_warning(bad) and "at-least-once" in transaction_warning(bad)


# --- isolation: a check that kills or hangs its process is a finding, not the end of the probe -----


def _aborting_check(ctx):
    os.abort()


def _hanging_check(ctx):
    time.sleep(60)


def _answering_check(ctx):
    return [CheckResult("_answering_check", CONFLUENT, "pass", "an answer", f"token {ctx.token}")]


@pytest.fixture
def isolated(monkeypatch):
    # the child process imports this module by name to find the check
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                  os.environ.get("PYTHONPATH")])))
    ctx = ProbeContext(ClusterProfile("x", {"bootstrap.servers": "127.0.0.1:9", "sasl.password": "s3cret-pw"}), "tok")

    def run(function, timeout_s=20.0):
        check = Check(f"test_probe:{function.__name__}", ("isolated-check",), CONFLUENT, function, True, timeout_s)
        return run_isolated(check, ctx)

    return run


@pytest.mark.slow  # the probe's isolated child process
def test_isolated_crash_and_hang_become_findings(isolated):
    crashed = isolated(_aborting_check)
    assert [(r.name, r.status) for r in crashed] == [("isolated-check", "fail")]
    assert "crashed the process (SIGABRT)" in crashed[0].observed
    hung = isolated(_hanging_check, timeout_s=2)
    assert hung[0].status == "fail" and "hung: no answer within 2s" in hung[0].observed
    answered = isolated(_answering_check)
    assert [(r.name, r.status, r.observed) for r in answered] == [("_answering_check", "pass", "token tok")]


def test_stored_picture_is_the_latest_result_of_each_check(tmp_path):
    first = ProbeReport("c", "127.0.0.1:9", "run1", "2026-11-27T00:00:00+00:00", 1.0, (
        CheckResult("transactions", CONFLUENT, "pass", "", "ok"),
        CheckResult("transactions", KAFKA_PYTHON, "pass", "", "ok"),
        CheckResult("list-offsets-latest", CONFLUENT, "fail", "9", "7"),
        CheckResult("client-agreement", BOTH, "pass", "", "1 compared"),
    ), cluster_id="id-1")
    rerun = ProbeReport("c", "127.0.0.1:9", "run2", "2026-11-27T00:01:00+00:00", 1.0, (
        CheckResult("transactions", KAFKA_PYTHON, "fail", "", "fenced"),
    ), cluster_id="id-1")
    with State(tmp_path / "state.db") as state:
        assert load_latest(state, "c", "127.0.0.1:9") is None
        save_report(state, first)
        save_report(state, rerun)
        picture = load_latest(state, "c", "127.0.0.1:9", "id-1")
        by_bootstrap = load_latest(state, "other-name", "127.0.0.1:9")
        # a run belongs to the cluster it probed, not to the name it was given
        assert load_latest(state, "c") is None
        assert load_latest(state, "c", "127.0.0.1:10", "id-1") is None  # another bootstrap
        assert load_latest(state, "c", "127.0.0.1:9", "id-2") is None  # a new cluster on the same port
    assert picture.run_id == "run2" and picture.cluster_id == "id-1"
    assert picture.get("transactions", KAFKA_PYTHON).status == "fail"  # refreshed by the rerun
    assert picture.get("transactions", CONFLUENT).status == "pass"  # kept from the first run
    assert picture.get("list-offsets-latest", CONFLUENT).observed == "7"
    # the derived rows are recomputed from the picture, not read back
    assert picture.get("client-agreement-transactions", BOTH).status == "fail"
    assert picture.get("client-agreement", BOTH).status == "fail"
    assert by_bootstrap is not None and len(by_bootstrap.results) == len(picture.results)


@pytest.mark.slow  # brokers, through request.getfixturevalue
@pytest.mark.parametrize("which", ["noida", "tansu"])
def test_probe_shows_header_names_with_a_nul_byte_kept_by_the_platform_and_cut_by_librdkafka(which, request):
    _, report = request.getfixturevalue(which)
    assert statuses(report, "header-name-nul") == {KAFKA_PYTHON: "pass"}
    observed = report.get("header-name-nul", KAFKA_PYTHON).observed
    assert "('trace\\x00id', b'span\\x00value')" in observed  # the platform kept it, byte for byte
    assert "reads [('trace', b'span\\x00value')]" in observed  # librdkafka cut the name at the NUL
