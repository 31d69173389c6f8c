"""An asyncio application on aiokafka (an independent Kafka client, no librdkafka): run as a process.

    python app.py produce CONFIG   events with headers (a repeated key, a null value) and explicit CreateTimes
    python app.py consume CONFIG   a consumer-group app: process each event (append a JSON line to `out`),
                                   then commit the next offset, one event at a time; stops after `max` events,
                                   or on SIGTERM after the event in hand, and leaves the group
    python app.py dump CONFIG      every record of a topic, read by assignment up to the high watermark that
                                   Fetch responses carry (not ListOffsets, wrong on Tansu), as JSON lines

CONFIG is one JSON object; the app prints JSON events on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata


def say(**event) -> None:
    print(json.dumps(event), flush=True)


def describe(msg) -> dict:
    text = (lambda b: None if b is None else b.decode())
    return {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset, "timestamp": msg.timestamp,
            "key": text(msg.key), "value": text(msg.value), "headers": [[k, text(v)] for k, v in msg.headers]}


async def produce(cfg: dict) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg["brokers"], acks="all",
                                enable_idempotence=cfg.get("idempotent", True), linger_ms=5)
    await producer.start()
    try:
        pending = []
        for i in range(cfg["count"]):
            headers = [("event-id", str(i).encode()), ("agent", b"planner")]
            if i % 3 == 0:
                headers.append(("agent", b"critic"))
            if i % 5 == 0:
                headers.append(("nullable", None))
            pending.append(await producer.send(cfg["topic"], f"event-{i}".encode(), key=f"wf-{i % 7}".encode(),
                                               partition=i % cfg["partitions"], headers=headers,
                                               timestamp_ms=cfg["base_timestamp"] + i * 13))
        for future in pending:
            await future
    finally:
        await producer.stop()
    say(produced=cfg["count"])


async def consume(cfg: dict) -> None:
    consumer = AIOKafkaConsumer(cfg["topic"], bootstrap_servers=cfg["brokers"], group_id=cfg["group"],
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=cfg["session_timeout_ms"], heartbeat_interval_ms=200,
                                max_poll_interval_ms=60000, fetch_max_wait_ms=200)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    processed = 0
    await consumer.start()
    try:
        with open(cfg["out"], "a") as out:
            while not stop.is_set() and (cfg["max"] is None or processed < cfg["max"]):
                getone = asyncio.ensure_future(consumer.getone())
                stopped = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({getone, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if getone not in done:
                    getone.cancel()
                    break
                stopped.cancel()
                msg = getone.result()
                out.write(json.dumps(describe(msg)) + "\n")
                out.flush()
                os.fsync(out.fileno())
                tp = TopicPartition(msg.topic, msg.partition)
                await consumer.commit({tp: OffsetAndMetadata(msg.offset + 1, "")})
                processed += 1
    finally:
        await consumer.stop()
    say(stopped=True, processed=processed)


async def dump(cfg: dict) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg["brokers"], enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", isolation_level=cfg.get("isolation", "read_uncommitted"),
                                fetch_max_wait_ms=200)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(cfg["topic"])
        while not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(cfg["topic"])
        tps = [TopicPartition(cfg["topic"], p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records = []
        while True:
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            for msgs in batch.values():
                records.extend(describe(m) for m in msgs)
            if not batch:
                positions = [await consumer.position(tp) for tp in tps]
                ends = [consumer.highwater(tp) for tp in tps]
                if all(h is not None and pos >= h for pos, h in zip(positions, ends)):
                    break
    finally:
        await consumer.stop()
    with open(cfg["out"], "w") as out:
        out.writelines(json.dumps(r) + "\n" for r in records)
    say(dumped=len(records))


if __name__ == "__main__":
    command, config = sys.argv[1], json.loads(sys.argv[2])
    asyncio.run(asyncio.wait_for({"produce": produce, "consume": consume, "dump": dump}[command](config),
                                 config.get("timeout_s", 120)))
