"""The slots-group member: the one source client that holds this worker's place in the slots group.

How it is named, used and how it leaves.  Rules, measured on noida-db 0.2.3 and Tansu 0.6.0 (Kafka
does what each rule relies on):
1. Static membership by default.  group.instance.id is `--worker-id`, or else derived from this
   machine, the state file's absolute path and the mirror name (`derived_instance_id`), so a
   worker restarted on the same machine and state reclaims its slots at once (noida-db: 0.07 s)
   instead of waiting for the broker to drop its old self, which noida-db never does for a
   member that did not leave.  `--membership dynamic` sends no group.instance.id: for a source
   that never drops a dead static member and cannot be made to (Tansu 0.6.0: removing it got
   UNKNOWN_MEMBER_ID, its member id having changed in the rebalance after the kill; a member that
   took its instance id and left got NoError, and the slots stayed with the dead one past 100 s),
   where a dead dynamic member is dropped after its session timeout.
2. Two live workers never share a derived id: a worker takes a lock beside the state file for its
   mirror (`claim`), and a second worker on the same state file and mirror is refused with one
   line.  (Tansu does not fence a duplicate group.instance.id: both members would hold the slots.)
3. The client is used under one lock, so a close from the stop watchdog's thread never runs
   inside the loop's poll (a closed confluent-kafka client must not be used again).
4. Every stop leaves the group: librdkafka sends no LeaveGroup for a static member, and neither
   local broker drops a static member that stopped for good (90 s past a 10 s session), so after
   the client is closed the member is removed explicitly (migrate.kafka.group_members).
5. Before a clean leave, the member serves the group for two heartbeats, and on while a rebalance
   is under way (bounded by `settle_limit`).  On Tansu 0.6.0 a group leader that leaves while a
   rebalance started by another member's join is under way leaves a group nobody is ever assigned
   in (DescribeGroups: UNKNOWN): the fleet stall.  Minimal reproduction with plain confluent-kafka
   members, tests/faults/repro_tansu_leader_leave.py: the leader leaving 0.5-3 s after a join
   stalled the group past 90 s in every run; a follower leaving, or the leader leaving after it
   served the group like this, had the others assigned in 11-12 s.  A `--until-caught-up` worker
   that never saw another (it always held every slot, and the fleet status showed no other live
   worker) skips the two heartbeats: they would add seconds to every batch run.
6. An abandoned stop still leaves where the source answers: the stop watchdog calls
   `leave_within` shortly before the grace ends; the slots are dropped without touching the
   target (it may be what froze) and the member closed and removed, in a thread bounded by what
   is left of the grace.
7. A member fenced (FENCED_INSTANCE_ID) although its id is derived, so no other live worker has it
   (rule 2), rejoins with a new client instead of stopping the run: noida-db fences a static
   member's old member id after the broker itself restarted, with nobody else holding the id
   (measured).  Its slots are dropped first (open transactions abort; the next holder, maybe this
   worker, reconciles).  After MAX_REJOINS in one run something else fences it: the run stops.
   With an explicit --worker-id a fence stops the run at once (another worker may have the id).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError

from migrate import kafka
from migrate.config import ClusterProfile
from migrate.errors import UsageError
from migrate.kafka.group_members import Removal, remove_member

log = logging.getLogger("migrate.mirror")

# The slots group's rebalance timeout (librdkafka sends max.poll.interval.ms as it).  Tansu waits
# up to it for a member that died during a rebalance, whatever its session timeout: with the
# 300 s default, a kill, a join and a leave within seconds left the survivors without a slot for
# over 200 s (then the wait was stopped); with 15 s or 30 s they had them 11 s after the kill
# (measured, plain confluent-kafka members, 12 partitions).  The loop serves the group far more
# often than this (between two slots while taking slots over); a member that does not is
# dropped and rejoins, and fencing keeps it harmless.
COORDINATION_REBALANCE_MS = 60_000


class WorkerRunning(UsageError):
    """Another worker of the same mirror runs from the same state file."""


def derived_instance_id(mirror: str, state_path: str | os.PathLike) -> str:
    """Rule 1: stable for one machine, state file and mirror; different for any other state file."""
    place = f"{socket.gethostname()}\0{Path(state_path).resolve()}\0{mirror}"
    return f"migrate-{mirror}-{hashlib.sha256(place.encode()).hexdigest()[:12]}"


class WorkerClaim:
    """Rule 2: at most one running worker per state file and mirror (an flock, gone with the process)."""

    def __init__(self, state_path: str | os.PathLike, mirror: str):
        self.state_path = Path(state_path)
        self.path = Path(f"{state_path}.mirror-{mirror}.lock")
        self._fd: int | None = None

    def take(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise WorkerRunning(f"a worker of this mirror already runs from state file {self.state_path} (pid {holder}); "
                                "give another worker its own --state, or its own --worker-id") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


class Membership:
    """The slots-group client, used only through these methods (rule 3)."""

    def __init__(self, source: ClusterProfile, group: str, instance_id: str, session_timeout_ms: int):
        self.source = source
        self.group = group
        self.instance_id = instance_id
        self.session_timeout_ms = session_timeout_ms
        self.client: Any = None  # a confluent-kafka Consumer from open(); None again once closed
        self.member_id = ""  # the broker's id for this member, known once it joined
        self.left: Removal | None = None
        self._lock = threading.RLock()

    def open(self, error_cb: Callable) -> None:
        """The member's client (it joins once subscribed: migrate.mirror.ownership)."""
        self.client = kafka.consumer(self.source, **{
            "group.id": self.group,
            **({"group.instance.id": self.instance_id} if self.instance_id else {}),  # "": dynamic (--membership)
            "auto.offset.reset": "latest",
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(100, self.session_timeout_ms // 10),
            "max.poll.interval.ms": max(COORDINATION_REBALANCE_MS, self.session_timeout_ms),
            # Eager, not cooperative-sticky: with Tansu as the coordinator a leave took 148 s to
            # hand the slots over under cooperative-sticky and 18 s under roundrobin (one fleet
            # test run each, same machine).
            "partition.assignment.strategy": "roundrobin",
            "error_cb": error_cb,
        })

    @staticmethod
    def fenced(error) -> bool:
        """A FENCED_INSTANCE_ID error (librdkafka reports it as fatal: the client is done)."""
        code = error.code() if hasattr(error, "code") else None
        return code == KafkaError.FENCED_INSTANCE_ID or "group.instance.id" in str(getattr(error, "str", lambda: "")())

    def replace(self, error_cb: Callable) -> None:
        """A fenced client is of no further use: close it (no LeaveGroup: its id is fenced) and open another."""
        with self._lock:
            old, self.client, self.member_id = self.client, None, ""
            if old is not None:
                try:
                    old.close()
                except Exception as exc:  # noqa: BLE001 - a fatal client may refuse even this
                    log.debug("closing the fenced slots-group member: %s", exc)
            self.open(error_cb)

    @property
    def settle_limit(self) -> float:
        """Rule 5's bound: long enough for a rebalance to finish, short beside the stop grace."""
        return min(20.0, 1.5 * self.session_timeout_ms / 1000 + 2)

    def subscribe(self, topic: str, **callbacks) -> None:
        with self._lock:
            if self.client is not None:
                self.client.subscribe([topic], **callbacks)

    def poll(self):
        """Serve the group (heartbeats, rebalance callbacks); None once closed."""
        with self._lock:
            if self.client is None:
                return None
            message = self.client.poll(0)
            if not self.member_id:
                self.member_id = self.client.memberid() or ""
            return message

    def note_member_id(self) -> None:
        """Called from the assign callback (inside poll, so under the lock already)."""
        with self._lock:
            if self.client is not None:
                self.member_id = self.client.memberid() or self.member_id

    def commit(self, offsets) -> None:
        with self._lock:
            if self.client is not None:
                self.client.commit(offsets=offsets, asynchronous=True)

    def settle(self, rebalancing: Callable[[], bool], alone: bool = False) -> float:
        """Rule 5: serve the group for two heartbeats (a rebalance another member's join started is
        learnt from a heartbeat answer; skipped by a worker that never saw another), then while it
        rebalances, at most settle_limit seconds in all; returns the time it served."""
        began = time.monotonic()
        learn = 0.0 if alone else 2 * max(100, self.session_timeout_ms // 10) / 1000
        while self.client is not None:
            elapsed = time.monotonic() - began
            if elapsed >= self.settle_limit or (elapsed >= learn and not rebalancing()):
                break
            self.poll()
            time.sleep(0.05)
        return time.monotonic() - began

    def leave(self, timeout: float = 10.0) -> Removal | None:
        """Rule 4: close the client (its revoke callback runs in here), then remove the member."""
        with self._lock:
            client, self.client = self.client, None
            if client is None:
                return self.left
            member_id = self.member_id or (client.memberid() or "")
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - leaving must go on
                log.debug("closing the slots-group member: %s", exc)
        if not member_id or not self.instance_id:  # never joined, or dynamic: the close sent LeaveGroup
            return None
        self.left = remove_member(self.source, self.group, member_id, self.instance_id, timeout)
        if self.left.removed or "UnknownMember" in self.left.detail:  # removed, or the broker had dropped it
            log.debug("left group %s as %s: %s", self.group, self.instance_id, self.left.detail)
        else:
            log.warning("could not leave group %s (%s): its slots move when the broker drops this member, or at once "
                        "when this worker is started again with the same state file", self.group, self.left.detail)
        return self.left

    def leave_within(self, budget: float, drop_slots: Callable[[], None]) -> None:
        """Rule 6 (from the stop watchdog): drop the slots, close and remove, for at most `budget` s."""
        drop_slots()
        thread = threading.Thread(target=self.leave, args=(max(1.0, budget),), name="leave-group", daemon=True)
        thread.start()
        thread.join(budget)
