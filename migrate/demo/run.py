"""`migrate demo`: the whole story on embedded local clusters, in about a minute.

Starts (or reuses) a noida-db source and a Tansu target, seeds the reference estate, starts
the mirror, runs live workflow apps (a producer and one consumer per group, real processes),
checks parity, rehearses the cutover and its rollback on shadow names, then runs the real
cutover with the live apps moved by the playbook's hooks, and reads the proof from the
apps' own files: every event processed exactly once per group, across both clusters.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from migrate import config as cfg
from migrate import kafka, shutdown
from migrate.demo.live import LiveApps, Proof
from migrate.local.clusters import LocalClusters
from migrate.local.platforms import free_port
from migrate.playbooks import processes
from migrate.playbooks.actions import ActionContext
from migrate.playbooks.runner import RunOptions, Runner

# Local clusters (and profiles) of their own, so a user's `source`/`target` profiles are never replaced.
SOURCE, TARGET = "demo-source", "demo-target"
LIVE_PARTITIONS = 3
LIVE_GROUPS = ("live.engine", "live.audit")


@dataclass(frozen=True)
class DemoSummary:
    """What the demo did, in figures that add up: records mirrored = seeded committed records + live
    events produced on the source; live events produced = those on the source + those on the target."""

    source: str
    target: str
    prefix: str
    seeded_records: int  # committed records of the seeded estate (what the mirror copies)
    seeded_topics: int
    events_mirrored: int  # records the forward mirror copied (its offset map), seeded and live
    parity: str
    rehearsal: str
    cutover: str
    groups_translated: int
    downtime_s: float | None
    proof: Proof
    produced_on_target: int  # live events produced on the target (after the producers moved)
    seconds: float
    timings: dict = field(default_factory=dict)
    final_lag: int | None = None  # the forward mirror's exact lag, from its /metrics just before the cutover stopped it
    seeded_aborted: int = 0  # records of aborted transactions in the seeded estate (never mirrored)
    live_on_source: int = 0  # live events on the source's live topic (counted there, partition ends)
    mirrored_seeded: int = 0  # of events_mirrored, those of the seeded topics
    mirrored_live: int = 0  # of events_mirrored, those of the live topic

    @property
    def ok(self) -> bool:
        return self.proof.exact and self.cutover.startswith("succeeded")

    @property
    def adds_up(self) -> bool:
        return (self.mirrored_seeded == self.seeded_records and self.mirrored_live == self.live_on_source
                and self.live_on_source + self.produced_on_target == self.proof.produced)

    def rows(self) -> list[dict[str, object]]:
        window = f"{self.downtime_s:.2f}s" if self.downtime_s is not None else "not measured"
        rows = [
            ("source", self.source),
            ("target", self.target),
            ("estate seeded", f"{self.seeded_records:,} committed records in {self.seeded_topics} topics "
                              f"(+{self.seeded_aborted} aborted, never mirrored; prefix {self.prefix})"),
            ("live events produced", f"{self.proof.produced:,}: {self.live_on_source:,} on the source, "
                                     f"{self.produced_on_target:,} on the target after the producers moved"),
            ("records mirrored", f"{self.events_mirrored:,}: {self.mirrored_seeded:,} seeded + {self.mirrored_live:,} "
                                 "live events of the source (exact offset map)"
                                 + ("" if self.adds_up else "; DOES NOT ADD UP with the counts above")),
            ("parity", self.parity),
            ("rehearsal (cutover + rollback)", self.rehearsal),
            ("cutover", self.cutover),
            ("groups translated", f"{self.groups_translated} (offsets committed exactly on the target)"),
            ("consumer downtime window", window),
            ("mirror lag at the cutover", (f"{self.final_lag} records" if self.final_lag is not None else "not read")
             + " (its /metrics, read before the cutover stopped it)"),
        ]
        rows += [(f"processed by {g.group}", f"{g.processed:,}") for g in self.proof.groups]
        rows += [("events lost", str(self.proof.lost)), ("events processed twice", str(self.proof.twice)),
                 ("demo duration", f"{self.seconds:.1f}s")]
        return [{"what": k, "result": v} for k, v in rows]


class Demo:
    def __init__(self, state, state_path: Path, config_path: Path, progress: Callable[[str], None],
                 rate: float = 50.0, keep_clusters: bool = False):
        self.state = state
        self.keep_clusters = keep_clusters
        self.state_path = Path(state_path)
        self.config_path = Path(config_path)
        self.say = progress
        self.rate = rate
        self.tag = secrets.token_hex(2)
        self.prefix = f"demo{self.tag}."
        self.mirror = f"demo{self.tag}"
        self.reverse = f"demo{self.tag}-back"
        self.workdir = self.state_path.parent / "demo" / self.tag
        self.timings: dict[str, float] = {}
        self.metrics_url = ""
        self.final_lag: int | None = None
        self.cutting_over = False

    def _timed(self, label: str, started: float) -> None:
        self.timings[label] = round(time.monotonic() - started, 2)

    def run(self) -> DemoSummary:
        """The demo; local clusters it had to start are stopped afterwards unless kept."""
        local = LocalClusters(self.state, self.config_path)
        running = {c.name for c in local.status() if c.running}
        try:
            return self._run(local)
        finally:
            started = [name for name in (SOURCE, TARGET) if name not in running]
            if started and not self.keep_clusters:
                self.say(f"stopping the local clusters the demo started ({', '.join(started)}; "
                         f"--keep-clusters keeps them)")
                local.down(started)

    def _run(self, local: LocalClusters) -> DemoSummary:
        from migrate.seed import seed_estate

        began = time.monotonic()
        self.say("starting local clusters: source on noida-db, target on Tansu")
        local.up([(SOURCE, "noida"), (TARGET, "tansu")])
        # An abandoned stop (the grace ran out) must not leave the demo's brokers behind.
        for cluster in local.status():
            if cluster.name in (SOURCE, TARGET) and cluster.running and cluster.pid:
                shutdown.adopt(cluster.pid, own_group=True)
        processes.tie_to_owner(True)
        self.config = cfg.load_config(self.config_path)
        source = cfg.resolve_cluster(SOURCE, self.config, "source")
        target = cfg.resolve_cluster(TARGET, self.config, "target")

        t = time.monotonic()
        self.say(f"seeding the agentic-workflow estate under prefix {self.prefix}")
        seeded = seed_estate(source, prefix=self.prefix)
        self._timed("seed", t)
        self._assess(source)  # the seeded estate, before the live topic is there
        topic = self.prefix + "workflow.live"
        kafka.create_topic(source, topic, LIVE_PARTITIONS)
        kafka.wait_for_topic(source, topic, LIVE_PARTITIONS)

        ctx = self._context()
        from migrate.playbooks import cluster_actions as act

        t = time.monotonic()
        self.say(f"starting the mirror {self.mirror} (source -> target, background process)")
        metrics_port = free_port()
        act.run_mirror_start(ctx, {"name": self.mirror, "source": SOURCE, "target": TARGET,
                                   "topics": [re.escape(self.prefix) + ".*"],
                                   "args": ["--metrics-port", str(metrics_port)]})
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.say(f"the mirror serves Prometheus metrics at {self.metrics_url} while the demo runs")
        groups = [self.prefix + g for g in LIVE_GROUPS]
        apps = LiveApps(self.workdir / "apps", source.bootstrap, target.bootstrap, topic, groups, rate=self.rate)
        try:
            self.say(f"starting live apps: 1 producer ({self.rate:g} events/s), consumers in {', '.join(groups)}")
            apps.start()
            apps.wait_processed(50)
            act.run_mirror_wait(self._context(deadline=120), {"name": self.mirror, "max_lag": 1000, "hold": 0})
            self._timed("mirror", t)

            t = time.monotonic()
            self.say("validating parity (map mode, every record's content and position)")
            parity = act.run_validate(self._context(deadline=300), {"mirror": self.mirror,
                                                                     "args": ["--until", "10s"]})
            parity_line = _first_line(parity.output)
            self._timed("parity", t)

            estate_groups = [g.name for g in seeded.groups if g.offsets]
            variables = self._vars(topic, estate_groups + groups, apps)
            runner = Runner(self.state, self.config, self.state_path, self.config_path,
                            RunOptions(assume_yes=True, on_event=self._event))

            t = time.monotonic()
            self.say("rehearsing cutover then rollback on shadow topics and groups (production untouched)")
            cutover, rollback = _shipped("cutover"), _shipped("rollback")
            report = runner.rehearse(cutover, variables, rollback)
            rehearsal = (f"{'PASSED' if report.passed else 'FAILED'}: " + ", ".join(
                f"{o.playbook} {o.duration_s or 0:.1f}s" for o in report.outcomes)
                + (f", downtime {report.downtime_s:.2f}s" if report.downtime_s is not None else ""))
            self._timed("rehearsal", t)
            if not report.passed:
                failed = next(o for o in report.outcomes if not o.ok)
                rehearsal += f" ({failed.error})"

            t = time.monotonic()
            self.say("running the real cutover: the live apps move to the target through the hooks")
            self.cutting_over = True
            outcome = runner.run(cutover, {k: v for k, v in variables.items() if k not in _ROLLBACK_ONLY})
            self._timed("cutover", t)
            translated = next((s.data.get("groups", 0) for s in outcome.steps if s.action == "offsets.sync"), 0)
            if outcome.ok:
                self.say("apps live on the target; letting them run, then draining")
                apps.wait_processed(apps.produced() + 100, timeout=60)
            proof = apps.drain_and_stop()
        finally:
            apps.stop()
            for key in (f"mirror:{self.mirror}", f"mirror:{self.reverse}"):
                processes.stop(self.state, key, grace=15)
        mirrored_live, mirrored = self.state.db.execute(
            "SELECT COALESCE(SUM(CASE WHEN topic = ? THEN length END), 0), COALESCE(SUM(length), 0) "
            "FROM offset_runs WHERE mirror = ?", [topic, self.mirror]).fetchone()
        # the live events produced on the source, counted there by reading them: not by offsets,
        # since the reverse mirror also writes the target's events back to that topic, in
        # transactions whose commit markers take offsets too
        ends = kafka.partition_ends(source, [(topic, p) for p in range(LIVE_PARTITIONS)])
        read = kafka.read_ranges(source, {key: (end.low, end.high) for key, end in ends.items()})
        on_source = sum(1 for messages in read.values() for m in messages if _produced_on(m.value()) == "source")
        return DemoSummary(
            source=f"noida-db at {source.bootstrap}", target=f"Tansu at {target.bootstrap}", prefix=self.prefix,
            seeded_records=seeded.records, seeded_topics=len(seeded.topics), events_mirrored=mirrored,
            parity=parity_line, rehearsal=rehearsal,
            cutover=f"{outcome.status} in {outcome.duration_s or 0:.1f}s (run {outcome.run_id})"
            + (f": {outcome.error}" if outcome.error else ""),
            groups_translated=translated, downtime_s=outcome.downtime_s, proof=proof,
            produced_on_target=proof.produced - on_source,
            seconds=round(time.monotonic() - began, 1), timings=self.timings, final_lag=self.final_lag,
            seeded_aborted=sum(t.aborted for t in seeded.topics), live_on_source=on_source,
            mirrored_seeded=mirrored - mirrored_live, mirrored_live=mirrored_live,
        )

    def _assess(self, source) -> None:
        from migrate.assess.inventory import take_inventory
        from migrate.assess.summary import brief

        t = time.monotonic()
        inventory = take_inventory(source, [re.escape(self.prefix) + ".*"], sample_seconds=0)
        self.say("assessment of the estate (read-only; migrate assess --target ... adds readiness and a plan):")
        for line in brief(inventory):
            self.say(f"   {line}")
        self._timed("assess", t)

    def _context(self, deadline: float | None = 60.0) -> ActionContext:
        return ActionContext(run_id=f"demo-{self.tag}", playbook="demo", step_name="demo", state=self.state,
                             config=self.config, state_path=self.state_path, config_path=self.config_path,
                             deadline=time.monotonic() + deadline if deadline else None,
                             vars={"source": SOURCE, "target": TARGET})

    def _vars(self, topic: str, groups: list[str], apps: LiveApps) -> dict[str, str]:
        values = {"source": SOURCE, "target": TARGET, "topics": re.escape(self.prefix) + ".*",
                  "groups": ",".join(groups), "mirror": self.mirror, "reverse_mirror": self.reverse,
                  "max_lag": "1000", "drain_timeout": "2m",
                  # Tansu answers a JoinGroup after session.timeout/2: keep the reverse mirror's short
                  "reverse_mirror_args": "--session-timeout-ms,2000"}
        values.update(apps.hook_vars())
        return values

    def _event(self, kind: str, step, info: dict) -> None:
        if kind == "start" and self.cutting_over and step.action == "mirror.stop" \
                and step.params.get("name") == self.mirror:
            self._read_final_lag()
        if kind == "playbook":  # where the rehearsal moves from one playbook's steps to the next
            self.say(f"-- {info['mode']} of {info['playbook']} (run {info['run_id']})")
        elif kind == "end":
            status = info["status"]
            self.say(f"   {step.phase + ' ' if step.phase != 'main' else ''}{step.name}: {status} "
                     f"({info['duration']:.2f}s)" + (f" {info.get('error')}" if info.get("error") else ""))


    def _read_final_lag(self) -> None:
        """The forward mirror's exact lag from its own /metrics, the moment before the cutover stops it."""
        from migrate.metrics.scrape import mirror_lag

        try:
            self.final_lag = mirror_lag(self.metrics_url)
        except OSError as exc:
            self.say(f"   could not read {self.metrics_url}: {exc}")
            return
        self.say(f"   mirror {self.mirror} metrics: exact lag {self.final_lag} records ({self.metrics_url})")


_ROLLBACK_ONLY = ("stop_target_consumers", "stop_target_producers")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"^validation run \d+ ", "", line)


def _shipped(name: str) -> Path:
    from importlib import resources

    return Path(str(resources.files("migrate.playbooks") / f"{name}.yaml"))


def run_demo(state, state_path: Path, config_path: Path, progress: Callable[[str], None],
             rate: float = 50.0, keep_clusters: bool = False) -> DemoSummary:
    return Demo(state, state_path, config_path, progress, rate, keep_clusters).run()


def _produced_on(value: bytes | None) -> str | None:
    """The cluster a demo event was produced on (its producer says so in the event)."""
    try:
        return json.loads(value or b"{}").get("produced_on")
    except (ValueError, AttributeError):
        return None
