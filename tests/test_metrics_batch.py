"""Batch commands leave their outcome as metrics: a textfile for node-exporter, or a Pushgateway push.

The files are parsed with prometheus_client's own parser.  A Pushgateway that does not answer
is a warning line (the result and exit code stand); a metrics file that cannot be written is
one clear line and exit 2 before anything runs.
"""

from __future__ import annotations

import socket
import textwrap

import pytest
from metrics_support import Scrape
from prometheus_client.parser import text_string_to_metric_families
from support import run_cli
from test_validate_cli import env, mirrored, validate  # noqa: F401 (fixtures)


def parse(path) -> Scrape:
    return Scrape({f.name: f for f in text_string_to_metric_families(path.read_text())})


def test_validate_writes_its_outcome_atomically_for_the_textfile_collector(source_cluster, target_cluster, env,
                                                                           mirrored, tmp_path):
    out = tmp_path / "textfile" / "validate.prom"
    out.parent.mkdir()
    clean = validate(source_cluster, target_cluster, env, "--name", "clean", "--metrics-file", str(out))
    assert clean.returncode == 0, clean.stderr
    m = parse(out)
    assert m.value("migrate_validate_success", mirror="clean") == 1
    assert m.value("migrate_validate_exit_code", mirror="clean") == 0
    assert m.value("migrate_validate_parity", mirror="clean") == 1
    assert m.value("migrate_validate_records_compared", mirror="clean") == 40
    assert m.value("migrate_validate_partitions_compared", mirror="clean") == 1
    assert {s.labels["kind"]: s.value for s in m.samples("migrate_validate_divergences")} == {
        "missing": 0, "extra": 0, "mutated": 0, "reordered": 0}
    # the incremental cursor: the next run of this scope starts after the 40 records on both sides
    assert {(s.labels["topic"], s.labels["side"]): s.value for s in m.samples("migrate_validate_cursor_offset")} == {
        (mirrored, "source"): 40, (mirrored, "target"): 40}
    assert m.value("migrate_validate_duration_seconds") > 0
    assert m.value("migrate_validate_last_run_timestamp_seconds") > 1.7e9
    assert [p.name for p in out.parent.iterdir()] == ["validate.prom"]  # no temporary file left behind

    bad = validate(source_cluster, target_cluster, env, "--name", "bad", "--metrics-file", str(out))
    assert bad.returncode == 1
    m = parse(out)
    assert m.value("migrate_validate_success", mirror="bad") == 0
    assert m.value("migrate_validate_exit_code", mirror="bad") == 1
    assert m.value("migrate_validate_parity", mirror="bad") == 0
    assert m.value("migrate_validate_divergences", mirror="bad", kind="mutated") == 1


def test_a_pushgateway_that_does_not_answer_is_a_warning_and_changes_nothing(source_cluster, target_cluster, env,
                                                                              mirrored):
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        plain = validate(source_cluster, target_cluster, env, "--name", "clean")
        pushed = validate(source_cluster, target_cluster, env, "--name", "clean", "--pushgateway", url)
    assert plain.returncode == pushed.returncode == 0, pushed.stderr
    assert "PARITY" in pushed.stdout
    warnings = [line for line in pushed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, pushed.stderr
    assert warnings[0].startswith(f"warning: could not push metrics to the Pushgateway at {url} (")
    assert warnings[0].endswith("; the command's result is unchanged")
    assert "Traceback" not in pushed.stderr


@pytest.mark.slow  # the migrate CLI in a child process
def test_an_unwritable_metrics_file_is_one_line_and_exit_2_before_anything_runs(tmp_path):
    state = tmp_path / "state.db"
    for path, expected in [
        (tmp_path / "missing" / "v.prom",
         f"error: --metrics-file {tmp_path / 'missing' / 'v.prom'}: directory {tmp_path / 'missing'} does not "
         "exist; create it or pick another path"),
        (tmp_path / "v.txt",
         f"error: --metrics-file {tmp_path / 'v.txt'}: name it *.prom (the node-exporter textfile collector reads "
         "only those)"),
        (tmp_path, f"error: --metrics-file {tmp_path}: name it *.prom (the node-exporter textfile collector reads "
                   "only those)"),
    ]:
        # bootstrap addresses nobody answers on: the metrics check must come first
        result = run_cli("--state", str(state), "validate", "--source", "127.0.0.1:1", "--target", "127.0.0.1:2",
                         "--metrics-file", str(path))
        assert result.returncode == 2
        assert result.stderr.strip() == expected
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow  # the migrate CLI in a child process
def test_a_bad_pushgateway_url_is_one_line(tmp_path):
    result = run_cli("--state", str(tmp_path / "s.db"), "validate", "--source", "127.0.0.1:1", "--target",
                     "127.0.0.1:2", "--pushgateway", "pushgateway:9091")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --pushgateway pushgateway:9091: give a URL like http://pushgateway:9091"


@pytest.mark.slow  # the migrate CLI in a child process
def test_a_playbook_run_leaves_step_durations_and_its_downtime_window(tmp_path):
    (tmp_path / "p.yaml").write_text(textwrap.dedent("""
        name: tiny
        steps:
          - name: stop consumers
            action: exec
            with: {command: "sleep 0.2"}
            downtime: start
          - name: start consumers
            action: exec
            with: {command: "true"}
            downtime: end
    """))
    out = tmp_path / "playbook.prom"
    result = run_cli("--state", str(tmp_path / "state.db"), "playbook", "run", str(tmp_path / "p.yaml"),
                     "--metrics-file", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    m = parse(out)
    assert m.value("migrate_playbook_success", mode="run") == 1
    assert m.value("migrate_playbook_run_succeeded", playbook="tiny") == 1
    steps = {s.labels["name"]: s.value for s in m.samples("migrate_playbook_step_duration_seconds")}
    assert set(steps) == {"stop consumers", "start consumers"}
    assert steps["stop consumers"] >= 0.2
    downtime = m.value("migrate_playbook_downtime_seconds", playbook="tiny")
    # the window spans both steps; it comes from the journal's millisecond timestamps, the steps
    # from a monotonic clock: equal up to rounding
    assert downtime >= steps["stop consumers"] - 0.005

    failing = tmp_path / "f.yaml"
    failing.write_text("name: broken\nsteps:\n  - name: fails\n    action: exec\n    with: {command: 'exit 3'}\n")
    result = run_cli("--state", str(tmp_path / "state.db"), "playbook", "run", str(failing),
                     "--metrics-file", str(out), cwd=tmp_path)
    assert result.returncode == 1
    m = parse(out)
    assert m.value("migrate_playbook_success", mode="run") == 0
    assert m.value("migrate_playbook_exit_code", mode="run") == 1
    assert m.value("migrate_playbook_run_succeeded", playbook="broken") == 0


def test_offsets_sync_leaves_groups_by_outcome(source_cluster, target_cluster, env, mirrored, tmp_path):
    # A named group that does not exist is an error (exit 2): the run still leaves its outcome behind.
    out = tmp_path / "sync.prom"
    result = run_cli("offsets", "sync", "--name", "clean", "--group", "nobody-committed", "--source",
                     source_cluster.bootstrap, "--target", target_cluster.bootstrap, "--metrics-file", str(out),
                     env=env)
    assert result.returncode == 2, result.stderr
    assert "nobody-committed not found" in result.stderr
    m = parse(out)
    assert m.value("migrate_offsets_sync_success", mirror="clean") == 0
    assert m.value("migrate_offsets_sync_exit_code", mirror="clean") == 2