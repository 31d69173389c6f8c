"""Slots nobody works: workers gone without leaving, and this worker waiting with no slot.

A thread of each worker watches the fleet status (migrate.mirror.fleet) every CHECK_S seconds.
Rules (measured on noida-db 0.2.3 and Tansu 0.6.0; on Kafka each is harmless):
1. A worker gone without leaving (SIGKILL, a machine lost, an abandoned stop whose source did
   not answer) is removed from the slots group by any live worker once its heartbeat has been
   silent for `remove_after` seconds: neither local broker drops a static member that stopped,
   and noida-db never drops a dynamic one either.  Silence is counted on the watcher's own clock
   from when it last saw the heartbeat change; a heartbeat already old by its own timestamp when
   first read adds that age, but only once the watcher has seen it unchanged for three beats, so
   clock skew between machines alone never removes a live worker.  A worker that was only paused and wakes up is
   fenced at the target by the slots' new holders (migrate.mirror.slots), so removing it is safe.
   When, `remove_after` seconds after its removal, some of its slots are held by no live worker,
   the source kept the dead static member (Tansu 0.6.0 does, whatever it answers to the
   removal): a WARNING says so once, naming the slots and what to do (start a worker with its
   identity again, or run the workers with --membership dynamic).
2. A worker that has held no slot for `warn_after` seconds (the session timeout plus a margin)
   says so as a WARNING, shown without -v: the group, its state and members as the broker lists
   them, the workers the fleet status shows holding slots, and what to do.  It says it again
   every REPEAT_S while it waits, and once more when it gets slots.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.kafka.group_members import Removal, remove_member
from migrate.mirror import fleet

log = logging.getLogger("migrate.mirror")

CHECK_S = 5.0
REPEAT_S = 300.0


def remove_after(session_timeout_ms: int) -> float:
    """Rule 1: past the session timeout (Kafka would have dropped it) and past ALIVE_AFTER_S."""
    return max(3 * session_timeout_ms / 1000, 3 * fleet.ALIVE_AFTER_S)


def warn_after(session_timeout_ms: int) -> float:
    """Rule 2: the session timeout plus a margin of at least 10 s."""
    session = session_timeout_ms / 1000
    return session + max(10.0, session)


@dataclass
class Watched:
    seen_at: str  # the heartbeat's own timestamp, as last read
    since: float  # monotonic time at which this watcher first read that value
    credit: float  # its age by its own clock when this watcher first read it (0 after a change)


class Vacancies:
    def __init__(self, target: ClusterProfile, source: ClusterProfile, mirror: str, group: str, worker: str,
                 session_timeout_ms: int, idle: Callable[[], bool],
                 remove: Callable[..., Removal] = remove_member):
        self.target, self.source, self.mirror, self.group, self.worker = target, source, mirror, group, worker
        self.remove_after = remove_after(session_timeout_ms)
        self.warn_after = warn_after(session_timeout_ms)
        self._idle = idle  # True while this worker is in the group and holds no slot
        self._remove = remove
        self._watched: dict[str, Watched] = {}
        self._removed: set[str] = set()  # member ids removed by this worker
        self._removal_at: dict[str, float] = {}  # worker -> when this worker removed it (rule 1's after-check)
        self._reader = fleet.StatusReader(target, mirror)
        self.waiting_since: float | None = time.monotonic()  # None while holding a slot
        self.others_seen = False  # another live worker of the mirror was seen in the fleet status
        self._warned_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vacancies", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(CHECK_S + 10)

    def waiting_for(self) -> float | None:
        """Seconds this worker has held no slot (None while it holds one): for its heartbeat."""
        since = self.waiting_since
        return None if since is None else time.monotonic() - since

    def _run(self) -> None:
        while not self._stop.wait(CHECK_S):
            try:
                status = self._reader.refresh(timeout=10)
                self.check(status, time.monotonic())
            except Exception as exc:  # noqa: BLE001 - a watcher must never stop the worker
                log.debug("fleet watch skipped: %s", exc)

    def check(self, status: fleet.FleetStatus, now: float) -> None:
        for worker in status.workers.values():
            if worker.worker != self.worker:
                self.others_seen = self.others_seen or worker.alive()
                self._maybe_remove(worker, now)
                self._check_removed(status, worker, now)
        self._say_waiting(status, now)

    # --- rule 1 ------------------------------------------------------------------------------------

    def silence(self, worker: fleet.WorkerStatus, now: float) -> float:
        """Rule 1: how long this watcher has seen the heartbeat unchanged, plus its age by its own
        clock when first read, counted only after a few unchanged beats (so skew alone never counts)."""
        watched = self._watched.get(worker.worker)
        if watched is None or watched.seen_at != worker.seen_at:
            credit = max(0.0, _age(worker.seen_at)) if watched is None else 0.0
            watched = self._watched[worker.worker] = Watched(worker.seen_at, now, credit)
        watching = now - watched.since
        return watching if watching < 3 * fleet.HEARTBEAT_S else watching + watched.credit

    def _maybe_remove(self, worker: fleet.WorkerStatus, now: float) -> None:
        if worker.state != "running" or not worker.member_id or worker.member_id in self._removed:
            return
        silent = self.silence(worker, now)
        if silent < self.remove_after:
            return
        self._removed.add(worker.member_id)
        self._removal_at[worker.worker] = now
        removal = self._remove(self.source, self.group, worker.member_id, worker.instance_id or None)
        if removal.removed:
            log.warning('worker %s of mirror "%s" has been silent for %.0fs without leaving: removed it from group %s '
                        "so its slots %s move to live workers", worker.worker, self.mirror, silent, self.group,
                        _slots(worker.slots))
        else:
            log.debug("worker %s silent %.0fs; the broker did not remove it (%s): it was gone already",
                      worker.worker, silent, removal.detail)

    def _check_removed(self, status: fleet.FleetStatus, worker: fleet.WorkerStatus, now: float) -> None:
        removed_at = self._removal_at.get(worker.worker)
        if removed_at is None or now - removed_at < self.remove_after or worker.alive():
            return
        held = {slot for other in status.workers.values() if other.alive() for slot in other.slots}
        stuck = sorted(set(worker.slots) - held)
        del self._removal_at[worker.worker]  # said once
        if not stuck:
            return
        again = (f"start a worker with --worker-id {worker.instance_id}" if worker.instance_id == worker.worker
                 else "start it again with the same state file")
        log.warning("slots %s of worker %s are still held by nobody live %.0fs after it was removed from group %s: "
                    "the source cluster keeps the dead static member (Tansu 0.6.0 does; Kafka drops it after the "
                    "session timeout); %s to take them back, or run the workers with --membership dynamic",
                    _slots(stuck), worker.worker, now - removed_at, self.group, again)

    # --- rule 2 ------------------------------------------------------------------------------------

    def _say_waiting(self, status: fleet.FleetStatus, now: float) -> None:
        if not self._idle():
            if self.waiting_since is not None and self._warned_at is not None:
                log.warning('worker %s now holds write slots of mirror "%s" (after %.0fs without)', self.worker,
                            self.mirror, now - self.waiting_since)
            self.waiting_since = self._warned_at = None
            return
        if self.waiting_since is None:
            self.waiting_since = now
        waited = now - self.waiting_since
        if waited < self.warn_after or (self._warned_at is not None and now - self._warned_at < REPEAT_S):
            return
        self._warned_at = now
        log.warning("%s", self.describe_wait(status, waited))

    def describe_wait(self, status: fleet.FleetStatus, waited: float) -> str:
        holders = [w for w in status.workers.values() if w.slots and w.worker != self.worker and w.state == "running"]
        held = "; ".join(f"{w.worker} holds slots {_slots(w.slots)} (last heard {self._heard(w)})" for w in holders)
        return (f'worker {self.worker} has held no write slot of mirror "{self.mirror}" for {waited:.0f}s: '
                f"{group_members(self.source, self.group)}; "
                + (f"the fleet status says {held}. " if held else "the fleet status shows no worker holding slots. ")
                + f"A worker gone without leaving is removed once silent for {self.remove_after:.0f}s; "
                "if every slot is held by live workers, this one has none to take (more workers than --slots)")

    def _heard(self, worker: fleet.WorkerStatus) -> str:
        return f"{_age(worker.seen_at):.0f}s ago"


def group_members(source: ClusterProfile, group: str) -> str:
    """The group as the broker describes it, in a few words (some brokers list no members)."""
    try:
        client = kafka.admin(source)
        desc = client.describe_consumer_groups([group], request_timeout=5)[group].result(10)
    except Exception as exc:  # noqa: BLE001 - a description is best effort
        return f"group {group} could not be described ({kafka.describe_error(exc)})"
    state = getattr(desc.state, "name", str(desc.state))
    members = desc.members or []
    if not members:
        return f"group {group} is {state} and the broker lists no members"
    shown = ", ".join(f"{m.group_instance_id or m.member_id} on {m.host}" for m in members[:6])
    more = f" and {len(members) - 6} more" if len(members) > 6 else ""
    return f"group {group} is {state} with {len(members)} members: {shown}{more}"


def _age(seen_at: str) -> float:
    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(seen_at)).total_seconds()


def _slots(slots) -> str:
    return ",".join(map(str, slots)) or "none"
