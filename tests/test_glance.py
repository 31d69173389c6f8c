"""What a new user sees at 80 columns (issue 25): every command's default output on the seeded
estate fits the width, a cause shared by many rows is said once, and the figures it prints are
the ones an independent reader (kafka-python) counts and the mirror copies.

One seeded estate (noida-db source, Tansu target, the session's shared clusters, a prefix of
its own) serves the module: seeded once, mirrored once, probed once for the checks the plan
needs.
"""

from __future__ import annotations

import json
import re

import pytest

from migrate.seed import seed_estate
from support import kafka_python_read, run_cli, unique

WIDTH = 80
# probe checks whose evidence is long on Tansu, plus the figures the plan uses
PROBE_ONLY = "list-offsets-latest,describe-configs,read-committed-hides-aborted,throughput,mirror-throughput"


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


class Estate:
    def __init__(self, tmp_path, source, target):
        self.source, self.target = source, target
        self.prefix = unique("glance") + "."
        self.mirror = unique("glance-m")
        self.env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml"),
                    "COLUMNS": str(WIDTH)}
        (tmp_path / "migrate.toml").write_text(
            f'[clusters.source]\n"bootstrap.servers" = "{source.bootstrap}"\n\n'
            f'[clusters.target]\n"bootstrap.servers" = "{target.bootstrap}"\n')
        self.selection = ("--source", "source", "--target", "target", "--topics", re.escape(self.prefix) + ".*",
                          "--sample-seconds", "0")

    def cli(self, *args: str, expect: int = 0):
        result = run_cli(*args, env=self.env)
        assert result.returncode == expect, result.stdout[-2000:] + result.stderr[-2000:]
        return result


@pytest.fixture(scope="module")
def estate(tmp_path_factory, cluster_pool):
    made = Estate(tmp_path_factory.mktemp("glance"), cluster_pool("source", "noida"), cluster_pool("target", "tansu"))
    made.seeded = seed_estate(made.source.profile, prefix=made.prefix)
    return made


def committed_and_aborted(estate) -> tuple[int, int]:
    """Records of the seeded topics as kafka-python reads them on the source (noida-db hides aborted ones)."""
    committed = everything = 0
    for t in estate.seeded.topics:
        committed += sum(len(p) for p in kafka_python_read(estate.source.profile, t.name).values())
        everything += sum(len(p) for p in kafka_python_read(estate.source.profile, t.name,
                                                            isolation="read_uncommitted").values())
    return committed, everything - committed


def test_assess_without_a_probe_says_so_once_and_counts_exactly(estate):
    out = estate.cli("assess", *estate.selection).stdout
    assert widest(out) <= WIDTH, out
    committed, aborted = committed_and_aborted(estate)
    assert (committed, aborted) == (2874, 20)  # the seeded estate, read by the independent client
    # one line for the shared cause, no line per finding
    assert len(re.findall(r"has not been probed", out)) == 1, out
    assert "run `migrate probe --cluster target` or add `--probe`" in re.sub(r"\n\s+", " ", out)
    assert "NOT PROBED" not in out and "--only" not in out.split("TOPICS")[0]
    # every partition was read whole: counted figures carry no ~, committed and aborted apart
    flat = re.sub(r"\n\s+", " ", out)
    assert f"7 topics, 21 partitions, {committed:,} committed records (+{aborted} aborted, not copied)" in flat
    assert "~" not in flat.split("TOPICS")[1].split("target storage")[0], out
    assert re.search(rf"initial copy\s+{committed:,} committed records", out)
    assert f"TOPICS (names under {estate.prefix})" in out
    tool_results = next(line for line in out.splitlines() if line.startswith("tool.results "))
    assert tool_results.split()[1:4] == ["3", "206", "10"]  # partitions, committed, aborted


def test_assess_plan_uses_what_a_mirror_worker_reaches(estate):
    report = json.loads(estate.cli("assess", *estate.selection, "--probe", "--format", "json").stdout)
    plan, topics = report["plan"], report["inventory"]["topics"]
    assert plan["throughput_source"].startswith("measured: a real mirror run on the target in probe run")
    assert "with one worker, 4 partitions" in plan["throughput_source"]
    assert plan["throughput_records_s"] > 0
    committed, aborted = committed_and_aborted(estate)
    assert (plan["copy_records_estimate"], plan["copy_aborted_records"], plan["copy_exact"]) == (committed, aborted, True)
    assert all(t["sample_complete"] for t in topics)
    assert sum(t["committed_records"] for t in topics) == committed
    # the figure is the mirror run's, not the raw producer's (the throughput check was not even run)
    measured = re.search(r": ([\d.]+) MB/s \(([\d,]+) records/s\) with one worker", plan["throughput_source"])
    assert plan["throughput_mb_s"] == float(measured.group(1))
    assert plan["throughput_records_s"] == float(measured.group(2).replace(",", ""))
    assert "msg/s" not in plan["throughput_source"]
    # and the mirror copies exactly the records the plan counts
    copied = estate.cli("mirror", "--source", "source", "--target", "target", "--name", estate.mirror,
                        "--topics", re.escape(estate.prefix) + ".*", "--until-caught-up").stdout
    assert re.match(rf"mirror {re.escape(estate.mirror)}: {committed} records ", copied), copied
    table = estate.cli("assess", *estate.selection).stdout  # the stored probe run now
    assert widest(table) <= WIDTH, table
    assert "has not been probed" not in table
    flat = re.sub(r"\s+", " ", table)
    assert re.search(r"copy throughput [\d.]+ MB/s, [\d,]+ records/s per worker \(measured: a real", flat), table


def test_mirror_status_is_one_row_per_topic_with_a_total(estate):
    estate.cli("mirror", "--source", "source", "--target", "target", "--name", estate.mirror,
               "--topics", re.escape(estate.prefix) + ".*", "--until-caught-up")
    out = estate.cli("mirror", "status", "--name", estate.mirror).stdout
    assert widest(out) <= WIDTH, out
    lines = out.splitlines()
    assert lines[0] == f"topics under {estate.prefix}"
    assert lines[1].split() == ["topic", "partitions", "lag", "vanished", "states", "workers"]
    assert len(lines) >= 1 + 2 + 7 + 1  # prefix, header, rule, a row per topic, the summary (wrapped)
    assert lines[3].split() == ["agent.decisions", "3", "0", "0", "3", "stopped", "0/1", "alive"]
    assert re.fullmatch(rf"mirror {re.escape(estate.mirror)}: 7 topics, 21 partitions, lag 0; 21 stopped; "
                        r"0 of 1 workers alive", re.sub(r"\s+", " ", " ".join(lines[10:])))
    rows = json.loads(estate.cli("mirror", "status", "--name", estate.mirror, "--format", "json").stdout)
    assert len(rows) == 21 and {"worker_alive", "last_commit", "target_topic"} <= set(rows[0])  # json: everything
    wide = estate.cli("mirror", "status", "--name", estate.mirror, "--wide").stdout
    assert len(wide.splitlines()) >= 2 + 21 + 1 and "last_commit" in wide.splitlines()[0]


def test_probe_table_fits_and_keeps_the_evidence_below_it(estate):
    out = estate.cli("probe", "--cluster", "target", "--only", PROBE_ONLY, expect=1).stdout
    assert widest(out) <= WIDTH, out
    table = out.split("\n\n")[0].splitlines()
    assert table[0].split() == ["check", "confluent-kafka", "kafka-python"]
    assert table[2].split()[0] == "list-offsets-latest"  # problems first
    assert "FAIL list-offsets-latest (confluent-kafka): expected LATEST = 9" in out
    assert re.search(r"mirror-throughput \(confluent-kafka\): copied 20,000 records", out)
    wide = estate.cli("probe", "--cluster", "target", "--only", "list-offsets-latest", "--wide", expect=1).stdout
    assert wide.splitlines()[0].split() == ["check", "client", "status", "evidence"]


def test_seed_output_fits(estate, tmp_path):
    out = estate.cli("local", "seed", "--cluster", "source", "--prefix", unique("glance-seed") + ".").stdout
    assert widest(out) <= WIDTH, out
    assert "tool.results" in out and "10 aborted" in re.sub(r"\s+", " ", out)


# --- fast: the demo's result and tables of counts, rendered at 80 columns -----------------------------------


def test_demo_result_fits_and_its_figures_say_what_they_count(monkeypatch):
    from migrate.cli.demo import render
    from migrate.demo.live import GroupProof, Proof
    from migrate.demo.run import DemoSummary

    monkeypatch.setenv("COLUMNS", str(WIDTH))
    proof = Proof(1946, (GroupProof("demo326a.live.engine", 1946, 0, 0, 0), GroupProof("demo326a.live.audit", 1946, 0, 0, 0)))
    summary = DemoSummary(
        "noida-db at 127.0.0.1:46799", "Tansu at 127.0.0.1:41651", "demo326a.", 2874, 7, 4506,
        "(map mode, beginning -> 2026-12-06T18:50:39.383Z, mirror demo326a): 2874 records compared in 0.5s: PARITY",
        "PASSED: cutover 23.6s, rollback 2.8s, downtime 1.37s", "succeeded in 7.6s (run 20261206-185116-d6f5)", 6,
        1.8, proof, 314, 52.6, final_lag=0, seeded_aborted=20, live_on_source=1632, mirrored_seeded=2874,
        mirrored_live=1632)
    text = render(summary)
    assert widest(text) <= WIDTH, text
    flat = re.sub(r"\s+", " ", text)
    assert "records mirrored 4,506: 2,874 seeded + 1,632 live events of the source" in flat
    assert "live events produced 1,946: 1,632 on the source, 314 on the target" in flat
    assert "DOES NOT ADD UP" not in flat and "http" not in flat  # nothing that is gone once the demo ends
    assert flat.strip().endswith("PROOF HOLDS: 1,946 live events, each processed once by every group: lost 0, "
                                 "processed twice 0. The runs: migrate playbook history")
    off = DemoSummary(**{**summary.__dict__, "mirrored_live": 1631})
    assert "DOES NOT ADD UP" in re.sub(r"\s+", " ", render(off))


def test_wrapped_columns_keep_counts_with_separators(monkeypatch):
    from migrate.cli.common import table_text

    monkeypatch.setenv("COLUMNS", "40")
    text = table_text([{"what": "processed", "result": "2,082"},
                       {"what": "b", "result": "a few more words than forty columns hold, wrapped"}])
    assert widest(text) <= 40 and "2,082" in text  # tabulate alone raises ValueError on that cell
