"""Group members the group protocol cannot remove on its own: the one use of kafka-python here.

librdkafka never sends LeaveGroup for a static member (group.instance.id): Kafka expires it after
its session timeout.  Neither local platform does (noida-db 0.2.3 and Tansu 0.6.0 kept a stopped
static member 90 s past a 10 s session, measured), so a stop that does not remove it leaves its
partitions with nobody.  KIP-345's admin call (LeaveGroup v3 with member identities) removes it;
confluent-kafka has no binding for it, kafka-python does (`remove_group_members`).

Rules:
1. Both identities are sent: the member id and the group.instance.id.  noida-db removes the
   member by either; Tansu answers UNKNOWN_MEMBER_ID to an instance id alone (measured) and removes
   it when the member id is there too.
2. Every failure is an answer, never an exception: the caller is stopping, or cleaning up after a
   dead worker, and must go on either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.config import ClusterProfile

# librdkafka property -> kafka-python keyword, for the settings that decide whether we can connect.
_SETTINGS = {
    "bootstrap.servers": "bootstrap_servers",
    "client.id": "client_id",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
}


def kafka_python_settings(profile: ClusterProfile, role: str = "consumer") -> dict[str, Any]:
    """A profile's connection settings as kafka-python keywords."""
    config = profile.client_config(role)
    out: dict[str, Any] = {"request_timeout_ms": 15_000}
    for key, value in config.items():
        if key in _SETTINGS:
            out[_SETTINGS[key]] = value
    return out


@dataclass(frozen=True)
class Removal:
    removed: bool
    detail: str  # the broker's answer, or why nothing was sent


def remove_member(profile: ClusterProfile, group: str, member_id: str, instance_id: str | None,
                  timeout: float = 5.0) -> Removal:
    """Remove one member from `group` (rule 1); never raises (rule 2)."""
    try:
        from kafka.admin import KafkaAdminClient, MemberToRemove
    except ImportError as exc:  # pragma: no cover - kafka-python is a dependency
        return Removal(False, f"kafka-python is missing ({exc})")
    ms = max(1000, int(timeout * 1000))
    client = None
    try:
        client = KafkaAdminClient(**{**kafka_python_settings(profile, "admin"), "request_timeout_ms": ms})
        answer = client.remove_group_members(group, [MemberToRemove(member_id=member_id or None,
                                                                    group_instance_id=instance_id)])
    except Exception as exc:  # noqa: BLE001 - rule 2
        return Removal(False, f"{type(exc).__name__}: {exc}")
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
    errors = [error.__name__ for error in answer.values()]
    return Removal(errors == ["NoError"], ", ".join(errors) or "no answer")
