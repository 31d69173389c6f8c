"""End to end: seed the reference estate, mirror it with `migrate mirror`, validate.

The estate has keyed and null-keyed records, duplicate and null headers, tombstones on a
compacted topic and transactions with aborts, so a clean mirror validating clean covers
every shape of record; then the target is tampered with and the validator must name it.
"""

from __future__ import annotations

import re

from migrate import kafka
from migrate.seed import seed_estate
from migrate.state import State
from migrate.validation import ValidateSpec, run_validation
from migrate.validators.digest import make_options
from mirror_support import mirror_once
from support import unique
from test_validate_kafka import produce


def spec(source, target, prefix, **kw):
    return ValidateSpec(source=source.profile, target=target.profile, source_spec=source.bootstrap,
                        target_spec=target.bootstrap, topics=(re.escape(prefix) + ".*",),
                        options=make_options(), **kw)


def test_mirrored_seeded_estate_validates_clean_then_finds_tampering(source_cluster, target_cluster, tmp_path):
    # noida-db -> Tansu, the migration this product exists for; every direction and same-platform
    # pair is covered by test_validate_kafka (clean mirrors with transactions and aborts).
    source, target = source_cluster, target_cluster
    prefix = unique("est") + "."
    seed_estate(source.profile, prefix=prefix)
    state_path = tmp_path / "state.db"
    mirror_once(state_path, source.profile, target.profile, [re.escape(prefix) + ".*"])
    with State(state_path) as state:
        result = run_validation(spec(source, target, prefix, incremental=True), state)
        assert result.mode == "map"
        assert result.parity, [d.as_dict() for d in result.examples]
        assert len(result.topics) == 7 and result.records_compared > 0
        assert result.info["unmirrored"] == 0
    # On another machine (no local map index) the maps come from the durable map topic on the target.
    with State(tmp_path / "elsewhere.db") as elsewhere:
        remote = run_validation(spec(source, target, prefix), elsewhere)
        assert remote.mode == "map" and remote.parity and remote.records_compared == result.records_compared
    # More source records, mirrored again: the incremental run compares only those.
    events = prefix + "workflow.events"
    produce(source.profile, events, [(b"wf-late", f"late-{i}".encode(), ()) for i in range(25)], partition=2)
    mirror_once(state_path, source.profile, target.profile, [re.escape(prefix) + ".*"])
    with State(state_path) as state:
        later = run_validation(spec(source, target, prefix, incremental=True), state)
        assert later.parity and later.records_compared == 25

        # Tamper: a foreign record written straight to one mirrored target partition.
        topic = prefix + "approvals"
        end = kafka.partition_ends(target.profile, [(topic, 0)])[(topic, 0)].high
        produce(target.profile, topic, [(b"intruder", b"not from the source", ())])
        tampered = run_validation(spec(source, target, prefix), state)
        assert [(d.kind, d.topic, d.partition, d.target_offset) for d in tampered.examples] == \
            [("extra", topic, 0, end)]
