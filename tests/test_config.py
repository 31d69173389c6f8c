"""Cluster profiles (library level): names vs bootstrap strings, ${ENV}, per-role overrides, redaction."""

from __future__ import annotations

import io
import logging

import pytest

from migrate import logs
from migrate.config import (ClusterProfile, load_config, redact_text, resolve_cluster, write_cluster_profile)
from migrate.errors import ConfigError

CONFIG = """
[clusters.source]
"bootstrap.servers" = "kafka-1:9093,kafka-2:9093"
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "migrator"
"sasl.password" = "${CFG_TEST_PASSWORD}"
"socket.keepalive.enable" = true
"message.max.bytes" = 2000000

[clusters.source.producer]
"linger.ms" = "20"

[clusters.source.consumer]
"fetch.max.bytes" = 1048576

[clusters.target]
"bootstrap.servers" = "${CFG_TEST_HOST}:9092"
"""

PASSWORD = "correct-horse-battery-staple-41"


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("CFG_TEST_PASSWORD", PASSWORD)
    monkeypatch.setenv("CFG_TEST_HOST", "broker.internal")
    path = tmp_path / "migrate.toml"
    path.write_text(CONFIG)
    return load_config(path)


def test_a_profile_name_resolves_from_the_file(config):
    profile = resolve_cluster("source", config, "source")
    assert profile.name == "source"
    assert profile.bootstrap == "kafka-1:9093,kafka-2:9093"
    assert profile.settings["sasl.password"] == PASSWORD
    assert profile.settings["socket.keepalive.enable"] == "true"
    assert profile.settings["message.max.bytes"] == "2000000"
    assert resolve_cluster("target", config, "target").bootstrap == "broker.internal:9092"


@pytest.mark.parametrize("spec", ["127.0.0.1:9092", "kafka-1:9093,kafka-2:9093", "[::1]:9092", "a.b-c_d:1"])
def test_a_bootstrap_string_is_a_profile_named_for_its_role(spec):
    profile = resolve_cluster(spec, load_config("/nonexistent/migrate.toml"), "target")
    assert profile.name == "target"
    assert dict(profile.settings) == {"bootstrap.servers": spec}


def test_a_profile_name_wins_over_a_bootstrap_looking_string(tmp_path):
    path = tmp_path / "migrate.toml"
    path.write_text('[clusters."localhost:9092"]\n"bootstrap.servers" = "elsewhere:1"\n')
    assert resolve_cluster("localhost:9092", load_config(path)).bootstrap == "elsewhere:1"


def test_per_role_overrides_apply_to_that_role_only(config):
    profile = resolve_cluster("source", config)
    assert profile.client_config("producer")["linger.ms"] == "20"
    assert "linger.ms" not in profile.client_config("consumer")
    assert profile.client_config("consumer")["fetch.max.bytes"] == "1048576"
    assert "fetch.max.bytes" not in profile.client_config("admin")
    # Explicit overrides of a call come last.
    assert profile.client_config("producer", **{"linger.ms": 5})["linger.ms"] == 5
    assert "producer" not in profile.settings


def test_a_missing_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("CFG_TEST_PASSWORD", raising=False)
    path = tmp_path / "migrate.toml"
    path.write_text(CONFIG)
    config = load_config(path)
    with pytest.raises(ConfigError) as caught:
        resolve_cluster("source", config)
    assert str(caught.value) == (
        'cluster profile "source": "sasl.password" refers to ${CFG_TEST_PASSWORD}, which is not set; '
        "export CFG_TEST_PASSWORD"
    )


def test_an_unknown_profile_lists_the_known_ones(config):
    with pytest.raises(ConfigError) as caught:
        resolve_cluster("prod", config, "source")
    message = str(caught.value)
    assert 'unknown cluster profile "prod"' in message
    assert "known profiles: source, target" in message
    assert "HOST:PORT" in message


def test_no_profile_at_all_points_to_flag_and_env():
    with pytest.raises(ConfigError, match="pass --source NAME|HOST:PORT or set MIGRATE_SOURCE"):
        resolve_cluster(None, load_config("/nonexistent/migrate.toml"), "source")


def test_a_missing_file_is_an_empty_config_and_says_so():
    config = load_config("/nonexistent/migrate.toml")
    assert not config.exists and config.profile_names() == []
    with pytest.raises(ConfigError, match=r"\(file not found\); known profiles: none"):
        resolve_cluster("source", config)


@pytest.mark.parametrize("text, message", [
    ("[clusters\nbroken", "is not valid TOML"),
    ("clusters = 3\n", "[clusters] must be a table"),
    ("[clusters]\nsource = 1\n", "clusters.source must be a table"),
])
def test_a_malformed_file_is_a_config_error(tmp_path, text, message):
    path = tmp_path / "migrate.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path)


def test_a_profile_needs_bootstrap_servers(tmp_path):
    path = tmp_path / "migrate.toml"
    path.write_text('[clusters.x]\n"client.id" = "a"\n')
    with pytest.raises(ConfigError, match='has no "bootstrap.servers"'):
        resolve_cluster("x", load_config(path))


def test_writing_a_profile_keeps_the_rest_of_the_file(config):
    write_cluster_profile(config.path, "source", {"bootstrap.servers": "127.0.0.1:1234"})
    write_cluster_profile(config.path, "local", {"bootstrap.servers": "127.0.0.1:5678"})
    reread = load_config(config.path)
    assert reread.profile_names() == ["local", "source", "target"]
    source = resolve_cluster("source", reread)
    assert dict(source.settings) == {"bootstrap.servers": "127.0.0.1:1234"}
    assert not source.role_overrides  # its sub-tables went with it
    assert resolve_cluster("target", reread).bootstrap == "broker.internal:9092"
    with pytest.raises(ConfigError):
        write_cluster_profile(config.path, "bad name", {"bootstrap.servers": "h:1"})


# --- redaction ----------------------------------------------------------------------------------


def test_repr_of_a_profile_never_shows_the_secret(config):
    profile = resolve_cluster("source", config)
    for text in (repr(profile), str(profile), f"{profile}", repr([profile])):
        assert PASSWORD not in text
        assert "'sasl.password': '***'" in text
    assert profile.redacted()["sasl.password"] == "***"
    assert profile.redacted()["sasl.username"] == "migrator"


def test_secrets_from_the_config_are_scrubbed_from_text(config):
    resolve_cluster("source", config)
    assert redact_text(f"login failed for migrator:{PASSWORD} at kafka-1") == "login failed for migrator:*** at kafka-1"


def test_secrets_are_scrubbed_from_log_lines(config):
    resolve_cluster("source", config)
    for fmt in ("text", "json"):
        stream = io.StringIO()
        logs.setup(2, fmt, stream=stream)
        try:
            logging.getLogger("migrate.kafka").debug("connecting with password %s", PASSWORD)
            logging.getLogger("migrate.librdkafka").debug("SASL: %s", f"user=migrator pass={PASSWORD}")
        finally:
            logs.setup(0)
        output = stream.getvalue()
        assert output.count("***") == 2, output
        assert PASSWORD not in output


def test_a_direct_profile_redacts_secret_keys():
    profile = ClusterProfile("x", {"bootstrap.servers": "h:1", "ssl.key.password": "k3y-pass",
                                   "sasl.jaas.config": "org.apache... password=\"p\";",
                                   "sasl.oauthbearer.client.secret": "s3cret"})
    text = repr(profile)
    assert "k3y-pass" not in text and "s3cret" not in text and "password=" not in text
