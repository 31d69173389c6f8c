"""The demo's live workflow apps: real processes producing and consuming workflow events.

`producer` keeps producing events with unique ids (`<app>-<n>`) keyed by workflow, and
appends an id to its `produced` file only once the broker acknowledged it.  `consumer` reads
a topic in a consumer group, appends each event id to its `processed` file (flushed and
fsynced) and then commits the offsets synchronously, batch by batch.  Both watch the control
directory (see `control.py`): told to move, a producer flushes and switches cluster; a
consumer commits, leaves its group, and on the new cluster resumes from the group's
committed offsets (which `migrate offsets sync` translated).  So the files prove, after the
fact, whether any event was lost or processed twice.

Run as `python -m migrate.demo.apps producer|consumer ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer

from migrate.demo import control

SESSION_TIMEOUTS_MS = (2000, 6000)


class _Stop:
    def __init__(self) -> None:
        self.flag = False
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)

    def set(self, *_args) -> None:
        self.flag = True


def _bootstrap(args, cluster: str) -> str:
    return args.source if cluster == "source" else args.target


def run_producer(args) -> int:
    stop = _Stop()
    out = open(args.out, "a", buffering=1)
    produced = sum(1 for _ in open(args.out)) if Path(args.out).exists() else 0
    sent = produced
    here = None
    client = None
    seq_done = 0

    def delivered(err, msg) -> None:
        nonlocal produced
        if err is None:
            out.write(json.loads(msg.value())["event_id"] + "\n")
            produced += 1
        else:
            print(f"delivery failed: {err}", file=sys.stderr)

    interval = 1.0 / args.rate
    next_at = time.monotonic()
    while not stop.flag:
        wish = control.read_wish(args.control, "producers")
        if wish["cluster"] != here or wish["seq"] != seq_done:
            if client is not None:
                left = client.flush(30)
                if left:
                    print(f"{left} events not acknowledged by {here}", file=sys.stderr)
                client = None
            here = wish["cluster"]
            if here in ("source", "target"):
                client = Producer({"bootstrap.servers": _bootstrap(args, here), "linger.ms": 5,
                                   "enable.idempotence": True, "client.id": args.name})
            seq_done = wish["seq"]
            control.report(args.control, args.name, "producers", here, seq_done, produced)
        if client is None:
            time.sleep(0.02)
            continue
        now = time.monotonic()
        if now >= next_at:
            sent += 1
            workflow = f"wf-{sent % 37}"
            event = {"event_id": f"{args.name}-{sent}", "workflow": workflow, "kind": "step.completed",
                     "produced_on": here, "at": time.time()}
            client.produce(args.topic, json.dumps(event).encode(), key=workflow.encode(), on_delivery=delivered)
            next_at += interval
            if next_at < now - 1:
                next_at = now
        client.poll(min(0.02, max(0.0, next_at - time.monotonic())))
        assert here is not None  # a client exists only for a cluster named by the wish
        control.report(args.control, args.name, "producers", here, seq_done, produced)
        if args.max_events and sent >= args.max_events:
            client.flush(30)
            break
    if client is not None:
        client.flush(30)
    control.report(args.control, args.name, "producers", "stopped", seq_done, produced)
    out.close()
    return 0


def run_consumer(args) -> int:
    stop = _Stop()
    out = open(args.out, "a")
    processed = sum(1 for _ in open(args.out)) if Path(args.out).exists() else 0
    here = None
    client = None
    seq_done = 0
    pending: list = []
    while not stop.flag:
        wish = control.read_wish(args.control, "consumers")
        if wish["cluster"] != here or wish["seq"] != seq_done:
            if client is not None:
                client.close()  # commits were synchronous per batch; close leaves the group
                client = None
            here = wish["cluster"]
            if here in ("source", "target"):
                client, pending = _join(args, here, stop)
            seq_done = wish["seq"]
            control.report(args.control, args.name, "consumers", here, seq_done, processed)
        if client is None:
            time.sleep(0.02)
            continue
        messages = pending + client.consume(500, timeout=0.1)
        pending = []
        batch = []
        for message in messages:
            err = message.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    print(f"consume error: {err}", file=sys.stderr)
                continue
            batch.append(json.loads(message.value())["event_id"])
        if batch:
            out.write("".join(f"{event_id}\n" for event_id in batch))
            out.flush()
            os.fsync(out.fileno())
            client.commit(asynchronous=False)
            processed += len(batch)
        assert here is not None  # a client exists only for a cluster named by the wish
        control.report(args.control, args.name, "consumers", here, seq_done, processed)
    if client is not None:
        client.close()
    control.report(args.control, args.name, "consumers", "stopped", seq_done, processed)
    out.close()
    return 0


def _join(args, here: str, stop: _Stop) -> tuple[Consumer, list]:
    """Subscribe and join the group before reporting the move done (the downtime includes it).

    A short session timeout makes joins fast on platforms that take session.timeout/2 to
    answer a JoinGroup; brokers with Kafka's minimum (6 s) refuse it, so fall back.
    """
    for session_ms in SESSION_TIMEOUTS_MS:
        client = Consumer({"bootstrap.servers": _bootstrap(args, here), "group.id": args.group,
                           "enable.auto.commit": False, "auto.offset.reset": "earliest",
                           "isolation.level": "read_committed", "client.id": args.name,
                           "session.timeout.ms": session_ms, "heartbeat.interval.ms": min(500, session_ms // 10)})
        client.subscribe([args.topic])
        got, refused = _wait_assignment(client, stop)
        if not refused:
            return client, got
        client.close()
    raise SystemExit(f"{args.group}: every session timeout was refused by {here}")


def _wait_assignment(client: Consumer, stop: _Stop, timeout: float = 60.0) -> tuple[list, bool]:
    """Messages that arrive while joining (to process like any others), and whether the join was refused."""
    deadline = time.monotonic() + timeout
    got: list = []
    while not stop.flag and time.monotonic() < deadline:
        for message in client.consume(500, timeout=0.05):
            err = message.error()
            if err is not None and err.code() == KafkaError.INVALID_SESSION_TIMEOUT:
                return got, True
            got.append(message)
        if client.assignment():
            return got, False
    return got, False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.demo.apps")
    parser.add_argument("role", choices=["producer", "consumer"])
    parser.add_argument("--name", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--source", required=True, help="source bootstrap")
    parser.add_argument("--target", required=True, help="target bootstrap")
    parser.add_argument("--control", required=True, type=Path)
    parser.add_argument("--out", required=True, help="file of produced or processed event ids")
    parser.add_argument("--group")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second (producer)")
    parser.add_argument("--max-events", type=int, default=0)
    args = parser.parse_args(argv)
    if args.role == "producer":
        return run_producer(args)
    if not args.group:
        parser.error("consumer needs --group")
    return run_consumer(args)


if __name__ == "__main__":
    sys.exit(main())
