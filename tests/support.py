"""Helpers the tests share: real local clusters, conditions to wait on, an independent reader."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from migrate.config import ClusterProfile
from migrate.local import platforms

_counter = itertools.count()


def unique(name: str = "t") -> str:
    """A topic or group name no other test uses."""
    return f"{name}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05,
               message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@dataclass
class TestCluster:
    """A real broker process on loopback, named for its role (source or target)."""

    __test__ = False
    role: str
    platform: str
    broker: platforms.BrokerProcess
    data_dir: Path | None = None
    restarts: int = field(default=0)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def profile(self) -> ClusterProfile:
        return ClusterProfile(name=self.role, settings={"bootstrap.servers": self.bootstrap})

    def stop(self) -> None:
        platforms.stop_broker(self.broker.pid, self.broker.port)

    def kill(self) -> None:
        platforms.kill_broker(self.broker.pid, self.broker.port)

    def restart(self) -> None:
        """Start the same platform again on the same port (and data dir)."""
        self.broker = platforms.start_broker(
            platforms.platform(self.platform), self.role, port=self.broker.port,
            data_dir=self.data_dir, die_with_parent=True,
        )
        self.restarts += 1


def start_test_cluster(role: str, platform_name: str, base: Path) -> TestCluster:
    plat = platforms.platform(platform_name)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{role}-", dir=base)) if plat.keeps_data else None
    broker = platforms.start_broker(plat, role, data_dir=data_dir, die_with_parent=True)
    return TestCluster(role, plat.name, broker, data_dir)


def run_cli(*args: str, env: dict | None = None, cwd: str | Path | None = None, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real `migrate` entry point in a child process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout, input=input)


def kafka_python_read(profile: ClusterProfile, topic: str, isolation: str = "read_committed",
                      timeout: float = 30.0) -> dict[int, list]:
    """Every record of a topic, per partition, read with kafka-python (the independent client).

    Reads to the high watermark carried by Fetch responses (`highwater`), not ListOffsets,
    so it is right on platforms whose ListOffsets LATEST is wrong.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=profile.bootstrap, enable_auto_commit=False,
                             isolation_level=isolation, auto_offset_reset="earliest",
                             consumer_timeout_ms=1000, bootstrap_timeout_ms=10000)
    try:
        parts = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout
        while not parts and time.monotonic() < deadline:
            time.sleep(0.1)
            parts = consumer.partitions_for_topic(topic)
        assert parts, f"topic {topic} not found on {profile.name}"
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: dict[int, list] = {p: [] for p in sorted(parts)}
        idle_rounds = 0
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                out[tp.partition].extend(records)
            done = all(
                consumer.highwater(tp) is not None and consumer.position(tp) >= consumer.highwater(tp)
                for tp in tps
            )
            if done and not batch:
                idle_rounds += 1
                if idle_rounds >= 2:
                    break
            else:
                idle_rounds = 0
        return out
    finally:
        consumer.close()
