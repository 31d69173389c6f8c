"""The CLI edge: config mistakes, unreachable clusters and secrets become one line and exit 2."""

from __future__ import annotations

import json
import socket

import pytest

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import ClusterUnreachable
from migrate.local.platforms import free_port
from support import run_cli

PASSWORD = "n0t-for-your-eyes-9731"


def cli(tmp_path, *args, env=None):
    full_env = {"MIGRATE_CONFIG": str(tmp_path / "migrate.toml"), "MIGRATE_STATE": str(tmp_path / "state.db"),
                **(env or {})}
    return run_cli(*args, env=full_env, cwd=tmp_path, timeout=120)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def closed_port() -> int:
    port = free_port()  # bound then released: nothing listens there
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return port


@pytest.mark.slow  # the migrate CLI in a child process
def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "migrate, version 0.1.0"


@pytest.mark.slow  # the migrate CLI in a child process
def test_malformed_toml_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "migrate.toml").write_text('[clusters.source]\n"bootstrap.servers" = \n')
    result = cli(tmp_path, "local", "seed", "--cluster", "source")
    assert_one_line_error(result, "migrate.toml is not valid TOML", "fix the file")


@pytest.mark.slow  # the migrate CLI in a child process
def test_unknown_profile_lists_known_ones(tmp_path):
    (tmp_path / "migrate.toml").write_text('[clusters.alpha]\n"bootstrap.servers" = "h:1"\n'
                                           '[clusters.beta]\n"bootstrap.servers" = "h:2"\n')
    result = cli(tmp_path, "local", "seed", "--cluster", "gamma")
    assert_one_line_error(result, 'unknown cluster profile "gamma"', "known profiles: alpha, beta")


@pytest.mark.slow  # the migrate CLI in a child process
def test_missing_environment_variable_is_named(tmp_path):
    (tmp_path / "migrate.toml").write_text('[clusters.source]\n"bootstrap.servers" = "${CLI_TEST_UNSET_HOST}:1"\n')
    result = cli(tmp_path, "local", "seed", "--cluster", "source")
    assert_one_line_error(result, "refers to ${CLI_TEST_UNSET_HOST}, which is not set; export CLI_TEST_UNSET_HOST")


def test_check_reachable_on_a_closed_port_raises_the_documented_message():
    profile = ClusterProfile("source", {"bootstrap.servers": "127.0.0.1:9"})
    with pytest.raises(ClusterUnreachable) as caught:
        kafka.check_reachable(profile, timeout=2.0)
    assert str(caught.value) == (
        'cannot reach cluster "source" at 127.0.0.1:9 (connection refused); check bootstrap.servers'
    )
    assert caught.value.exit_code == 2


@pytest.mark.slow  # the migrate CLI in a child process
def test_an_unreachable_cluster_via_the_cli(tmp_path):
    port = closed_port()
    result = cli(tmp_path, "local", "seed", "--cluster", f"127.0.0.1:{port}")
    assert result.stderr == (
        f'error: cannot reach cluster "cluster" at 127.0.0.1:{port} (connection refused); '
        "check bootstrap.servers\n"
    )
    assert_one_line_error(result)


def _sasl_profile(tmp_path, bootstrap: str) -> None:
    (tmp_path / "migrate.toml").write_text(f"""
[clusters.secure]
"bootstrap.servers" = "{bootstrap}"
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "PLAIN"
"sasl.username" = "migrator"
"sasl.password" = "${{CLI_TEST_PASSWORD}}"
"debug" = "security,broker,conf"
""")


@pytest.mark.slow  # the migrate CLI in a child process
def test_the_password_never_shows_for_an_unreachable_cluster(tmp_path):
    _sasl_profile(tmp_path, f"127.0.0.1:{closed_port()}")
    result = cli(tmp_path, "-vv", "local", "seed", "--cluster", "secure", env={"CLI_TEST_PASSWORD": PASSWORD})
    assert_one_line_error(result, 'cannot reach cluster "secure"')
    assert PASSWORD not in result.stderr + result.stdout


def test_the_password_never_shows_when_a_broker_refuses_the_login(tmp_path, target_cluster):
    # Tansu refuses every SASL login (deviation 8): a real authentication failure, not a mock.
    _sasl_profile(tmp_path, target_cluster.bootstrap)
    result = cli(tmp_path, "-vv", "--log-format", "json", "local", "seed", "--cluster", "secure",
                 env={"CLI_TEST_PASSWORD": PASSWORD})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert result.stderr.splitlines()[-1].startswith('error: cannot reach cluster "secure"')
    # The client's own debug lines (its config dump among them) did reach the log, scrubbed.
    logged = [json.loads(line) for line in result.stderr.splitlines()[:-1]]
    assert any(e["logger"] == "migrate.librdkafka" and "sasl.password" in e["msg"] for e in logged)
