"""Helpers of the fault suite: a Tansu broker reached only through a TcpProxy, log waiting."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass

from migrate.config import ClusterProfile
from migrate.local import platforms
from tcp_proxy import TcpProxy


@dataclass
class ProxiedCluster:
    """A Tansu broker that listens on one port and advertises the proxy's port."""

    __test__ = False
    role: str
    proxy: TcpProxy
    process: subprocess.Popen
    broker_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    @property
    def profile(self) -> ClusterProfile:
        return ClusterProfile(name=self.role, settings={"bootstrap.servers": self.bootstrap})

    def stop(self) -> None:
        self.proxy.close()
        platforms.stop_broker(self.process.pid, self.broker_port, grace=3.0)


def start_proxied_tansu(role: str) -> ProxiedCluster:
    broker_port = platforms.free_port()
    proxy = TcpProxy(broker_port)
    binary = str(platforms.TANSU.binary())
    process = subprocess.Popen(
        [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{broker_port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{proxy.port}", "--cluster-id", role],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=platforms.kill_with_parent,
    )
    deadline = time.monotonic() + 20
    while not platforms.answers_kafka(broker_port):
        if process.poll() is not None or time.monotonic() > deadline:
            proxy.close()
            process.kill()
            raise RuntimeError(f"tansu behind a proxy did not start (exit {process.poll()})")
        time.sleep(0.02)
    return ProxiedCluster(role, proxy, process, broker_port)


class StreamTail:
    """Collects a child's stream in a thread (so its pipe never fills) and lets a test wait for a line."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def matching(self, needle: str) -> list[str]:
        with self._lock:
            return [line for line in self.lines if needle in line]

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)


class ContinuousProducer:
    """Produces small batches to one partition in a thread until stopped (a live application)."""

    def __init__(self, profile: ClusterProfile, topic: str, batch: int = 20, pause: float = 0.02):
        from confluent_kafka import Producer

        self.sent = 0
        self._stop = threading.Event()
        self._producer = Producer({"bootstrap.servers": profile.bootstrap, "linger.ms": 5,
                                   "message.timeout.ms": 5000, "log_level": 0})
        self._thread = threading.Thread(target=self._run, args=(topic, batch, pause), daemon=True)
        self._thread.start()

    def _run(self, topic: str, batch: int, pause: float) -> None:
        while not self._stop.is_set():
            for _ in range(batch):
                self._producer.produce(topic, f"live-{self.sent}".encode(), b"k", partition=0)
                self.sent += 1
            self._producer.flush(5)
            self._stop.wait(pause)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def wait_for(predicate, timeout: float, message: str, tail: StreamTail | None = None):
    """support.wait_until, with the last lines of a child's stderr in the failure message."""
    from support import wait_until

    try:
        return wait_until(predicate, timeout=timeout, message=message)
    except AssertionError as exc:
        if tail is None:
            raise
        raise AssertionError(f"{exc}\n--- the process's stderr ---\n{tail.text()[-6000:]}") from None
