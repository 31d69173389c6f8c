"""Fixtures: real local clusters named for their roles, shared per test session.

Each test uses unique topic and group names (support.unique), so one broker per role and
platform serves the whole session.  `source_cluster` and `target_cluster` default to the
migration this product exists for (noida-db, the faithful Kafka, to Tansu, the
Kafka-compatible platform with deviations); `cluster_pair` runs a test in both directions
and on same-platform pairs.

Two tiers: `pytest -m "not slow"` runs the tests that stay in this process (no broker, no
child process such as the `migrate` CLI) in seconds; everything else is marked `slow` here,
from the fixtures a test asks for, or by hand where a test starts a process itself.
"""

from __future__ import annotations

import logging
import subprocess

import pytest

from support import TestCluster, start_test_cluster

PAIRS = [("noida", "tansu"), ("tansu", "noida"), ("noida", "noida"), ("tansu", "tansu")]

# Every fixture that starts brokers.  A test's fixturenames is the whole closure of what it
# asks for, so a test that reaches one of these through its own fixtures (an `estate` built
# on `source_cluster`) is caught too.  proxied_tansu lives in tests/faults/conftest.py.
BROKER_FIXTURES = frozenset({
    "cluster_pool", "source_cluster", "target_cluster", "cluster_pair", "any_cluster", "private_cluster",
    "proxied_tansu",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


class _NoProcessInFastTests(subprocess.Popen):
    # Refused in __new__, before an instance exists (a half-built Popen complains when collected).
    def __new__(cls, args, *rest, **kwargs):
        pytest.fail(f"this test is not marked slow but starts a process ({args!r}): a test that starts "
                    "brokers or runs the CLI in a child process takes @pytest.mark.slow", pytrace=False)


@pytest.fixture(autouse=True)
def fast_tests_start_no_process(request, monkeypatch):
    """The fast tier's promise, kept by construction: a test not marked slow that starts a child
    process (a broker, `python -m migrate`, a fixture reached through request.getfixturevalue,
    which the collection hook cannot see) fails at once, saying it needs the marker."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setattr(subprocess, "Popen", _NoProcessInFastTests)
    yield


@pytest.fixture(autouse=True)
def cli_logging_undone():
    """The CLI sets up the "migrate" logger for its process (its own handler, no propagation).
    Tests that run it in-process would leave that behind for the next test in the same worker,
    whose caplog then sees nothing; put the logger back as the library leaves it."""
    yield
    logger = logging.getLogger("migrate")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def cluster_pool(tmp_path_factory):
    base = tmp_path_factory.mktemp("clusters")
    started: dict[tuple[str, str], TestCluster] = {}

    def get(role: str, platform: str) -> TestCluster:
        key = (role, platform)
        if key not in started:
            started[key] = start_test_cluster(role, platform, base)
        return started[key]

    yield get
    for cluster in started.values():
        cluster.stop()


@pytest.fixture
def source_cluster(cluster_pool) -> TestCluster:
    return cluster_pool("source", "noida")


@pytest.fixture
def target_cluster(cluster_pool) -> TestCluster:
    return cluster_pool("target", "tansu")


@pytest.fixture(params=PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def cluster_pair(request, cluster_pool) -> tuple[TestCluster, TestCluster]:
    source, target = request.param
    return cluster_pool("source", source), cluster_pool("target", target)


@pytest.fixture(params=["noida", "tansu"])
def any_cluster(request, cluster_pool) -> TestCluster:
    return cluster_pool("source", request.param)


@pytest.fixture
def private_cluster(tmp_path):
    """A cluster of its own, for tests that kill or restart a broker."""
    started = []

    def make(platform: str, role: str = "target") -> TestCluster:
        cluster = start_test_cluster(role, platform, tmp_path)
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()
