"""Checks that speak the Kafka wire protocol themselves, for request versions our clients never send.

Applications moved to the target use other clients than ours, and a platform can answer one
version of a request and fail another.  Found with real applications (tests/test_apps.py):
Tansu 0.6.0 answers InitProducerId v3+ (confluent-kafka, kafka-python 3) but fails v0 and v1
with UNKNOWN_SERVER_ERROR, and those are the versions kafkajs 2.x (v1) and aiokafka (v0) send
to start every idempotent or transactional producer.  Neither of our clients can be made to
send them, hence a hand-written request over a plain socket (PLAINTEXT listeners only).
"""

from __future__ import annotations

import socket
import struct

from migrate.probe.context import ProbeContext, Stopwatch, result
from migrate.probe.model import ERROR, FAIL, PASS, UNSUPPORTED, WIRE, CheckResult

INIT_PRODUCER_ID = 22
OLD_VERSIONS = (0, 1)  # aiokafka 0.x sends v0, kafkajs 2.x v1
_TIMEOUT_S = 10.0


def init_producer_id_old_versions(ctx: ProbeContext) -> list[CheckResult]:
    watch = Stopwatch()
    name = "init-producer-id-old-versions"
    expected = ("InitProducerId v0 and v1 (no transactional id) answer a producer id: what kafkajs 2.x and "
                "aiokafka send to start an idempotent or transactional producer")
    config = ctx.profile.client_config("producer")
    protocol = str(config.get("security.protocol", "plaintext")).lower()
    if protocol != "plaintext":
        return [result(name, WIRE, ERROR, expected, f"this check writes its request over a plain socket and "
                                                    f"cannot speak security.protocol={protocol}", watch)]
    host, _, port = str(config["bootstrap.servers"]).split(",")[0].strip().rpartition(":")
    answers = []
    for version in OLD_VERSIONS:
        try:
            error, producer_id = init_producer_id(host.strip("[]"), int(port), version)
        except OSError as exc:
            return [result(name, WIRE, UNSUPPORTED, expected,
                           f"v{version}: the broker closed the connection or did not answer ({exc})", watch)]
        answers.append((version, error, producer_id))
    bad = [(v, e) for v, e, _ in answers if e != 0]
    observed = "; ".join(f"v{v}: " + (f"producer id {pid}" if e == 0 else f"error {e} ({error_name(e)})")
                         for v, e, pid in answers)
    return [result(name, WIRE, FAIL if bad else PASS, expected, observed, watch)]


def init_producer_id(host: str, port: int, version: int, client_id: bytes = b"migrate-probe") -> tuple[int, int]:
    """(error code, producer id) of one InitProducerId request of `version` (0 or 1: non-flexible)."""
    correlation = 0x22 + version
    header = struct.pack(">hhih", INIT_PRODUCER_ID, version, correlation, len(client_id)) + client_id
    body = struct.pack(">hi", -1, 60_000)  # transactional_id null (an idempotent producer), timeout
    message = header + body
    with socket.create_connection((host, port), timeout=_TIMEOUT_S) as sock:
        sock.settimeout(_TIMEOUT_S)
        sock.sendall(struct.pack(">i", len(message)) + message)
        size = struct.unpack(">i", _read_exact(sock, 4))[0]
        answer = _read_exact(sock, size)
    got_correlation, _throttle, error, producer_id = struct.unpack(">iihq", answer[:18])
    if got_correlation != correlation:
        raise OSError(f"answer for correlation id {got_correlation}, not {correlation}")
    return error, producer_id


def error_name(code: int) -> str:
    try:
        from kafka import errors

        return errors.for_code(code).__name__
    except Exception:  # a code kafka-python does not know
        return "unknown error code"


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data
