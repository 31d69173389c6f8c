"""Readiness of the applications around the estate: what other clients and stream processors meet on the target.

Found by moving real applications (tests/test_apps.py, docs/applications.md): kafkajs and aiokafka
start idempotent/transactional producers with InitProducerId v0/v1 (probe check
init-producer-id-old-versions); kafkajs reads no LZ4, the mirror's default compression; a
Quix Streams or Kafka Streams changelog (`changelog__<group>--<input>--<store>`, `<app>-<store>-changelog`)
needs read_committed to hide aborted records for exactly-once recovery; and Quix stamps changelog
records with input offsets in the source's numbering, so an input with offset gaps loses the state.
"""

from __future__ import annotations

from typing import Iterable

from migrate.assess.model import BLOCKER, OK, RISK, Finding, Inventory, TopicInventory

QUIX_CHANGELOG = "changelog__"
STREAMS_CHANGELOG = "-changelog"


def is_changelog(name: str) -> bool:
    return name.startswith(QUIX_CHANGELOG) or name.endswith(STREAMS_CHANGELOG)


def quix_input(changelog: str, topics: Iterable[str]) -> str | None:
    """The input topic named in a Quix changelog name `changelog__<group>--<input>--<store>` (None: unknown)."""
    if not changelog.startswith(QUIX_CHANGELOG) or "--" not in changelog:
        return None
    rest = changelog[len(QUIX_CHANGELOG):].rpartition("--")[0]
    matches = [t for t in topics if rest.endswith("--" + t)]
    return max(matches, key=len) if matches else None


def checks_needed(inventory: Inventory) -> set[str]:
    names = {"init-producer-id-old-versions"}
    if any(is_changelog(t.name) for t in inventory.topics):
        names |= {"transactions", "read-committed-hides-aborted"}
    return names


def application_findings(inventory: Inventory, judge, target: str) -> Iterable[Finding]:
    level, evidence = judge.check("init-producer-id-old-versions", RISK)
    yield Finding("estate", target, level, "idempotent or transactional producers on kafkajs 2.x or aiokafka",
                  "init-producer-id-old-versions", evidence,
                  "such producers fail at start on the target: run them with idempotence off (kafkajs "
                  "idempotent: false, aiokafka enable_idempotence=False: at-least-once), or use a client that "
                  "sends InitProducerId v3+ (confluent-kafka, kafka-python 3, Java)" if level != OK else "")
    recompressed = [t.name for t in inventory.topics if t.configs.get("compression.type") in ("lz4", "snappy", "zstd")]
    # Advice (ok) unless a topic's own compression.type makes the broker recompress: then the mirror's
    # --compression cannot help kafkajs readers, a risk.
    yield Finding("estate", target, RISK if recompressed else OK, "kafkajs consumers of mirrored topics", "-",
                  "migrate mirror writes lz4 batches by default (--compression); kafkajs 2.x decodes only gzip "
                  "without a codec plugin (KafkaJSNotImplemented: LZ4 compression not implemented)"
                  + (f"; topics whose compression.type the broker applies whatever the mirror sends: "
                     f"{', '.join(recompressed)}" if recompressed else ""),
                  "for topics kafkajs apps read, run migrate mirror --compression gzip (or none), or register "
                  "an LZ4 codec in the app")
    by_name = {t.name: t for t in inventory.topics}
    for topic in inventory.topics:
        if is_changelog(topic.name):
            yield from _changelog_findings(topic, by_name, judge)


def _changelog_findings(topic: TopicInventory, by_name: dict[str, TopicInventory], judge) -> Iterable[Finding]:
    level, evidence = judge.check("read-committed-hides-aborted", BLOCKER)
    yield Finding("topic", topic.name, level, "exactly-once state recovery from this changelog",
                  "read-committed-hides-aborted", evidence,
                  "an exactly-once stream app restores aborted state from its changelog on the target: run it "
                  "at-least-once there (a crash may count twice)" if level != OK else "")
    if not topic.name.startswith(QUIX_CHANGELOG):
        return
    source_input = quix_input(topic.name, by_name)
    if source_input is None:
        yield Finding("topic", topic.name, RISK, "Quix changelog input offsets", "-",
                      "the changelog's input topic is not in the selection",
                      "mirror the input with its changelog and assess it for offset gaps")
        return
    feeding = by_name[source_input]
    if feeding.usage.offset_gaps or feeding.transactions != "no" or feeding.compacted:
        yield Finding("topic", topic.name, BLOCKER, "Quix state restored from the mirrored changelog", "-",
                      f"changelog records carry input offsets in the source's numbering (__processed_tp_offsets__); "
                      f"input {source_input} has offset gaps on the source ({feeding.usage.offset_gaps} in the "
                      "sample: transaction markers or compaction) that the target lacks, so recovery skips them "
                      "and the state is silently lost",
                      "rebuild the state on the target (do not mirror the changelog, reset the group to the "
                      "input's start), or keep the app on the source")
