"""What serving metrics costs the mirror: the same backlog mirrored with metrics off and on, same run.

    python benchmarks/metrics.py [--records 500000] [--size 200] [--partitions 6] [--repeats 3]
                                 [--scrape-interval 0.5]

Fills one source topic, then mirrors it `--until-caught-up` into a fresh target topic per run,
alternating: metrics off (the engine holds the no-op hooks), and metrics on with a scraper
reading /metrics every `--scrape-interval` seconds for the whole run (far more often than a
Prometheus would).  Each run is a fresh child process.  Prints the copy rate of each run and
the ratio of the medians; read the ratio (both sides share the machine's conditions).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

from migrate import kafka
from migrate.local import platforms

_spec = importlib.util.spec_from_file_location("bench_mirror", Path(__file__).with_name("mirror.py"))
bench_mirror = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_mirror)
profile, fill = bench_mirror.profile, bench_mirror.fill


def child(job: dict) -> dict:
    from migrate.metrics.mirror import MirrorMetrics
    from migrate.metrics.server import new_registry, serve
    from migrate.mirror import Mirror, MirrorSpec
    from migrate.state import State

    spec = MirrorSpec(name=job["name"], source=profile("source", job["source"]),
                      target=profile("target", job["target"]), topics=(job["topic"],),
                      rename="m-" + job["name"] + ".{topic}", until_caught_up=True, compression="lz4")
    metrics = server = None
    scrapes = 0
    done = threading.Event()
    if job["metrics"]:
        registry = new_registry()
        metrics = MirrorMetrics(registry, spec.source)
        server = serve(registry, "127.0.0.1", 0)

        def scrape() -> None:
            nonlocal scrapes
            while not done.wait(job["interval"]):
                with urllib.request.urlopen(server.url, timeout=30) as response:
                    response.read()
                scrapes += 1

        threading.Thread(target=scrape, daemon=True).start()
    with State(job["state"]) as state:
        result = Mirror(spec, state, metrics=metrics).run()
    done.set()
    if server is not None:
        server.close()
    assert result.ok and result.caught_up
    reads = int(metrics.peeks.labels(spec.name, metrics.worker)._value.get()) if metrics else 0
    return {"records": result.records, "copy_seconds": result.copy_seconds, "scrapes": scrapes, "reads": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scrape-interval", type=float, default=0.5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    base = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    brokers = [platforms.start_broker(platforms.platform("noida"), "source", data_dir=base / "source",
                                      die_with_parent=True),
               platforms.start_broker(platforms.platform("tansu"), "target", die_with_parent=True)]
    source, target = (b.bootstrap for b in brokers)
    try:
        topic = "bench.metrics"
        kafka.create_topic(profile("source", source), topic, args.partitions, {"retention.ms": "-1"})
        fill(source, topic, args.records, args.size, args.partitions)
        rates: dict[bool, list[float]] = {False: [], True: []}
        for attempt in range(args.repeats):
            for on in (False, True):
                job = {"source": source, "target": target, "topic": topic, "metrics": on,
                       "name": f"{'on' if on else 'off'}{attempt}", "interval": args.scrape_interval,
                       "state": str(base / f"state-{attempt}-{on}.db")}
                ran = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True,
                                     text=True)
                if ran.returncode != 0:
                    raise SystemExit(ran.stderr[-3000:])
                out = json.loads(ran.stdout.strip().splitlines()[-1])
                rate = out["records"] / out["copy_seconds"]
                rates[on].append(rate)
                print(f"run {attempt} metrics {'on ' if on else 'off'}: {out['records']:,} records, "
                      f"{rate:,.0f} rec/s" + (f", {out['scrapes']} scrapes, {out['reads']} partition reads" if on else ""),
                      file=sys.stderr)
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        print(f"median rec/s: metrics off {off:,.0f}, on (scraped every {args.scrape_interval}s) {on:,.0f}: "
              f"ratio {on / off:.2f}")
    finally:
        for broker in brokers:
            platforms.stop_broker(broker.pid, broker.port)


if __name__ == "__main__":
    main()
