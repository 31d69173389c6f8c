"""Fixtures: real local clusters named for their roles, shared per test session.

Each test uses unique topic and group names (support.unique), so one broker per role and
platform serves the whole session.  `source_cluster` and `target_cluster` default to the
migration this product exists for (noida-db, the faithful Kafka, to Tansu, the
Kafka-compatible platform with deviations); `cluster_pair` runs a test in both directions
and on same-platform pairs.
"""

from __future__ import annotations

import logging

import pytest

from support import TestCluster, start_test_cluster

PAIRS = [("noida", "tansu"), ("tansu", "noida"), ("noida", "noida"), ("tansu", "tansu")]


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
