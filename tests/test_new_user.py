"""What a new user hit (issue 12), each point run as a user runs it: through `migrate ...`.

Real brokers: noida-db source, Tansu target.  One mirror, named `estate` (not `default`, as in
the report), copies topic A; topic B exists on the source only and is never mirrored.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import groups as kgroups
from migrate.state import State
from support import run_cli, unique, wait_until
from test_offsets_sync import set_offsets, write_records



def _write(profile, topic: str, partitions: int = 2) -> None:
    write_records(profile, topic, partitions)  # 20 records per partition


class Setup:
    """Config with `source` and `target` profiles, a state file, and the CLI on them."""

    def __init__(self, tmp: Path, source, target):
        self.tmp, self.source, self.target = tmp, source, target
        self.config = tmp / "migrate.toml"
        self.config.write_text(f'[clusters.source]\n"bootstrap.servers" = "{source.bootstrap}"\n\n'
                               f'[clusters.target]\n"bootstrap.servers" = "{target.bootstrap}"\n')
        self.state = tmp / "state.db"

    def env(self, **extra: str) -> dict[str, str]:
        return {"MIGRATE_STATE": str(self.state), "MIGRATE_CONFIG": str(self.config), **extra}

    def cli(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return run_cli(*args, env=self.env(**env), cwd=self.tmp, timeout=timeout)

    def close(self) -> None:
        from migrate.playbooks import processes

        if self.state.exists():
            with State(self.state) as state:
                for (key,) in state.db.execute("SELECT key FROM playbook_processes").fetchall():
                    processes.stop(state, key, grace=10)


@pytest.fixture
def setup(tmp_path, source_cluster, target_cluster):
    made = Setup(tmp_path, source_cluster, target_cluster)
    yield made
    made.close()


@pytest.fixture
def mirrored(setup):
    """Topic A mirrored by the mirror `estate`; topic B on the source only."""
    a, b = unique("a"), unique("b")
    _write(setup.source.profile, a)
    _write(setup.source.profile, b)
    done = setup.cli("mirror", "--source", "source", "--target", "target", "--topics", re.escape(a),
                     "--name", "estate", "--until-caught-up", "--session-timeout-ms", "6000")
    assert done.returncode == 0, done.stderr
    return a, b


# --- 1. validate: no silent key-mode fallback --------------------------------------------------------


def test_validate_without_name_uses_the_only_mirror_and_never_compares_unmirrored_topics(setup, mirrored):
    a, b = mirrored
    out = setup.cli("validate", "--source", "source", "--target", "target")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"validation run 1 \(map mode, beginning -> .*, mirror estate\): 40 records compared in "
                     r".*: PARITY", out.stdout)
    assert a in out.stdout and b not in out.stdout


def test_validate_map_mode_needs_a_mirror_that_exists(setup, mirrored, private_cluster):
    out = setup.cli("validate", "--source", "source", "--target", "target", "--name", "default")
    assert out.returncode == 2
    assert out.stderr.startswith('error: no mirror named "default" in ') and "(mirrors: estate)" in out.stderr
    assert "DIVERGENCE" not in out.stdout and "Traceback" not in out.stderr
    (setup.tmp / "fresh").mkdir()
    # a state that knows no mirror, and a target with no mirror's map topic (the session's
    # target may hold one of a mirror called `default` that another test ran)
    fresh = Setup(setup.tmp / "fresh", setup.source, private_cluster("tansu"))
    out = fresh.cli("validate", "--source", "source", "--target", "target")
    assert out.returncode == 2, out.stdout
    assert out.stderr.startswith("error: no mirror is recorded in ") and "DIVERGENCE" not in out.stdout


def test_key_mode_reports_a_topic_missing_on_the_target_as_such(setup, mirrored):
    a, b = mirrored
    out = setup.cli("validate", "--source", "source", "--target", "target", "--match", "key",
                    "--topics", re.escape(a), "--topics", re.escape(b), "--format", "json")
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    by_topic = {t["topic"]: t for t in result["topics"]}
    assert set(by_topic) == {a, b}  # only the topics selected
    assert by_topic[b]["only_on"] == "source" and by_topic[b]["missing"] == 0
    assert by_topic[a]["only_on"] is None and by_topic[a]["divergences"] == 0 and by_topic[a]["records_compared"] == 40
    assert result["divergences"] == 0 and result["parity"] is False
    table = setup.cli("validate", "--source", "source", "--target", "target", "--match", "key",
                      "--topics", re.escape(b))
    assert table.returncode == 1
    assert f"DIVERGENCE (topic {b} exists on the source only)" in table.stdout
    assert f"topic {b} exists on the source only (target has no {b}); not compared" in table.stdout


# --- 2. offsets: typos and unmirrored partitions are accounted for -----------------------------------


def test_offsets_name_a_group_that_does_not_exist(setup, mirrored):
    for command in ("translate", "sync"):
        out = setup.cli("offsets", command, "--group", "nosuchgroup")
        assert out.returncode == 2, out.stdout
        assert out.stderr.startswith('error: group nosuchgroup not found on cluster "source" (no committed offsets, '
                                     "no members)"), out.stderr
        assert "already in sync" not in out.stdout


def test_offsets_account_for_every_committed_partition(setup, mirrored):
    a, b = mirrored
    both, only_b = unique("both"), unique("only-b")
    set_offsets(setup.source.profile, both, {(a, 0): 5, (b, 0): 7})
    set_offsets(setup.source.profile, only_b, {(b, 1): 3})

    out = setup.cli("offsets", "translate", "--group", only_b, "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["topic"], r["partition"], r["committed"], r["status"]) for r in rows] == [(b, 1, 3, "not-mirrored")]
    table = setup.cli("offsets", "translate", "--group", only_b, "--group", both)
    assert "(none)" not in table.stdout
    assert table.stdout.rstrip().endswith("3 committed partitions of 2 groups: 1 exact, 2 not-mirrored")

    out = setup.cli("offsets", "sync", "--group", both)
    assert out.returncode == 0, out.stderr
    assert '1 group: 1 changed; partitions: 1 committed, 1 not mirrored on "target"' in out.stdout
    assert re.search(rf"{re.escape(both)}\s+{re.escape(b)}\s+0\s+7\s+.*not-mirrored", out.stdout)
    assert kgroups.committed(setup.target.profile, [both])[both] == {(a, 0): 5}

    out = setup.cli("offsets", "sync", "--group", both, "--group", only_b)
    assert out.returncode == 0, out.stderr
    assert ('2 groups: 1 not-mirrored, 1 unchanged; partitions: 1 already in sync, 2 not mirrored on "target"'
            in out.stdout), out.stdout


# --- 3. playbook variables are checked before anything runs ------------------------------------------

HOOKS = ["stop_source_consumers", "start_target_consumers", "stop_source_producers", "start_target_producers",
         "start_source_consumers", "start_source_producers", "stop_target_consumers", "stop_target_producers"]


def _hook_vars(tmp: Path) -> list[str]:
    out = []
    for hook in HOOKS:
        out += ["--var", f"{hook}=touch {tmp / (hook + '.ran')}"]
    return out


@pytest.mark.slow  # the migrate CLI in a child process
@pytest.mark.parametrize("command", ["plan", "run", "rehearse"])
def test_a_bad_regex_or_an_empty_required_variable_stops_before_anything_runs(tmp_path, command):
    env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml")}
    extra = ["--with-rollback"] if command == "rehearse" else []
    base = ["playbook", command, "cutover", *extra, *_hook_vars(tmp_path), "--var", "source=127.0.0.1:1",
            "--var", "target=127.0.0.1:1"]
    out = run_cli(*base, "--var", "topics=(", "--var", "groups=billing", env=env, cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "step 'preflight probe': parameter 'topics' of 'probe': '(' is not a valid regular expression" in out.stderr
    out = run_cli(*base, "--var", "topics=orders", "--var", "groups=", env=env, cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1
    assert "variable 'groups' is empty; pass --var groups=VALUE" in out.stderr
    assert not list(tmp_path.glob("*.ran"))
    with State(tmp_path / "state.db") as state:
        assert state.db.execute("SELECT COUNT(*) FROM playbook_runs").fetchone()[0] == 0


# --- 4. an unreachable cluster fails at once in offsets too --------------------------------------------


@pytest.mark.slow  # the migrate CLI in a child process
@pytest.mark.parametrize("command", ["translate", "sync"])
def test_offsets_say_cannot_reach_cluster(tmp_path, command):
    out = run_cli("offsets", command, "--source", "127.0.0.1:1", "--target", "127.0.0.1:1", "--group", "g",
                  env={"MIGRATE_STATE": str(tmp_path / "s.db"), "MIGRATE_CONFIG": str(tmp_path / "m.toml")})
    assert out.returncode == 2
    assert out.stderr.startswith('error: cannot reach cluster "source" at 127.0.0.1:1 ('), out.stderr


# --- 5. one set of variables, all missing ones at once, --vars-file ----------------------------------


@pytest.mark.slow  # the migrate CLI in a child process
def test_all_missing_variables_of_both_playbooks_are_reported_at_once(tmp_path):
    env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml")}
    out = run_cli("playbook", "rehearse", "cutover", "--with-rollback", "--var", "groups=billing", env=env)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    missing = ["topics", "stop_source_consumers", "start_target_consumers", "stop_source_producers",
               "start_target_producers", "start_source_consumers", "start_source_producers",
               "stop_target_consumers", "stop_target_producers"]
    assert f"{len(missing)} variables have no value: {', '.join(missing)}; pass --var NAME=VALUE" in out.stderr


VARS_YAML = """\
topics: 'orders\\..*'
groups: [billing, shipping]
max_lag: 50
stop_source_consumers: echo stop source consumers
start_target_consumers: echo start target consumers
stop_source_producers: echo stop source producers
start_target_producers: echo start target producers
start_source_consumers: echo start source consumers
start_source_producers: echo start source producers
stop_target_consumers: echo stop target consumers
stop_target_producers: echo stop target producers
"""


def _vars_toml() -> str:
    lines = ["topics = 'orders\\..*'", 'groups = ["billing", "shipping"]', "max_lag = 50"]
    lines += [f'{hook} = "echo {hook.replace("_", " ")}"' for hook in HOOKS]
    return "\n".join(lines) + "\n"


@pytest.mark.slow  # the migrate CLI in a child process
@pytest.mark.parametrize("name, text", [("vars.yaml", VARS_YAML), ("vars.toml", _vars_toml())])
def test_one_vars_file_serves_plan_of_both_playbooks(tmp_path, name, text):
    env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml")}
    (tmp_path / name).write_text(text)
    plans = {}
    for playbook in ("cutover", "rollback"):
        out = run_cli("playbook", "plan", playbook, "--vars-file", str(tmp_path / name), "--var", "max_lag=7",
                      "--format", "json", env=env)
        assert out.returncode == 0, out.stderr
        plans[playbook] = {r["name"]: json.loads(r["with"]) for r in json.loads(out.stdout)}
    assert plans["cutover"]["mirror running"]["topics"] == ["orders\\..*"]
    assert plans["cutover"]["offsets sync"]["groups"] == ["billing", "shipping"]
    assert plans["cutover"]["mirror caught up"]["max_lag"] == 7  # --var wins over the file
    assert plans["rollback"]["stop target consumers"]["command"] == "echo stop target consumers"


@pytest.mark.slow  # the migrate CLI in a child process
def test_a_vars_file_with_a_typo_or_a_nested_value_is_refused(tmp_path):
    env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml")}
    (tmp_path / "typo.yaml").write_text(VARS_YAML + "gropus: billing\n")
    out = run_cli("playbook", "plan", "cutover", "--vars-file", str(tmp_path / "typo.yaml"), env=env)
    assert out.returncode == 2 and "the playbook declares no variable 'gropus'" in out.stderr
    (tmp_path / "nested.yaml").write_text(VARS_YAML + "source: {bootstrap: x}\n")
    out = run_cli("playbook", "plan", "cutover", "--vars-file", str(tmp_path / "nested.yaml"), env=env)
    assert out.returncode == 2
    assert "variable 'source' must be a string, number, boolean or list of those" in out.stderr


# --- 6. progress: fits the terminal, says it is starting, INFO without a terminal --------------------


def test_progress_fits_an_80_column_terminal_and_says_it_is_starting(setup):
    topic = unique("wide")
    _write(setup.source.profile, topic, partitions=3)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "mirror", "--source", "source", "--target", "target",
                             "--topics", re.escape(topic), "--until-caught-up", "--session-timeout-ms", "6000"],
                            env={**os.environ, **setup.env(COLUMNS="80")}, cwd=setup.tmp,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(120) == 0, seen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode()
    assert "starting: joining group migrate.mirror.default" in text
    updates = [u.replace("\x1b[K", "") for u in re.split(r"[\r\n]+", text) if u.strip()]
    assert updates and all(len(u) < 80 for u in updates), [u for u in updates if len(u) >= 80]
    assert "mirror default: 60 records" in proc.stdout.read().decode()


def test_progress_without_a_terminal_is_info_not_warning(caplog):
    import logging

    from migrate.cli.progress import printer
    from migrate.mirror import Progress

    show = printer("migrate.mirror.m", terminal=False, log_every=0)
    with caplog.at_level(logging.INFO, logger="migrate.mirror"):
        show.start()
        show(Progress(records=10, bytes=100, seconds=1.0, lag={"t": 5}, owned=2, failed=0))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "starting: joining group migrate.mirror.m"),
        ("INFO", 'progress {"records": 10, "rate": 10, "lag": {"t": 5}, "partitions": 2, "stopped": 0}')]


# --- 8. tables fit the terminal; JSON keeps the full text ---------------------------------------------


@pytest.mark.slow  # the migrate CLI in a child process
def test_plan_and_probe_tables_fit_80_columns(tmp_path):
    env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml"),
           "COLUMNS": "80"}
    (tmp_path / "vars.yaml").write_text(VARS_YAML)
    out = run_cli("playbook", "plan", "cutover", "--vars-file", str(tmp_path / "vars.yaml"), env=env)
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    full = run_cli("playbook", "plan", "cutover", "--vars-file", str(tmp_path / "vars.yaml"), "--format", "json",
                   env=env)
    probe_with = next(r["with"] for r in json.loads(full.stdout) if r["name"] == "preflight probe")
    assert len(probe_with) > 200  # what the table wraps, whole
    out = run_cli("probe", "checks", env=env)
    assert out.returncode == 0 and max(len(line) for line in out.stdout.splitlines()) <= 80


REHEARSED = """
name: {name}
vars: {{verdict: null}}
steps:
  - name: compare
    action: exec
    with: {{command: "echo 'validation run 7 (map mode, beginning -> 2026-12-01T01:02:03.456Z, mirror estate): 2874 records compared in 2.3s: PARITY'"}}
"""


@pytest.mark.slow  # the migrate CLI in a child process
def test_rehearsal_result_keeps_the_verdict_and_heads_each_playbook(tmp_path):
    env = {"MIGRATE_STATE": str(tmp_path / "state.db"), "MIGRATE_CONFIG": str(tmp_path / "migrate.toml"),
           "COLUMNS": "80"}
    (tmp_path / "go.yaml").write_text(REHEARSED.format(name="go"))
    (tmp_path / "rollback.yaml").write_text(REHEARSED.format(name="back"))
    out = run_cli("playbook", "rehearse", "go.yaml", "--with-rollback", "--var", "verdict=x", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    assert out.stdout.count("PARITY") == 2  # wrapped, not cut off
    headings = [line for line in out.stderr.splitlines() if line.startswith("== rehearsal of ")]
    assert [h.split(" (run ")[0] for h in headings] == ["== rehearsal of go", "== rehearsal of back"]
    assert out.stderr.index("== rehearsal of back") > out.stderr.index("[1/1] compare")


def test_demo_heads_the_move_from_cutover_to_rollback_steps():
    from migrate.demo.run import Demo

    said: list[str] = []
    demo = Demo.__new__(Demo)
    demo.say = said.append
    demo._event("playbook", None, {"mode": "rehearsal", "playbook": "rollback", "run_id": "r1"})
    assert said == ["-- rehearsal of rollback (run r1)"]


# --- 9. a rehearsal leaves nothing on either cluster ---------------------------------------------------

MINI_CUTOVER = """
name: mini-cutover
vars: {source: source, target: target, mirror: null, topics: null, groups: null, last: "true", nap: 0}
steps:
  - name: mirror running
    action: mirror.start
    with: {name: "${mirror}", source: "${source}", target: "${target}", topics: ["${topics}"],
           args: [--session-timeout-ms, "6000"]}
  - name: mirror caught up
    action: mirror.wait-caught-up
    with: {name: "${mirror}", max_lag: 0}
    timeout: 2m
  - name: offsets sync
    action: offsets.sync
    with: {mirror: "${mirror}", groups: "${groups}"}
  - name: nap
    action: sleep
    with: {seconds: "${nap}"}
  - name: last
    action: exec
    with: {command: "${last}"}
"""
MINI_ROLLBACK = """
name: mini-rollback
vars: {source: source, target: target, mirror: null, groups: null}
steps:
  - name: reverse offsets sync
    action: offsets.sync
    with: {mirror: "${mirror}", groups: "${groups}", direction: reverse}
"""


@pytest.fixture
def rehearsable(setup):
    topic, group = unique("rh"), unique("billing")
    _write(setup.source.profile, topic)
    set_offsets(setup.source.profile, group, {(topic, 0): 5, (topic, 1): 9})
    (setup.tmp / "cutover.yaml").write_text(MINI_CUTOVER)
    (setup.tmp / "rollback.yaml").write_text(MINI_ROLLBACK)
    return topic, group, ["--var", f"mirror={unique('m')}", "--var", f"topics={re.escape(topic)}",
                          "--var", f"groups={group}"]


def _leftovers(setup, group: str) -> dict[str, list[str]]:
    return {c.role: [g for g in kgroups.list_groups(c.profile) if g == f"{group}.rehearsal" or ".rh-" in g]
            for c in (setup.source, setup.target)}


@pytest.mark.parametrize("last, code", [("true", 0), ("false", 1)])
def test_rehearsal_removes_its_groups_on_both_clusters_also_after_a_failure(setup, rehearsable, last, code):
    topic, group, args = rehearsable
    out = setup.cli("playbook", "rehearse", "cutover.yaml", "--with-rollback", *args, "--var", f"last={last}",
                    "--format", "json")
    assert out.returncode == code, out.stderr
    report = json.loads(out.stdout)
    cleaned = report["cleaned"]
    assert f"target:group {group}.rehearsal" in cleaned  # the shadow group existed, and is gone
    assert any(c.startswith("source:group migrate.mirror.") for c in cleaned)
    if last == "true":  # the rollback half ran, and wrote the shadow group on the source too
        assert f"source:group {group}.rehearsal" in cleaned
    assert _leftovers(setup, group) == {"source": [], "target": []}
    assert kgroups.committed(setup.source.profile, [group])[group] == {(topic, 0): 5, (topic, 1): 9}


def test_playbook_cleanup_removes_what_a_killed_rehearsal_left(setup, rehearsable):
    topic, group, args = rehearsable
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "playbook", "rehearse", "cutover.yaml", *args,
                             "--var", "nap=120"], env={**os.environ, **setup.env()}, cwd=setup.tmp,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def napping():
            if not setup.state.exists():
                return None
            with State(setup.state) as state:
                return state.db.execute("SELECT run_id FROM playbook_steps WHERE name = 'nap' AND "
                                        "status = 'running'").fetchone()
        run_id = wait_until(napping, timeout=120, interval=0.2, message="the rehearsal to reach its nap")[0]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert _leftovers(setup, group)["target"] == [f"{group}.rehearsal"]
    out = setup.cli("playbook", "cleanup", run_id)
    assert out.returncode == 0, out.stderr
    assert f"removed target:group {group}.rehearsal" in out.stdout
    assert _leftovers(setup, group) == {"source": [], "target": []}
    with State(setup.state) as state:
        assert state.db.execute("SELECT COUNT(*) FROM playbook_processes WHERE run_id = ?", [run_id]).fetchone()[0] == 0
    again = setup.cli("playbook", "cleanup", run_id)
    assert again.returncode == 0 and again.stdout.strip() == f"rehearsal {run_id}: nothing left to remove"


# --- 10. small things ----------------------------------------------------------------------------------


def test_html_report_follows_the_umask_and_says_what_was_compared(setup, mirrored):
    a, _ = mirrored
    report = setup.tmp / "parity.html"
    old = os.umask(0o022)
    try:
        out = setup.cli("validate", "--source", "source", "--target", "target", "--report", str(report))
    finally:
        os.umask(old)
    assert out.returncode == 0, out.stderr
    assert report.stat().st_mode & 0o777 == 0o644
    page = report.read_text()
    assert (f"mirror estate: source source ({setup.source.bootstrap}) -&gt; target target ({setup.target.bootstrap}); "
            "records from beginning to 20") in page


def test_validate_history_shows_durations_people_can_read(setup, mirrored):
    assert setup.cli("validate", "--source", "source", "--target", "target").returncode == 0
    out = setup.cli("validate", "history")
    assert out.returncode == 0
    header, _rule, row = out.stdout.splitlines()[:3]
    assert header.split()[-2:] == ["duration_s", "result"]
    duration, result = row.split()[-2:]
    assert result == "parity" and re.fullmatch(r"\d+\.\d{1,2}|\d+", duration), row


def test_mirror_status_without_name_uses_the_only_mirror(setup, mirrored):
    a, _ = mirrored
    out = setup.cli("mirror", "status", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert {(r["topic"], r["partition"], r["lag"]) for r in json.loads(out.stdout)} == {(a, 0, 0), (a, 1, 0)}


@pytest.mark.slow  # the migrate CLI in a child process
def test_kafka_python_deprecation_warnings_are_filtered_by_the_test_configuration(tmp_path):
    probe = tmp_path / "test_kafka_python_schemas.py"
    probe.write_text("from kafka.protocol.schemas.load_json import load_json\n\n\n"
                     "def test_load():\n    assert load_json('ApiVersionsRequest')['name']\n")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
                          str(root / "pyproject.toml"), "--rootdir", str(tmp_path), str(probe)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout and "warning" not in out.stdout.lower(), out.stdout
