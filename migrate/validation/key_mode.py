"""Key mode: compare records by identity (key or id header), whatever their offsets.

Digests spill to a temporary SQLite file, so memory stays bounded.
"""

from __future__ import annotations

from migrate import kafka
from migrate.errors import UsageError
from migrate.mirror import registry
from migrate.records import from_message
from migrate.state import State
from migrate.validation.filters import _key_include, _topic_filter
from migrate.validation.reading import _Readers, read_partition
from migrate.validation.runs import _cursors, _moves_cursors, _save_cursors
from migrate.validation.spec import ValidateSpec
from migrate.validators.divergence import Tally
from migrate.validators.keyed import SOURCE, TARGET, KeyedComparer


def _key_topics(spec: ValidateSpec, state: State) -> list[tuple[str, str]]:
    wanted = _topic_filter(spec.topics)
    renames = {s: t for s, (t, _n) in registry.topics(state, spec.mirror).items()} if spec.mirror else {}
    names = sorted(t for t in kafka.list_topics(spec.source) if wanted(t))
    if not names:
        raise UsageError("no source topic matches --topics; list them with a Kafka tool or check the pattern")
    return [(name, renames.get(name, name)) for name in names]


def _validate_key(spec: ValidateSpec, state: State, tally: Tally, scope: str) -> dict:
    pairs = _key_topics(spec, state)
    source_topics = kafka.list_topics(spec.source)
    target_topics = kafka.list_topics(spec.target)
    cursors = _cursors(state, scope) if spec.incremental else {}
    new_cursors: dict[tuple[str, int], tuple[int, int]] = {}
    include = _key_include(spec)
    readers = _Readers(spec)
    stats = {"partitions": 0}
    try:
        with KeyedComparer(tally, spec.options, spec.id_header) as comparer:
            for source_topic, target_topic in pairs:
                tally.topic(source_topic, target_topic)
                if target_topic not in target_topics:  # one topic missing, not every record of it
                    tally.one_sided(source_topic, target_topic, "source")
                    continue
                src_parts = [(source_topic, p) for p in range(source_topics[source_topic].partitions)]
                tgt_parts = ([(target_topic, p) for p in range(target_topics[target_topic].partitions)]
                             if target_topic in target_topics else [])
                src_ends = kafka.partition_ends(spec.source, src_parts)
                tgt_ends = kafka.partition_ends(spec.target, tgt_parts)
                for side, ends, profile, topic in ((SOURCE, src_ends, spec.source, source_topic),
                                                   (TARGET, tgt_ends, spec.target, target_topic)):
                    client = readers.get("source" if side == SOURCE else "target")
                    for (_, partition), end in sorted(ends.items()):
                        previous = cursors.get((source_topic, partition), (-1, -1))[side]
                        lo = max(end.low, previous)
                        messages = read_partition(client, profile, topic, partition, lo, end.high)
                        records = (r for r in map(from_message, messages) if include(r))
                        comparer.add(side, source_topic, records)
                        now = new_cursors.get((source_topic, partition), (-1, -1))
                        new_cursors[(source_topic, partition)] = ((end.high, now[1]) if side == SOURCE
                                                                  else (now[0], end.high))
                        stats["partitions"] += 1
                comparer.compare(source_topic, target_topic)
    finally:
        readers.close()
    if _moves_cursors(spec):
        _save_cursors(state, scope, new_cursors)
    return stats
