"""A stateful Quix Streams application: counts events per key, run as a process in its own virtualenv.

    .venv/bin/python counter.py CONFIG

CONFIG (JSON): brokers, group, input, output, state_dir, guarantee ("exactly-once" or "at-least-once"),
session_timeout_ms.  For each input record (key = a word) the app adds one to the key's count in its
RocksDB state (store "default", changelog topic `changelog__<group>--<input>--default`) and writes
{"key": ..., "count": ...} to `output`.  SIGTERM stops it gracefully (Quix commits its checkpoint).
"""

from __future__ import annotations

import json
import logging
import sys

from quixstreams import Application


def main() -> None:
    cfg = json.loads(sys.argv[1])
    group_settings = {"session.timeout.ms": cfg["session_timeout_ms"], "heartbeat.interval.ms": 200}
    app = Application(
        broker_address=cfg["brokers"], consumer_group=cfg["group"], auto_offset_reset="earliest",
        processing_guarantee=cfg["guarantee"], state_dir=cfg["state_dir"], commit_interval=0.5,
        consumer_extra_config=group_settings, loglevel=logging.INFO,
    )
    source = app.topic(cfg["input"], value_deserializer="json", key_deserializer="string")
    output = app.topic(cfg["output"], value_serializer="json", key_serializer="string")

    def count(value: dict, key: str, timestamp: int, headers, state) -> dict:
        total = state.get("count", 0) + 1
        state.set("count", total)
        return {"key": key, "count": total, "n": value["n"]}

    sdf = app.dataframe(source)
    sdf = sdf.apply(count, stateful=True, metadata=True)
    sdf.to_topic(output)
    print(json.dumps({"changelog": f"changelog__{cfg['group']}--{cfg['input']}--default"}), flush=True)
    app.run()
    print(json.dumps({"stopped": True}), flush=True)


if __name__ == "__main__":
    main()
