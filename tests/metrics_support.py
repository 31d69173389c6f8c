"""Helpers of the metrics tests: a mirror process serving /metrics, scraping it, counting both sides."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from migrate.config import ClusterProfile
from mirror_support import make_oversized_topic, raise_max_message_bytes
from support import kafka_python_read, unique, wait_until

_SERVING = re.compile(r"metrics: serving (http://\S+/metrics)")


class MetricsMirror:
    """A real `migrate mirror --follow --metrics-port 0` process; learns its endpoint from stderr."""

    def __init__(self, state_path, source: ClusterProfile, target: ClusterProfile, pattern: str, name: str,
                 *extra: str, config: str | None = None):
        args = [sys.executable, "-m", "migrate", "--state", str(state_path)]
        if config:
            args += ["--config", str(config)]
        args += ["mirror", "--source", source.bootstrap, "--target", target.bootstrap, "--topics", pattern,
                 "--name", name, "--follow", "--session-timeout-ms", "6000", *extra]
        if config is None and "--metrics-port" not in extra:
            args += ["--metrics-port", "0"]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = wait_until(self._url, timeout=30, message=f"the mirror to serve metrics\n{self.stderr()}")

    def _read(self) -> None:
        for line in self.process.stderr:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def _url(self) -> str | None:
        if self.process.poll() is not None:
            raise AssertionError(f"the mirror exited with {self.process.returncode}:\n{self.stderr()}")
        with self._lock:
            for line in self.lines:
                match = _SERVING.search(line)
                if match:
                    return match.group(1)
        return None

    def stderr(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def scrape(self) -> "Scrape":
        return scrape(self.url)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process.stdout.close()
        self._reader.join(10)
        return self.process.returncode


@dataclass(frozen=True)
class Scrape:
    """One exposition, parsed with prometheus_client's own parser."""

    families: dict

    def samples(self, name: str, **labels: str) -> list:
        family_name = re.sub(r"_(total|created|bucket|count|sum)$", "", name)
        family = self.families.get(family_name) or self.families.get(name)
        if family is None:
            return []
        return [s for s in family.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.samples(name, **labels))

    def per_partition(self, name: str, topic: str) -> dict[int, float]:
        return {int(s.labels["partition"]): s.value for s in self.samples(name, topic=topic)}


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return Scrape({family.name: family for family in text_string_to_metric_families(text)})


def counts(profile: ClusterProfile, topic: str) -> dict[int, int]:
    """Records per partition, read to the Fetch high watermark by kafka-python (the independent client)."""
    return {p: len(records) for p, records in kafka_python_read(profile, topic).items()}


# The target's lower limit is left as it is and reported as drift (migrate.mirror.configs, rule 4).
KEEP_TARGET_LIMIT = ("--config-drift", "report")


@pytest.fixture
def stuck_topic(source_cluster, cluster_pool):
    """A one-partition topic whose 6th record the target (noida-db) refuses; CreateTimes a minute old.

    A following mirror of it must run with KEEP_TARGET_LIMIT: by default its config sync sets the
    target's max.message.bytes back to the source's (default) value within a metadata refresh, and
    the record then goes through at the partition's next retry (CI saw all 11 on the target).
    """
    target = cluster_pool("target", "noida")
    topic = unique("stuck")
    make_oversized_topic(source_cluster.profile, target.profile, topic)
    return source_cluster, target, topic


raise_limit = raise_max_message_bytes


class Service:
    """A Debian-packaged server (prometheus, prometheus-pushgateway) on a free loopback port."""

    def __init__(self, binary: str, args: list[str], port: int, ready_path: str, workdir):
        from migrate.local import platforms

        path = shutil.which(binary)
        assert path, f"{binary} is not installed; run: bash tests/system_deps.sh"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(workdir / f"{binary}.log", "w")
        self.process = subprocess.Popen([path, *args], stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir,
                                        start_new_session=True, preexec_fn=platforms.kill_with_parent)
        wait_until(lambda: self._ready(ready_path), timeout=60, message=f"{binary} to be ready")

    def _ready(self, path: str) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"exited with {self.process.returncode}: {open(self.log.name).read()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def get_json(self, path: str, **params: str):
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()
