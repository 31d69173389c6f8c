"""The slots-group member: the one source client that holds this worker's place in the slots group.

How it is named, used and how it leaves.  Rules, measured on noida-db 0.2.3 and Tansu 0.6.0 (Kafka
does what each rule relies on):
1. Static membership by default.  group.instance.id is `--worker-id`, or else derived from this
   machine, the state file's absolute path and the mirror name (`derived_instance_id`), so a
   worker restarted on the same machine and state reclaims its slots at once (noida-db: 0.07 s)
   instead of waiting for the broker to drop its old self, which noida-db never does for a
   member that did not leave.
2. Two live workers never share a derived id: a worker takes a lock beside the state file for its
   mirror (`claim`), and a second worker on the same state file and mirror is refused with one
   line.  (Tansu does not fence a duplicate group.instance.id: both members would hold the slots.)
3. The client is used under one lock, so a close from the stop watchdog's thread never runs
   inside the loop's poll (a closed confluent-kafka client must not be used again).
4. Every stop leaves the group: librdkafka sends no LeaveGroup for a static member, and neither
   local broker drops a static member that stopped for good (90 s past a 10 s session), so after
   the client is closed the member is removed explicitly (migrate.kafka.group_members).
5. Before a clean leave, a member in the middle of a rebalance is served until the rebalance is
   over (bounded by `settle_limit`).  On Tansu a member that left while its group rebalanced left
   a generation the others could not complete: the fleet stall (docs/failure-behaviour.md).
6. An abandoned stop still leaves where the source answers: the stop watchdog calls
   `leave_within` shortly before the grace ends; the slots are dropped without touching the
   target (it may be what froze) and the member closed and removed, in a thread bounded by what
   is left of the grace.
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

from migrate.config import ClusterProfile
from migrate.errors import UsageError
from migrate.kafka.group_members import Removal, remove_member

log = logging.getLogger("migrate.mirror")


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

    def open(self, make_client: Callable[[dict], Any]) -> None:
        self.client = make_client({"group.instance.id": self.instance_id})

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

    def settle(self, rebalancing: Callable[[], bool], stopped: Callable[[], bool] = lambda: False) -> float:
        """Rule 5: serve the group while it rebalances, at most settle_limit seconds; the time waited."""
        began = time.monotonic()
        while rebalancing() and time.monotonic() - began < self.settle_limit and not stopped():
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
        if not member_id:  # never joined: nothing to remove
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
