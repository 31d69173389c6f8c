"""Writing the estate: `seed_estate` creates the topics, writes the plan (plain records and
transactions, committed or aborted, in plan order so that offsets are deterministic) and
commits the groups' offsets.

Re-seeding refuses: when any estate topic already exists the call raises UsageError before
writing anything; pass another prefix (or delete the topics).
"""

from __future__ import annotations

from typing import Iterator

from confluent_kafka import KafkaException

from migrate import groups, kafka
from migrate.config import ClusterProfile
from migrate.errors import KafkaOperationError, UsageError
from migrate.seed.estate import GROUPS, PARTITIONS, TOPICS, EstatePlan, SeedRecord
from migrate.seed.planner import plan_estate
from migrate.seed.summary import GroupSummary, SeedSummary, summarise


def seed_estate(profile: ClusterProfile, scale: int = 1, seed: int = 7, prefix: str = "") -> SeedSummary:
    """Write the estate for (scale, seed) to a cluster under `prefix`; refuse if any topic exists."""
    plan = plan_estate(scale, seed)
    _create_topics(profile, prefix)
    _write_records(profile, plan, prefix, seed)
    positions = _commit_groups(profile, prefix)
    return summarise(profile, plan, prefix, positions)


def _create_topics(profile: ClusterProfile, prefix: str) -> None:
    names = [prefix + t.suffix for t in TOPICS]
    with kafka.AdminSession(profile) as session:
        existing = sorted(set(names) & set(session.list_topics()))
        if existing:
            raise UsageError(
                f'cluster "{profile.name}" already has estate topics ({", ".join(existing)}); '
                "pass another --prefix or delete them"
            )
        for spec in TOPICS:
            if not kafka.create_topic(profile, prefix + spec.suffix, spec.partitions, spec.configs):
                raise UsageError(f'topic "{prefix + spec.suffix}" appeared on cluster "{profile.name}" while '
                                 "seeding; pass another --prefix")
        # Some platforms auto-create unknown topics on produce: never write before ours exist.
        for spec in TOPICS:
            session.wait_for_topic(prefix + spec.suffix, spec.partitions)


class _Delivery:
    """Collects the first delivery error of a producer."""

    def __init__(self) -> None:
        self.error: str | None = None

    def __call__(self, err, _msg) -> None:
        if err is not None and self.error is None:
            self.error = f"{err.name()}: {err.str()}"


def _units(records: tuple[SeedRecord, ...]) -> Iterator[tuple[int | None, list[SeedRecord]]]:
    """Consecutive plain records as one unit, each transaction as one unit."""
    current: list[SeedRecord] = []
    current_txn: int | None = None
    for record in records:
        if current and record.txn != current_txn:
            yield current_txn, current
            current = []
        current_txn = record.txn
        current.append(record)
    if current:
        yield current_txn, current


def _write_records(profile: ClusterProfile, plan: EstatePlan, prefix: str, seed: int) -> None:
    plain = kafka.producer(profile, **{"linger.ms": 5})
    transactional = kafka.producer(profile, **{"linger.ms": 5, "transactional.id": f"migrate-seed-{prefix}{seed}"})
    delivery = _Delivery()
    try:
        transactional.init_transactions(30)
        for txn, records in _units(plan.records):
            if txn is None:
                _produce(plain, records, prefix, delivery)
                continue
            # Offsets stay deterministic only if the two producers never interleave in flight.
            _flush(profile, plain, delivery)
            transactional.begin_transaction()
            _produce(transactional, records, prefix, delivery)
            if records[0].aborted:
                _flush(profile, transactional, delivery)  # abort would purge unsent records
                transactional.abort_transaction(30)
            else:
                transactional.commit_transaction(30)
            _check(profile, delivery)
        _flush(profile, plain, delivery)
    except KafkaException as exc:
        raise kafka.fail(profile, "writing the seeded estate", exc) from exc


def _produce(client, records: list[SeedRecord], prefix: str, delivery: _Delivery) -> None:
    for record in records:
        while True:
            try:
                client.produce(prefix + record.topic, value=record.value, key=record.key,
                               partition=record.partition, headers=list(record.headers),
                               timestamp=record.timestamp, on_delivery=delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                client.poll(0.1)
        client.poll(0)


def _flush(profile: ClusterProfile, client, delivery: _Delivery) -> None:
    if client.flush(60) > 0:
        raise KafkaOperationError(f'cluster "{profile.name}" did not acknowledge the seeded records within 60s')
    _check(profile, delivery)


def _check(profile: ClusterProfile, delivery: _Delivery) -> None:
    if delivery.error:
        raise KafkaOperationError(f'writing the seeded estate on cluster "{profile.name}" failed: {delivery.error}')


def _commit_groups(profile: ClusterProfile, prefix: str) -> list[GroupSummary]:
    wanted = [(prefix + t.suffix, p) for t in TOPICS for p in range(t.partitions)]
    ends = kafka.partition_ends(profile, wanted)
    summaries, plans = [], {}
    for spec in GROUPS:
        offsets = []
        for suffix in spec.topics:
            for partition in range(PARTITIONS[suffix]):
                if spec.partitions is not None and partition not in spec.partitions:
                    continue
                end = ends[(prefix + suffix, partition)].high
                offsets.append((prefix + suffix, partition, end * 2 // 3 if spec.position == "lagging" else end))
        plans[prefix + spec.suffix] = {(t, p): o for t, p, o in offsets}
        summaries.append(GroupSummary(prefix + spec.suffix, spec.position, tuple(offsets), spec.description))
    refused = sorted(group for group, reason in groups.commit(profile, plans).items() if reason)
    if refused:
        raise UsageError(f'groups {", ".join(refused)} on cluster "{profile.name}" have live members; '
                         "pass another --prefix")
    return summaries
