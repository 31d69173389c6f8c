"""Minimal reproduction of the fleet stall on Tansu 0.6.0 (not a test: run it by hand).

    python tests/faults/repro_tansu_leader_leave.py [--delay 1.0] [--leaver A] [--settle] [--platform tansu]

Three plain confluent-kafka members (A, B, C, started in that order, so A leads the group) share a
12-partition topic; then D joins and, `--delay` seconds later, one member leaves (a clean close, so
librdkafka sends LeaveGroup).  It prints how long until the remaining members hold every partition.

Measured on Tansu 0.6.0 (2026-12-06): the leader leaving 0.5-3 s after the join stalled the group
past 90 s in every run (DescribeGroups: UNKNOWN, nobody assigned); a follower leaving, or a join or a
kill alone, had the others assigned in 9-13 s.  With --settle the leaver first serves the group for
two heartbeats and on while it rebalances (what migrate.mirror.membership does): 11-12 s at every
delay tried (0.3-2 s).  noida-db does not stall.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

TOPIC, PARTITIONS = "t", 12


def member(bootstrap: str, name: str, settle: bool) -> None:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 600, "max.poll.interval.ms": 60000,
                         "partition.assignment.strategy": "roundrobin"})
    state = {"rebalancing": True, "stop": False}

    def said(parts) -> None:
        print(json.dumps({"who": name, "parts": parts}), flush=True)

    def on_assign(_consumer, partitions) -> None:
        state["rebalancing"] = False
        said(sorted(p.partition for p in partitions))

    def on_revoke(_consumer, _partitions) -> None:
        state["rebalancing"] = True
        said([])

    consumer.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke)
    signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))
    while not state["stop"]:
        consumer.poll(0.1)
    if settle:
        began = time.monotonic()
        while time.monotonic() - began < 1.2 or (state["rebalancing"] and time.monotonic() - began < 11):
            consumer.poll(0.05)
    consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--leaver", default="A", choices="ABC")
    parser.add_argument("--settle", action="store_true")
    parser.add_argument("--platform", default="tansu")
    parser.add_argument("--member", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.member:
        return member(args.member[0], args.member[1], args.member[2] == "settle")

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from confluent_kafka.admin import AdminClient, NewTopic

    from migrate.local import platforms

    plat = platforms.platform(args.platform)
    broker = platforms.start_broker(plat, "source", die_with_parent=True,
                                    data_dir=Path(__import__("tempfile").mkdtemp()) if plat.keeps_data else None)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        future.result()
    held: dict[str, list[int]] = {}
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str) -> None:
        proc = subprocess.Popen([sys.executable, __file__, "--member", broker.bootstrap, name,
                                 "settle" if args.settle else "plain"], stdout=subprocess.PIPE, text=True)
        procs[name] = proc

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                said = json.loads(line)
                held[said["who"]] = said["parts"]
        threading.Thread(target=read, daemon=True).start()

    def wait(live: list[str], limit: float) -> float | None:
        began = time.monotonic()
        while time.monotonic() - began < limit:
            if sorted(p for n in live for p in held.get(n, [])) == list(range(PARTITIONS)):
                return time.monotonic() - began
            time.sleep(0.1)
        return None

    try:
        for name in "ABC":
            start(name)
            time.sleep(1.5)
        assert wait(list("ABC"), 60) is not None, "the three members were never assigned"
        began = time.monotonic()
        start("D")
        time.sleep(args.delay)
        procs[args.leaver].send_signal(signal.SIGTERM)
        live = [n for n in "ABCD" if n != args.leaver]
        took = wait(live, 90)
        if took is None:
            group = admin.describe_consumer_groups(["g"])["g"].result()
            print(f"STALLED: {', '.join(live)} not assigned 90 s after the join (group state {group.state})")
        else:
            print(f"{', '.join(live)} held every partition {time.monotonic() - began:.1f}s after the join")
    finally:
        for proc in procs.values():
            proc.kill()
        platforms.stop_broker(broker.pid, broker.port)


if __name__ == "__main__":
    main()
