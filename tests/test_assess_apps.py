"""`migrate assess` findings for the applications around the estate (docs/applications.md), over fake probe results."""

from __future__ import annotations

from migrate.assess.applications import application_findings, quix_input
from migrate.assess.model import BLOCKER, OK, RISK, Inventory, TopicInventory, Usage


def topic(name: str, gaps: int = 0, transactions: str = "no", configs: dict | None = None) -> TopicInventory:
    return TopicInventory(name, 2, 1, configs or {"cleanup.policy": "delete"}, 10, 10, 100, True, None, None,
                          transactions, Usage(offset_gaps=gaps))


class Judge:
    def __init__(self, failing: set[str]):
        self.failing = failing

    def check(self, name: str, level_if_failed: str) -> tuple[str, str]:
        return (level_if_failed, f"{name} fail") if name in self.failing else (OK, f"{name}: pass")


def findings(topics, failing):
    inventory = Inventory("source", "b", "now", 0, 10, tuple(topics), (), 0.1)
    return {(f.subject, f.behaviour): f for f in application_findings(inventory, Judge(failing), "target")}


def test_quix_input_is_read_from_the_changelog_name():
    assert quix_input("changelog__counter--events--default", ["events", "counts"]) == "events"
    assert quix_input("changelog__a--b--c--default", ["c", "b--c"]) == "b--c"
    assert quix_input("orders-store-changelog", ["orders"]) is None


def test_tansu_like_target_blocks_exactly_once_recovery_and_old_init_producer_id_is_a_risk():
    found = findings([topic("events"), topic("changelog__counter--events--default", configs={
        "cleanup.policy": "compact"})], {"read-committed-hides-aborted", "init-producer-id-old-versions"})
    recovery = found[("changelog__counter--events--default", "exactly-once state recovery from this changelog")]
    assert recovery.level == BLOCKER and "at-least-once" in recovery.remedy
    producers = found[("target", "idempotent or transactional producers on kafkajs 2.x or aiokafka")]
    assert producers.level == RISK and "idempotent: false" in producers.remedy
    advice = found[("target", "kafkajs consumers of mirrored topics")]
    assert advice.level == OK and "--compression gzip" in advice.remedy  # advice only: no topic recompresses
    recompressing = findings([topic("events", configs={"compression.type": "lz4"})], set())
    assert recompressing[("target", "kafkajs consumers of mirrored topics")].level == RISK
    assert not [k for k in found if k[1] == "Quix state restored from the mirrored changelog"]


def test_quix_changelog_over_an_input_with_offset_gaps_is_a_state_loss_blocker():
    found = findings([topic("events", gaps=120, transactions="likely"),
                      topic("changelog__counter--events--default")], set())
    lost = found[("changelog__counter--events--default", "Quix state restored from the mirrored changelog")]
    assert lost.level == BLOCKER and "__processed_tp_offsets__" in lost.evidence and "120" in lost.evidence
    assert found[("changelog__counter--events--default", "exactly-once state recovery from this changelog")].level == OK
