"""Fixtures of the fault suite: a Tansu broker reached only through a TCP proxy we control."""

from __future__ import annotations

import pytest

from fault_support import ProxiedCluster, start_proxied_tansu


@pytest.fixture
def proxied_tansu():
    """make(role) -> a private Tansu broker whose every client connection goes through a TcpProxy."""
    started: list[ProxiedCluster] = []

    def make(role: str = "target") -> ProxiedCluster:
        cluster = start_proxied_tansu(role)
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()
