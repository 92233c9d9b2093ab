"""Live pipeline throughput against the embedded broker. A benchmark, not a test.

    python benchmarks/live_throughput.py [--claims-per-day 2000] [--days 10]

Produces one generated scenario into the four input topics of a fresh embedded broker, then
lets three consumers read the same records, one after the other, and prints events per
second for each, measured from the first record handled to the last:

* bare aiokafka: one AIOKafkaConsumer reading every record, doing nothing with it (the
  transport's ceiling on this machine, measured in this run: the baseline);
* naive Faust: one Faust agent over the four topics that only counts records (what Faust
  itself costs);
* claimflow worker: the real `claimflow worker` process, until its /metrics show every event
  applied (validation, forwarding through the sequenced topic, merge, engine, detectors).

Ratios are to the bare aiokafka figure. Tansu gets one record per produce request (it
miscounts batched offsets), so forwarding costs a request per record: expect Apache Kafka
with batching to do better.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from claimflow.broker import EmbeddedBroker, free_port
from claimflow.config import load_config
from claimflow.produce import ensure_topics, make_producer, produce
from claimflow.simulate import Simulator, write_scenario
from claimflow.streams.topics import Topics

TOPICS = Topics()


async def _bare(bootstrap: str, total: int) -> float:
    consumer = AIOKafkaConsumer(
        *TOPICS.inputs(),
        bootstrap_servers=bootstrap,
        group_id="bench-bare",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, first = 0, 0.0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                if records and not first:
                    first = time.perf_counter()
                seen += len(records)
        return seen / (time.perf_counter() - first)
    finally:
        await consumer.stop()


NAIVE_FAUST = """
import os, sys, time, faust
bootstrap, total = os.environ["BENCH_BOOTSTRAP"], int(os.environ["BENCH_TOTAL"])
app = faust.App("bench-naive", broker="kafka://" + bootstrap, store="memory://",
                web_enabled=False, broker_session_timeout=6, broker_heartbeat_interval=1,
                consumer_auto_offset_reset="earliest", autodiscover=False)
topic = app.topic(*os.environ["BENCH_TOPICS"].split(","), key_serializer="raw",
                  value_serializer="raw")
state = {"n": 0, "first": 0.0}

@app.agent(topic)
async def count(stream):
    async for _ in stream:
        if not state["n"]:
            state["first"] = time.perf_counter()
        state["n"] += 1
        if state["n"] == total:
            rate = total / (time.perf_counter() - state["first"])
            with open(os.environ["BENCH_RESULT"], "w") as fh:
                fh.write(repr(rate))

app.main()
"""


def _naive_faust(bootstrap: str, total: int, folder: Path) -> float:
    script = folder / "naive_faust.py"
    script.write_text(NAIVE_FAUST)
    result = folder / "naive_faust.result"
    env = {
        **os.environ,
        "BENCH_BOOTSTRAP": bootstrap,
        "BENCH_TOTAL": str(total),
        "BENCH_TOPICS": ",".join(TOPICS.inputs()),
        "BENCH_RESULT": str(result),
    }
    log = (folder / "naive_faust.log").open("wb")
    command = [sys.executable, str(script), "worker", "-l", "warn", "--without-web"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 900
        while not result.exists() or not result.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"naive Faust run failed; see {folder / 'naive_faust.log'}")
            time.sleep(0.2)
        return float(result.read_text())
    finally:
        process.terminate()
        process.wait(30)


def _applied(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("claimflow_events_total", "claimflow_rejected_events_total"))
    )


def _claimflow(bootstrap: str, total: int, folder: Path) -> float:
    port = free_port()
    env = {
        **os.environ,
        "CLAIMFLOW_BOOTSTRAP": bootstrap,
        "CLAIMFLOW_WEB_PORT": str(port),
        "CLAIMFLOW_APP_ID": "bench-claimflow",
        "CLAIMFLOW_SESSION_TIMEOUT": "6",
        "CLAIMFLOW_IDLE_CLOCK_AFTER": "0",
    }
    log = (folder / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "claimflow.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        first = 0.0
        while True:
            try:
                n = _applied(url)
            except OSError:
                n = 0
            now = time.perf_counter()
            if n and not first:
                first = now
            if n >= total:
                return n / (now - first)
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claims-per-day", type=int, default=2000)
    parser.add_argument("--days", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="claimflow-live-bench-"))
    events = folder / "events.jsonl"
    sim = Simulator(
        load_config(), "hub-break", args.days, date(2026, 11, 2), 1, args.claims_per_day
    )
    total, _ = write_scenario(sim, events)
    with EmbeddedBroker(log=folder / "broker.log") as broker:
        ensure_topics(broker.bootstrap, TOPICS.inputs(), 4)
        producer = make_producer(broker.bootstrap)
        started = time.perf_counter()
        produce(events.read_bytes().splitlines(), producer, TOPICS)
        producer.flush()
        print(
            f"{total:,} events produced in {time.perf_counter() - started:.1f}s "
            "(one record per request)",
            flush=True,
        )
        bare = asyncio.run(_bare(broker.bootstrap, total))
        print(f"bare aiokafka consumer: {bare:,.0f} events/s (baseline)", flush=True)
        naive = _naive_faust(broker.bootstrap, total, folder)
        print(f"naive Faust agent:      {naive:,.0f} events/s ({naive / bare:.2f}x)", flush=True)
        live = _claimflow(broker.bootstrap, total, folder)
        print(f"claimflow worker:       {live:,.0f} events/s ({live / bare:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
