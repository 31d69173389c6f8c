"""The /metrics endpoint of a long-running command (prometheus_client's own HTTP server)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, start_http_server

from migrate.errors import UsageError


def new_registry() -> CollectorRegistry:
    """A registry of our own (never the global one) holding the library's process collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


@dataclass
class MetricsServer:
    host: str
    port: int  # the bound port (a request for port 0 gets a free one)
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics in a daemon thread."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise UsageError(f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); pick a free "
                         "--metrics-port (0 picks one) or another --metrics-host") from exc
    return MetricsServer(host, server.server_address[1], server, thread)
