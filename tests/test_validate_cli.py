"""`migrate validate` through the real entry point: output, reports, history and exit codes 0/1/2."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree as ET

import pytest

from migrate.records import Record
from migrate.state import State
from support import run_cli, unique
from test_validate_kafka import Write, copy, make_topic, produce, rows


@pytest.fixture
def env(tmp_path):
    return {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml")}


@pytest.fixture
def mirrored(source_cluster, target_cluster, tmp_path, env):
    """A topic mirrored with one mutated value at offset 5 into `<topic>-bad`, and cleanly into `<topic>`."""
    topic = unique("cli")
    for t in (topic,):
        make_topic(source_cluster.profile, t)
        make_topic(target_cluster.profile, t)
    produce(source_cluster.profile, topic, rows(40))
    with State(env["MIGRATE_STATE"]) as state:
        copy(source_cluster.profile, target_cluster.profile, state, topic, topic, mirror="clean")

        def mutate(ws):
            r = ws[5].record
            ws[5] = Write(Record(r.topic, 0, r.offset, r.key, b"mutated", r.headers, r.timestamp), 5)
            return ws

        bad = topic + "-bad"
        make_topic(target_cluster.profile, bad)
        copy(source_cluster.profile, target_cluster.profile, state, topic, bad, mirror="bad", plan=mutate)
    return topic


def validate(source, target, env, *args):
    return run_cli("validate", "--source", source.bootstrap, "--target", target.bootstrap, *args, env=env)


def test_parity_exits_0_and_writes_a_self_contained_html_report(source_cluster, target_cluster, env, mirrored,
                                                                tmp_path):
    report = tmp_path / "out" / "parity.html"
    for _ in range(2):  # two runs, so the chart has a history
        out = validate(source_cluster, target_cluster, env, "--name", "clean", "--report", str(report))
        assert out.returncode == 0, out.stderr
    assert re.search(r"validation run 2 \(map mode, beginning -> .*\): 40 records compared in .*: PARITY", out.stdout)
    assert mirrored in out.stdout
    page = report.read_text()
    assert "PARITY" in page and "<svg" in page and mirrored in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no network assets
    assert not list(report.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_divergence_exits_1_with_examples_in_json_and_junit(source_cluster, target_cluster, env, mirrored,
                                                            tmp_path):
    out = validate(source_cluster, target_cluster, env, "--name", "bad", "--format", "json")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["parity"] is False and data["counts"] == {"missing": 0, "extra": 0, "mutated": 1, "reordered": 0}
    assert data["examples"] == [{"kind": "mutated", "topic": mirrored, "partition": 0, "source_offset": 5,
                                 "target_offset": 5, "target_partition": 0, "key": "k5", "field": "value",
                                 "detail": "value differs"}]
    report = tmp_path / "parity.xml"
    out = validate(source_cluster, target_cluster, env, "--name", "bad", "--format", "junit", "--report", str(report))
    assert out.returncode == 1
    for xml in (out.stdout, report.read_text()):
        suites = ET.fromstring(xml.split("\n", 1)[1])
        assert suites.get("failures") == "1"
        failure = suites.find("testsuite/testcase/failure")
        assert "1 mutated" in failure.get("message") and "source_offset=5" in failure.text


def test_history_lists_runs_with_the_change_since_the_previous_run(source_cluster, target_cluster, env, mirrored):
    assert validate(source_cluster, target_cluster, env, "--name", "bad").returncode == 1
    assert validate(source_cluster, target_cluster, env, "--name", "bad", "--ignore-timestamp").returncode == 1
    out = run_cli("validate", "history", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)
    assert [r["result"] for r in runs] == ["divergence", "divergence"]
    assert runs[0]["change"] == "same" and runs[1]["change"] is None and runs[0]["records_compared"] == 40
    table = run_cli("validate", "history", env=env)
    assert "divergence" in table.stdout and "records_compared" in table.stdout
    one = run_cli("validate", "history", "--run", str(runs[0]["id"]), env=env)
    assert json.loads(one.stdout)["counts"]["mutated"] == 1


@pytest.mark.parametrize("args,message", [
    (["--since", "yesterday-ish"], "cannot read time"),
    (["--incremental", "--since", "1h"], "cannot be combined"),
    (["--sample", "0"], "--sample must be"),
    (["--headers", ","], "--headers takes"),
    (["--report", "x.pdf"], "use a .html, .xml"),
    (["--match", "map", "--name", "never-mirrored"], 'no mirror named "never-mirrored" in '),
])
def test_usage_errors_exit_2_with_one_line(source_cluster, target_cluster, env, args, message):
    out = validate(source_cluster, target_cluster, env, *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unreachable_cluster_exits_2(target_cluster, env):
    out = run_cli("validate", "--source", "127.0.0.1:1", "--target", target_cluster.bootstrap, env=env)
    assert out.returncode == 2 and "cannot reach cluster" in out.stderr and "Traceback" not in out.stderr
