"""A small threaded TCP proxy on 127.0.0.1 that can pass, stall, cut or delay traffic.

Put it between the tool and a broker whose advertised address is the proxy's port (Kafka
clients connect to the advertised address from metadata, so a broker that advertises its
own port would be reached directly after bootstrap and the proxy would be bypassed).

Modes:
- pass: forward bytes both ways;
- stall: keep every connection and accept new ones, but forward nothing until the mode
  changes (a hung network or a frozen broker: TCP stays up, no answer comes);
- cut: close every connection and refuse new ones (a network partition);
- delay: forward each chunk after `delay_ms` milliseconds (a slow link).
"""

from __future__ import annotations

import socket
import threading
import time

HOST = "127.0.0.1"


class TcpProxy:
    def __init__(self, upstream_port: int, port: int = 0, upstream_host: str = HOST):
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.delay_ms = 0
        self.connections = 0  # accepted so far, for tests that want to see traffic went through
        self._changed = threading.Condition()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._closing = False
        self._listener: socket.socket | None = None
        self.port = port
        self._listen()

    # --- control -----------------------------------------------------------------------------

    def passthrough(self) -> None:
        self._set("pass")

    def stall(self) -> None:
        self._set("stall")

    def delay(self, ms: int) -> None:
        self.delay_ms = ms
        self._set("delay")

    def cut(self) -> None:
        self._set("cut")
        self._close_listener()
        with self._changed:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            for sock in pair:
                _close(sock)

    def close(self) -> None:
        self._closing = True
        self.cut()

    def _set(self, mode: str) -> None:
        with self._changed:
            self.mode = mode
            self._changed.notify_all()
        if mode != "cut" and self._listener is None and not self._closing:
            self._listen()

    # --- plumbing ------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.mode == "cut":
                _close(client)
                continue
            self.connections += 1
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
        except OSError:
            _close(client)
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = (client, server)
        with self._changed:
            if self.mode == "cut":
                _close(client)
                _close(server)
                return
            self._pairs.add(pair)
        threading.Thread(target=self._pump, args=(client, server, pair), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._changed:
                    while self.mode == "stall":
                        self._changed.wait()
                    if self.mode == "cut" or pair not in self._pairs:
                        break
                    delay = self.delay_ms / 1000 if self.mode == "delay" else 0
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._changed:
                self._pairs.discard(pair)
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
