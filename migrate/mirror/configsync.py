"""Topic configs kept in sync while a mirror follows, and drift reported (the rules: migrate.mirror.configs).

At each metadata refresh (never in --until-caught-up runs) the engine hands over the topics
whose configs this worker looks after: those whose partition 0 is in a write slot it holds, so
that each topic has one worker doing it.  A round runs in a thread of its own, at most one at a
time, so the copy loop never waits for it (two DescribeConfigs answers of a few hundred topics
take tens of milliseconds, which live records would wait for):
1. the configs topic (`__migrate.<mirror>.configs` on the target, compacted, one record per
   source topic, written only when its baseline or drift changed) is read from where the last
   round stopped: baselines and refusals of other workers are seen too;
2. the source's and the target's configs of every topic are read, one DescribeConfigs each;
3. the changes are sent in one IncrementalAlterConfigs request; a topic the target refuses is
   retried key by key, so that each refused key is known and warned about once;
4. the records of topics whose baseline or drift changed are written, and the drift is handed
   to the metrics (`migrate_mirror_config_drift`).
A round never stops the mirror: a cluster that cannot be read leaves the round for the next
refresh with one warning.  Tansu accepts any key and value (it stores configs without
applying or checking them, and answers an alter for a topic it does not have with success:
measured), so on a Tansu target nothing is ever refused; noida-db refuses unknown keys and bad
values (INVALID_CONFIG), as Kafka does.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Mapping

from confluent_kafka import Producer

from migrate import kafka
from migrate.errors import ClusterUnreachable, KafkaOperationError
from migrate.mirror.configs import (APPLIED, REFUSED, RESTORED, ConfigScope, Drift, TopicPlan, Values, plan_topic,
                                    refuse)
from migrate.mirror.spec import MirrorSpec

log = logging.getLogger("migrate.mirror")

TOPIC_CONFIGS = {"cleanup.policy": "compact", "retention.ms": "-1"}


def configs_topic_name(mirror: str) -> str:
    return f"__migrate.{mirror}.configs"


def _record_key(topic: str) -> bytes:
    return json.dumps(["config", topic], separators=(",", ":")).encode()


def decode(records: list[tuple[bytes, bytes | None]]) -> dict[str, dict]:
    """Source topic -> its latest record (baseline, drift, worker, time) from the configs topic's records."""
    out: dict[str, dict] = {}
    for key, value in records:
        try:
            kind, topic = json.loads(key)
        except (ValueError, TypeError):
            continue
        if kind == "config" and value is not None:
            out[topic] = json.loads(value)
    return out


def read_records(target, mirror: str, timeout: float = 30.0) -> dict[str, dict]:
    """Every topic's latest config record (for `mirror status`); empty when the mirror has none."""
    records, _end = kafka.read_log(target, configs_topic_name(mirror), None, timeout)
    return decode(records)


def drift_text(record: dict) -> str:
    """A topic's drift as `mirror status` shows it: "retention.ms (reported), ...", or ""."""
    return ", ".join(f"{d['key']} ({d['state']})" for d in record.get("drift", []))


class ConfigSync:
    def __init__(self, spec: MirrorSpec, worker: str, metrics, stop: threading.Event | None = None):
        self.spec = spec
        self.worker = worker
        self.metrics = metrics  # hooks config_changed and config_drift (called from the round's thread)
        self.stop = stop or threading.Event()
        self.scope = ConfigScope.of(spec.config_include, spec.config_exclude)
        self.topic = configs_topic_name(spec.name)
        self.drift: tuple[Drift, ...] = ()  # after the last round
        self.rounds = 0
        self._thread: threading.Thread | None = None
        self._next: int | None = None  # where the next read of the configs topic starts
        self._ready = False  # the configs topic exists
        self._records: dict[str, dict] = {}  # source topic -> latest record seen or written
        self._warned: set[tuple] = set()
        self._producer: Producer | None = None

    # --- the engine's side (loop thread) ----------------------------------------------------------

    def due(self, topics: Mapping[str, str]) -> None:
        """Start a round over `topics` (source -> target topic) unless one is running."""
        if not topics or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._round_safely, args=(dict(topics),), name="config-sync",
                                        daemon=True)
        self._thread.start()

    def wait(self, timeout: float = 60.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _round_safely(self, topics: dict[str, str]) -> None:
        try:
            self.round(topics)
        except (KafkaOperationError, ClusterUnreachable) as exc:
            self._warn(("round", str(exc)), "topic config sync skipped this round: %s", exc)
        except Exception as exc:  # a config problem never stops the copy
            self._warn(("round", repr(exc)), "topic config sync failed this round: %s", exc)

    # --- one round (its own thread; callable directly) ---------------------------------------------

    def round(self, topics: Mapping[str, str]) -> list[TopicPlan]:
        """Steps 1-4 of the module docstring over `topics`; returns what was planned per topic."""
        spec = self.spec
        self._read_records()
        source = kafka.topic_config_entries_many(spec.source, list(topics), skip_missing=True)
        target = kafka.topic_config_entries_many(spec.target, sorted(set(topics.values())), skip_missing=True)
        plans: list[TopicPlan] = []
        for name, target_topic in sorted(topics.items()):
            if name not in source or target_topic not in target:
                continue  # gone from the source (reported elsewhere) or not on the target yet
            record = self._records.get(name)
            baseline = record.get("baseline") if record is not None else None
            refused = {d["key"]: d["source"] for d in (record or {}).get("drift", []) if d["state"] == REFUSED}
            plans.append(plan_topic(name, target_topic, self.scope, source[name], target[target_topic],
                                    baseline, spec.config_drift, refused))
        if self.stop.is_set():
            return plans
        self._apply(plans)
        for plan in plans:
            self._report(plan)
        self._publish(plans)
        self.drift = tuple(d for plan in plans for d in plan.drift)
        self.metrics.config_drift(self.drift)
        self.rounds += 1
        return plans

    def _read_records(self) -> None:
        if not self._ready:
            if kafka.create_topic(self.spec.target, self.topic, 1, TOPIC_CONFIGS):
                kafka.wait_for_topic(self.spec.target, self.topic, 1)
            self._ready = True
        records, end = kafka.read_log(self.spec.target, self.topic, self._next, 30.0)
        self._records.update(decode(records))
        if end is not None:
            self._next = end

    def _apply(self, plans: list[TopicPlan]) -> None:
        """One IncrementalAlterConfigs request; a topic refused as a whole is retried key by key."""
        pending = {p.target_topic: p for p in plans if p.changes}
        if not pending:
            return
        answers = kafka.alter_topic_configs(self.spec.target, {t: p.changes for t, p in pending.items()})
        for target_topic, error in answers.items():
            if error is None:
                continue
            plan = pending[target_topic]
            old = (self._records.get(plan.topic) or {}).get("baseline")
            keys = list(plan.changes)
            if len(keys) > 1:
                for key in keys:
                    one = kafka.alter_topic_configs(self.spec.target, {target_topic: {key: plan.changes[key]}})
                    why = one.get(target_topic)
                    if why is not None:
                        self._refused(plan, key, why, old)
            else:
                self._refused(plan, keys[0], error, old)

    def _refused(self, plan: TopicPlan, key: str, error: str, old: Values | None) -> None:
        value = plan.changes.get(key)
        refuse(plan, key, old)
        self.metrics.config_changed(plan.topic, key, REFUSED)
        self._warn(("refused", plan.target_topic, key, value),
                   'cluster "%s" refused topic config %s=%s for topic "%s" (%s); it stays %s there, and is '
                   'tried again when source topic "%s" changes it', self.spec.target.name, key, _shown(value),
                   plan.target_topic, error, _shown(plan.target[key]), plan.topic)

    def _report(self, plan: TopicPlan) -> None:
        for key, reason in plan.reasons.items():
            value, was = plan.changes[key], plan.target[key]
            self.metrics.config_changed(plan.topic, key, reason)
            if reason == APPLIED:
                log.info('topic config %s of "%s" is now %s (changed on source "%s"; it was %s)', key,
                         plan.target_topic, _shown(value), plan.topic, _shown(was))
            elif reason == RESTORED:
                self._warn(("restored", plan.target_topic, key, was),
                           'topic config %s of target topic "%s" was changed on the target to %s; restored to the '
                           "source's %s (pass --config-drift report to leave such changes and only report them)",
                           key, plan.target_topic, _shown(was), _shown(value))
        for drift in plan.drift:
            if drift.state != REFUSED:
                self._warn(("drift", drift.target_topic, drift.key, drift.source, drift.target),
                           'topic config drift: %s of target topic "%s" is %s, source "%s" has %s; left as it is '
                           "(--config-drift report)", drift.key, drift.target_topic, _shown(drift.target),
                           drift.topic, _shown(drift.source))

    def _publish(self, plans: list[TopicPlan]) -> None:
        """A record per topic whose baseline or drift changed (so the topic stays small on any platform)."""
        written: dict[str, dict] = {}
        for plan in plans:
            drift = [{"key": d.key, "source": d.source, "target": d.target, "state": d.state} for d in plan.drift]
            old = self._records.get(plan.topic)
            if old is not None and old.get("baseline") == plan.baseline and old.get("drift") == drift:
                continue
            record = {"target_topic": plan.target_topic, "baseline": plan.baseline, "drift": drift,
                      "worker": self.worker, "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(
                          timespec="milliseconds")}
            if self._producer is None:
                self._producer = kafka.producer(self.spec.target, **{"linger.ms": 5})
            self._producer.produce(self.topic, json.dumps(record, separators=(",", ":")).encode(),
                                   _record_key(plan.topic), partition=0)
            written[plan.topic] = record
        if not written:
            return
        assert self._producer is not None
        left = self._producer.flush(15)
        if left:  # the next round compares with what was last written, and writes them again
            log.warning("topic config sync: %d records not written to %s", left, self.topic)
            return
        self._records.update(written)

    def _warn(self, what: tuple, message: str, *args) -> None:
        """One warning per distinct event (topic, key, values); repeats go to the debug log."""
        if what in self._warned:
            log.debug(message, *args)
            return
        self._warned.add(what)
        log.warning(message, *args)


def _shown(value: str | None) -> str:
    return "(unset)" if value is None else value

