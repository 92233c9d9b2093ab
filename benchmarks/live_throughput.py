"""The live worker next to its peers on one pre-filled topic, timed as a user waits. A benchmark,
not a test: run it by hand.

    python benchmarks/live_throughput.py [--rounds 3] [--days 14] [--claims-per-day 1550]
        [--peers bare,faust,quix,bytewax,claimflow,claimflow-unaligned] [--catch-up-days 90]
        [--latency-seconds 60]

Three parts, each skipped with its own flag: the table (`--peers ""` skips it), the paced
latency (`--latency-seconds 0`) and the catch-up (`--catch-up-days 0`).

The table: one generated scenario (`claimflow simulate`, mixed: all four event types, ~55k
events at the defaults, ending yesterday) is produced into the four input topics of a fresh
embedded broker (`claimflow broker`), then each consumer is started as its own process and
consumes all of it, one after the other, each round under fresh consumer groups:

* bare: aiokafka + orjson doing a per-team one-minute window count (the baseline);
* faust: a naive Faust agent doing the same count;
* quix: Quix Streams, the count in `sdf.update`;
* bytewax: Bytewax `count_window` (tumbling one-minute event-time windows per team); its
  last record is taken as applied when it has been handed to the window operator;
* claimflow: `claimflow worker`, full detection, default settings but a 6 s session timeout
  (as the Faust agent); applied = `claimflow_events_total` + `claimflow_rejected_events_total`
  on its /metrics (read from the engines' state at scrape time) count every record;
* claimflow-unaligned: the same with event-time alignment off (`CLAIMFLOW_ALIGN_DRIFT=0`),
  to show what pausing partitions that run ahead costs a drain.

After the table, where the worker's ingest agent spent the run (`claimflow_ingest_seconds_total`
read once all was applied): waiting for Faust to hand it records, or forwarding them.

Quix Streams and Bytewax are installed into their own virtual environment under `--cache`
(their pins clash with faust-streaming's). For each consumer: from process start to all
applied (what a user waits for), start to first applied, the sustained rate from first to
last applied, the two as ratios to the bare loop's in the same run (higher is faster), and
the peak resident memory of its process tree (sampled every 50-500 ms). Medians over
`--rounds` rounds; a consumer that fails or times out is reported as such, never given a
number.

Then, for the claimflow worker alone:
* latency: on a fresh broker, with the worker up and idle (`--settle` s), records produced one
  at a time at a steady `--rate` events/s for `--latency-seconds`; the latency of record k is
  from its produce call returning to the moment the /metrics count (polled every 50 ms) first
  reaches k. p50 and p99.
* catch-up: a fresh broker holding `--catch-up-days` days at `--catch-up-claims` claims a day
  (mixed; normal under 14 days), time from start to all applied, to the first applied (the
  first effect), and the peak resident memory of the worker's process tree (the worker's
  peak also covers the 15 s after all applied: the snapshot it writes once caught up).
Prints markdown tables; progress lines on long steps. Logs of every process in the folder it
names first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from claimflow.config import load_config
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker, free_port
from claimflow.tools.produce import ensure_topics, make_producer, produce, route
from claimflow.tools.simulate import Simulator, write_scenario

TOPICS = Topics()
PEER_PINS = ["quixstreams==3.28.1", "bytewax==0.21.1", "orjson"]

# Every consumer script reads its settings from BENCH_* variables and writes one JSON object
# {"n": ..., "first": wall time of the first applied record, "last": of the last} to
# BENCH_RESULT once it has applied BENCH_TOTAL records.
COMMON = """
import json, os, time
BOOTSTRAP = os.environ["BENCH_BOOTSTRAP"]
TOTAL = int(os.environ["BENCH_TOTAL"])
TOPICS = os.environ["BENCH_TOPICS"].split(",")
GROUP = os.environ["BENCH_GROUP"]
TIME_FIELD = {"hub_dispatched": "dispatched_at", "claim_arrived": "arrived_at",
              "claim_completed": "completed_at", "survey_response": "responded_at"}
state = {"n": 0, "first": 0.0}
counts = {}

def count(d):
    # per team (or the hub, for events without one) and UTC minute of event time
    key = (d.get("team") or d.get("hub_id") or "-", d[TIME_FIELD[d["type"]]][:16])
    counts[key] = counts.get(key, 0) + 1
    if not state["n"]:
        state["first"] = time.time()
    state["n"] += 1
    if state["n"] == TOTAL:
        done()

def done():
    with open(os.environ["BENCH_RESULT"] + ".tmp", "w") as fh:
        json.dump({"n": state["n"], "first": state["first"], "last": time.time()}, fh)
    os.replace(os.environ["BENCH_RESULT"] + ".tmp", os.environ["BENCH_RESULT"])
"""

BARE = (
    COMMON
    + """
import asyncio, orjson
from aiokafka import AIOKafkaConsumer

async def main():
    consumer = AIOKafkaConsumer(*TOPICS, bootstrap_servers=BOOTSTRAP, group_id=GROUP,
                                auto_offset_reset="earliest", enable_auto_commit=True,
                                session_timeout_ms=6000, heartbeat_interval_ms=1000)
    await consumer.start()
    try:
        while state["n"] < TOTAL:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    count(orjson.loads(record.value))
    finally:
        await consumer.stop()

asyncio.run(main())
"""
)

FAUST = (
    COMMON
    + """
import sys, faust, orjson
app = faust.App(GROUP, broker="kafka://" + BOOTSTRAP, store="memory://", web_enabled=False,
                broker_session_timeout=6, broker_heartbeat_interval=1,
                consumer_auto_offset_reset="earliest", autodiscover=False)
topic = app.topic(*TOPICS, key_serializer="raw", value_serializer="raw")

@app.agent(topic)
async def agent(stream):
    async for value in stream:
        count(orjson.loads(value))

sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
app.main()
"""
)

QUIX = (
    COMMON
    + """
from quixstreams import Application
from quixstreams.models.topics import TopicConfig
from quixstreams.models.topics.manager import TopicManager

# The embedded broker does not report retention.ms, which Quix reads from the input topics
# whenever it derives an internal topic's config: give it the default (-1, unlimited).
_derive = TopicManager.derive_topic_config.__func__
def _tolerant(cls, topics):
    for t in topics:
        if t.broker_config is not None:
            t.broker_config.extra_config.setdefault("retention.ms", "-1")
    return _derive(cls, topics)
TopicManager.derive_topic_config = classmethod(_tolerant)
# State in the run's folder, not the working directory; the same 6 s session timeout as the
# Faust agent and the claimflow worker.
app = Application(broker_address=BOOTSTRAP, consumer_group=GROUP, auto_offset_reset="earliest",
                  auto_create_topics=False, use_changelog_topics=False,
                  state_dir=os.environ["BENCH_STATE"],
                  consumer_extra_config={"session.timeout.ms": 6000,
                                         "heartbeat.interval.ms": 1000})
config = TopicConfig(num_partitions=4, replication_factor=1, extra_config={})

def update(value):
    count(value)
    if state["n"] >= TOTAL:
        app.stop()

for name in TOPICS:
    sdf = app.dataframe(app.topic(name, value_deserializer="json", config=config))
    sdf.update(update)
app.run()
"""
)

BYTEWAX = (
    COMMON
    + """
from datetime import datetime, timedelta, timezone
import orjson
import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, count_window

def parse(message):
    d = orjson.loads(message.value)
    if not state["first"]:
        state["first"] = time.time()
    state["n"] += 1
    if state["n"] == TOTAL:
        done()  # all handed to the window operator: it applies them in this same step
    return d

def at(d):
    return datetime.fromisoformat(d[TIME_FIELD[d["type"]]])

flow = Dataflow("bench-bytewax")
raw = op.input("in", flow, KafkaSource([BOOTSTRAP], TOPICS, tail=False,
                                      add_config={"group.id": GROUP}))
events = op.map("parse", raw, parse)
clock = EventClock(at, wait_for_system_duration=timedelta(seconds=0))
windower = TumblingWindower(length=timedelta(minutes=1),
                            align_to=datetime(2026, 1, 1, tzinfo=timezone.utc))
counted = count_window("count", events, clock, windower,
                       lambda d: d.get("team") or d.get("hub_id") or "-")
op.inspect("out", counted.down, lambda step, item: None)
"""
)


def rss_tree_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * 4096
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total / 1e6


class Run:
    """One consumer process timed from its start: the figures for one row of the table."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.total_s = self.first_s = self.rate = float("nan")
        self.peak_mb = 0.0
        self.error = ""
        # claimflow only, read from /metrics once all was applied: the ingest agent's seconds
        # waiting for Faust to hand it records and forwarding them, and the pauses.
        self.ingest: dict[str, float] = {}

    def finish(self, started: float, n: int, first: float, last: float) -> None:
        self.total_s = last - started
        self.first_s = first - started
        self.rate = n / (last - first) if last > first else float("nan")


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_script(
    name: str, python: str, script: str, bootstrap: str, total: int, folder: Path, timeout: float
) -> Run:
    run = Run(name)
    _LAST_PRINT.pop(name, None)  # progress lines start anew each round
    path = folder / f"bench_{name}.py"
    path.write_text(script)
    result = folder / f"{name}.result"
    result.unlink(missing_ok=True)
    env = {
        **os.environ,
        "BENCH_BOOTSTRAP": bootstrap,
        "BENCH_TOTAL": str(total),
        "BENCH_TOPICS": ",".join(TOPICS.inputs()),
        "BENCH_GROUP": f"bench-{name}-{time.time_ns()}",
        "BENCH_RESULT": str(result),
        "BENCH_STATE": str(folder / f"{name}-state"),
    }
    command = [python, str(path)]
    if name == "bytewax":
        command = [python, "-m", "bytewax.run", f"bench_{name}:flow"]
        env["PYTHONPATH"] = str(folder)
    started = time.time()
    process = _spawn(command, env, folder / f"{name}.log")
    try:
        while not result.exists():
            run.peak_mb = max(run.peak_mb, rss_tree_mb(process.pid))
            if process.poll() is not None:
                run.error = f"exited {process.returncode}; see {folder / (name + '.log')}"
                return run
            if time.time() - started > timeout:
                run.error = f"timed out after {timeout:.0f}s"
                return run
            _every(
                name,
                15,
                f"  {name}: running for {time.time() - started:.0f}s, "
                f"RSS {run.peak_mb:.0f} MB peak",
            )
            time.sleep(0.05)
        figures = json.loads(result.read_text())
        run.finish(started, figures["n"], figures["first"], figures["last"])
        return run
    finally:
        _stop(process)


def _metrics_text(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text


def _summed(text: str, *prefixes: str) -> float:
    """The sum of the samples in `text` whose line starts with one of `prefixes`."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefixes)
    )


def _metrics_sum(url: str, *prefixes: str) -> float:
    """The sum of the `/metrics` samples whose line starts with one of `prefixes`."""
    return _summed(_metrics_text(url), *prefixes)


def _metrics_count(url: str) -> float:
    return _metrics_sum(url, "claimflow_events_total", "claimflow_rejected_events_total")


def _ingest_split(url: str) -> dict[str, float]:
    """The ingest agent's seconds waiting for records and forwarding them, and the times an
    input partition was paused for alignment, from one read of the worker's `/metrics`
    (empty if it does not answer)."""
    try:
        text = _metrics_text(url)
    except OSError:
        return {}
    return {
        stage: _summed(text, f'claimflow_ingest_seconds_total{{stage="{stage}"}}')
        for stage in ("waiting", "forwarding")
    } | {"pauses": _summed(text, "claimflow_input_pauses_total")}


def _late(url: str) -> float:
    """Events the engine judged late (`/metrics`), or -1 if the worker does not answer."""
    try:
        return _metrics_sum(url, 'claimflow_rejected_events_total{reason="late"}')
    except OSError:
        return -1.0


class Worker:
    """`claimflow worker` in its own process, its applied count read from /metrics."""

    def __init__(
        self, bootstrap: str, folder: Path, label: str, extra: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "CLAIMFLOW_BOOTSTRAP": bootstrap,
            "CLAIMFLOW_WEB_PORT": str(self.port),
            "CLAIMFLOW_APP_ID": f"bench-{label}-{time.time_ns()}",
            "CLAIMFLOW_SESSION_TIMEOUT": "6",
            "CLAIMFLOW_DATA_DIR": str(folder / f"{label}-data"),
            **(extra or {}),
        }
        # Its own sequenced, alerts and dead-letter topics: a later round must not read the
        # sequenced log an earlier round's worker wrote on the same broker.
        suffix = f"{label}-{time.time_ns()}"
        for name in ("SEQUENCED", "ALERTS", "DEADLETTER"):
            env[f"CLAIMFLOW_TOPIC_{name}"] = f"bench.{name.lower()}.{suffix}"
        self.log = folder / f"{label}.log"
        self.scrapes, self.scrape_s = 0, 0.0  # what our polling of /metrics costs
        self.last, self.unanswered = 0.0, 0
        self.started = time.time()
        self.process = _spawn([sys.executable, "-m", "claimflow.cli", "worker"], env, self.log)

    def applied(self) -> float:
        """The count on /metrics; the last one read when it does not answer within 5 s (a
        worker busy draining a backlog may not), noted in `unanswered`."""
        began = time.perf_counter()
        try:
            self.last = _metrics_count(self.url)
        except OSError:
            self.unanswered += 1
        finally:
            self.scrapes += 1
            self.scrape_s += time.perf_counter() - began
        return self.last

    def stop(self) -> None:
        _stop(self.process)


def run_worker(
    bootstrap: str,
    total: int,
    folder: Path,
    timeout: float,
    label: str,
    rss_after: float = 15.0,
    extra: dict[str, str] | None = None,
) -> Run:
    """Start to all applied; the peak RSS also covers `rss_after` seconds after that, so the
    detector-state snapshot the worker writes once caught up (a transient of its own) counts.
    `extra`: settings for the worker (environment variables)."""
    run = Run("claimflow")
    worker = Worker(bootstrap, folder, label, extra)
    first = 0.0
    next_sample = 0.0
    try:
        while True:
            now = time.time()
            if now >= next_sample:
                run.peak_mb = max(run.peak_mb, rss_tree_mb(worker.process.pid))
                next_sample = now + 0.5
            n = worker.applied()
            now = time.time()
            if n and not first:
                first = now
            if n >= total:
                run.finish(worker.started, int(n), first, now)
                run.ingest = _ingest_split(worker.url)
                until = now + rss_after
                while time.time() < until and worker.process.poll() is None:
                    run.peak_mb = max(run.peak_mb, rss_tree_mb(worker.process.pid))
                    time.sleep(0.5)
                return run
            if worker.process.poll() is not None:
                run.error = f"worker exited {worker.process.returncode}; see {worker.log}"
                return run
            if now - worker.started > timeout:
                run.error = (
                    f"{n:,.0f} of {total:,} applied after {timeout:.0f}s; /metrics did not "
                    f"answer within 5 s {worker.unanswered} of {worker.scrapes} times"
                )
                if first:
                    run.first_s = first - worker.started
                return run
            _every(
                label,
                15,
                f"  {label}: {n:,.0f} of {total:,} applied after "
                f"{now - worker.started:.0f}s, RSS {run.peak_mb:.0f} MB peak, "
                f"/metrics unanswered {worker.unanswered} of {worker.scrapes} times",
            )
            time.sleep(0.1)
    finally:
        worker.stop()


def peer_python(cache: Path) -> str | None:
    """The Python of the peers' own virtual environment, made on first use."""
    venv = cache / "peers-venv"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists() or marker.read_text() != " ".join(PEER_PINS):
        print(f"installing {', '.join(PEER_PINS)} into {venv}...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PEER_PINS],
            capture_output=True,
            check=False,
        )
        if done.returncode:
            print(done.stderr.decode()[-2000:], file=sys.stderr)
            return None
        marker.write_text(" ".join(PEER_PINS))
    return str(python)


def fill(bootstrap: str, lines: list[bytes]) -> int:
    """Produce every line onto its input topic (4 partitions each); returns how many the
    broker acknowledged (what every consumer must apply: lines that cannot be routed are not
    sent), and stops the benchmark if it refused any."""
    ensure_topics(bootstrap, TOPICS.inputs(), 4)
    producer = make_producer(bootstrap)
    try:
        summary = produce(
            lines,
            producer,
            TOPICS,
            on_progress=lambda s: _every(
                "fill", 10, f"  produced {sum(s.sent.values()):,} of {len(lines):,}"
            ),
        )
        producer.flush()
    finally:
        producer.close()
    if summary.failed:  # the consumers would wait for records the broker never took
        raise SystemExit(f"filling the broker failed: {summary.render()}")
    return sum(summary.sent.values())


_LAST_PRINT: dict[str, float] = {}


def _every(what: str, seconds: float, message: str) -> None:
    """Print a progress line for `what` at most every `seconds` seconds."""
    now = time.time()
    if what not in _LAST_PRINT:  # the first call starts the clock
        _LAST_PRINT[what] = now
    elif now - _LAST_PRINT[what] >= seconds:
        _LAST_PRINT[what] = now
        print(message, flush=True)


def scenario(folder: Path, name: str, days: int, claims: int, kind: str = "mixed") -> list[bytes]:
    """`claimflow simulate` output, ending yesterday: all of it in the past, none refused as
    dated in the future, as a backlog would be."""
    path = folder / f"{name}.jsonl"
    start = datetime.now(UTC).date() - timedelta(days=days + 1)
    sim = Simulator(load_config(), kind, days, start, 1, claims)
    began = time.time()
    write_scenario(sim, path, progress=lambda n: _every("simulate", 10, f"  simulated {n:,}"))
    lines = path.read_bytes().splitlines()
    print(
        f"{name}: {len(lines):,} events, {days} days from {start}, simulated in "
        f"{time.time() - began:.0f}s",
        flush=True,
    )
    return lines


def _median(values: list[float]) -> float:
    good = [v for v in values if not math.isnan(v)]
    return statistics.median(good) if good else float("nan")


# The claimflow worker's rows: its settings beside the defaults. Alignment off shows what
# pausing partitions that run ahead in event time costs a drain (and the merge holds more).
WORKERS: dict[str, dict[str, str]] = {
    "claimflow": {},
    "claimflow-unaligned": {"CLAIMFLOW_ALIGN_DRIFT": "0"},
}


def _ingest_table(peers: list[str], runs: dict[str, list[Run]], labels: dict[str, str]) -> None:
    """Where the worker's ingest agent spent the drain (medians over the rounds)."""
    rows = [p for p in peers if p in WORKERS and any(r.ingest for r in runs[p])]
    if not rows:
        return
    print(
        "\nThe claimflow worker's ingest agent over the whole run (`claimflow_ingest_seconds_total`"
        ", medians): waiting for Faust to hand it input records, and forwarding them (judging, "
        "bundling, sending to the sequenced topic, the broker's acknowledgement):\n"
    )
    print("| worker | waiting for records | forwarding | input partition pauses |")
    print("|---|---|---|---|")
    for peer in rows:
        got = [r.ingest for r in runs[peer] if r.ingest]
        waiting = _median([g["waiting"] for g in got])
        forwarding = _median([g["forwarding"] for g in got])
        pauses = _median([g["pauses"] for g in got])
        print(f"| {labels[peer]} | {waiting:.1f} s | {forwarding:.1f} s | {pauses:.0f} |")


def main_table(args: argparse.Namespace, folder: Path) -> None:
    lines = scenario(folder, "main", args.days, args.claims_per_day)
    peers = args.peers.split(",")
    python = sys.executable
    extra = peer_python(Path(args.cache)) if {"quix", "bytewax"} & set(peers) else None
    scripts: dict[str, tuple[str | None, str]] = {
        "bare": (python, BARE),
        "faust": (python, FAUST),
        "quix": (extra, QUIX),
        "bytewax": (extra, BYTEWAX),
    }
    labels = {
        "bare": "bare aiokafka + orjson, per-team 1-min count (baseline)",
        "faust": "naive Faust agent, same count",
        "quix": "Quix Streams, count in `sdf.update`",
        "bytewax": "Bytewax `count_window`",
        "claimflow": "**claimflow worker** (full detection)",
        "claimflow-unaligned": "claimflow worker, event-time alignment off "
        "(`CLAIMFLOW_ALIGN_DRIFT=0`)",
    }
    runs: dict[str, list[Run]] = {p: [] for p in peers}
    with EmbeddedBroker(log=folder / "broker.log") as broker:
        started = time.time()
        total = fill(broker.bootstrap, lines)
        print(f"{total:,} events produced in {time.time() - started:.1f}s", flush=True)
        for round_ in range(args.rounds):
            for peer in peers:
                if peer in WORKERS:
                    run = run_worker(
                        broker.bootstrap,
                        total,
                        folder,
                        args.timeout,
                        f"{peer}-{round_}",
                        extra=WORKERS[peer],
                    )
                else:
                    interpreter, script = scripts[peer]
                    if interpreter is None:
                        run = Run(peer)
                        run.error = "peers' environment could not be installed"
                    else:
                        run = run_script(
                            peer, interpreter, script, broker.bootstrap, total, folder, args.timeout
                        )
                runs[peer].append(run)
                print(
                    f"round {round_ + 1} {peer}: all applied after {run.total_s:.1f}s, "
                    f"first after {run.first_s:.1f}s, {run.rate:,.0f} events/s, "
                    f"peak RSS {run.peak_mb:.0f} MB {run.error}",
                    flush=True,
                )
    base_rate = _median([r.rate for r in runs.get("bare", [])])
    base_total = _median([r.total_s for r in runs.get("bare", [])])
    print(
        f"\n{total:,} mixed contract events ({args.days} days at {args.claims_per_day:,} claims a "
        f"day), 4 partitions per topic, embedded broker, median of {args.rounds} round(s); "
        "ratios are to the bare loop's median in the same run (higher is faster):\n"
    )
    print(
        "| consumer | start to all applied | ratio | start to first applied | "
        "sustained rate (first to last) | ratio | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|")
    for peer in peers:
        rs = runs[peer]
        good = [r for r in rs if not r.error]
        rate = _median([r.rate for r in good])
        total_s = _median([r.total_s for r in good])
        errors = "; ".join(sorted({r.error for r in rs if r.error}))
        if not good:
            print(f"| {labels[peer]} | did not finish: {errors} | | | | | |")
            continue
        print(
            f"| {labels[peer]} | {total_s:.1f} s | {base_total / total_s:.2f} | "
            f"{_median([r.first_s for r in good]):.1f} s | {rate:,.0f} events/s | "
            f"{rate / base_rate:.3f} | {max(r.peak_mb for r in good):.0f} MB |"
            + (f" ({len(rs) - len(good)} of {len(rs)} rounds failed: {errors})" if errors else "")
        )
    _ingest_table(peers, runs, labels)


def catch_up(args: argparse.Namespace, folder: Path) -> None:
    kind = "mixed" if args.catch_up_days >= 14 else "normal"  # mixed needs two weeks
    lines = scenario(folder, "backlog", args.catch_up_days, args.catch_up_claims, kind)
    with EmbeddedBroker(log=folder / "broker-backlog.log") as broker:
        started = time.time()
        total = fill(broker.bootstrap, lines)
        print(f"backlog: {total:,} events produced in {time.time() - started:.0f}s", flush=True)
        run = run_worker(broker.bootstrap, total, folder, args.catch_up_timeout, "catch-up")
    print(
        f"\nCatch-up of {args.catch_up_days} days at {args.catch_up_claims:,} claims a day "
        f"({total:,} events):\n"
    )
    print("| start to all applied | start to first applied | rate | worker peak RSS |")
    print("|---|---|---|---|")
    print(
        f"| {run.total_s:.0f} s | {run.first_s:.1f} s | {run.rate:,.0f} events/s | "
        f"{run.peak_mb:.0f} MB |" + (f" {run.error}" if run.error else "")
    )


def latency(args: argparse.Namespace, folder: Path) -> None:
    n = int(args.rate * args.latency_seconds)
    lines = scenario(folder, "paced", 3, 2000, "normal")[:n]
    routed: list[tuple[str, bytes | None, bytes]] = []
    for line in lines:
        where = route(line, TOPICS)
        if isinstance(where, str):
            continue
        routed.append((where[0], where[1], line))
    with EmbeddedBroker(log=folder / "broker-latency.log") as broker:
        ensure_topics(broker.bootstrap, TOPICS.inputs(), 4)
        producer = make_producer(broker.bootstrap)
        worker = Worker(broker.bootstrap, folder, "latency")
        late = -1.0
        try:
            deadline = time.time() + args.timeout
            while worker.applied() == 0 and not _metrics_up(worker):
                if time.time() > deadline or worker.process.poll() is not None:
                    print("latency: the worker did not come up", flush=True)
                    return
                time.sleep(0.2)
            time.sleep(args.settle)  # let it join its group and go idle
            produced: list[float] = []
            seen_at: list[float] = []
            start = time.time()
            for k, (topic, key, value) in enumerate(routed):
                wait = start + k / args.rate - time.time()
                if wait > 0:
                    _poll_until(worker, seen_at, wait)
                producer.send(topic, key=key, value=value).get(timeout=10)
                produced.append(time.time())
            deadline = time.time() + 60
            while len(seen_at) < len(produced) and time.time() < deadline:
                _poll_until(worker, seen_at, 0.05)
            late = _late(worker.url)  # released too early by the merge, or sent out of order
        finally:
            worker.stop()
            producer.close()
    got = min(len(seen_at), len(produced))
    delays = sorted(seen_at[k] - produced[k] for k in range(got))
    print(
        f"\nEnd-to-end latency at {args.rate:g} events/s for {args.latency_seconds:g}s "
        f"(record produced -> counted in /metrics, polled every 50 ms):\n"
    )
    print("| records | seen | p50 | p99 | max | judged late | mean /metrics scrape |")
    print("|---|---|---|---|---|---|---|")
    scrape = f"{1000 * worker.scrape_s / max(1, worker.scrapes):.0f} ms"
    if delays:
        p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
        print(
            f"| {len(produced):,} | {got:,} | {statistics.median(delays):.2f} s | "
            f"{p99:.2f} s | {delays[-1]:.2f} s | {late:.0f} | {scrape} |"
        )
    else:
        print(f"| {len(produced):,} | 0 | - | - | - | {late:.0f} | {scrape} |")


def _metrics_up(worker: Worker) -> bool:
    try:
        _metrics_count(worker.url)
        return True
    except OSError:
        return False


def _poll_until(worker: Worker, seen_at: list[float], seconds: float) -> None:
    """Poll /metrics every 50 ms for `seconds`, noting when each count is first reached."""
    until = time.time() + seconds
    while True:
        count = int(worker.applied())
        now = time.time()
        while len(seen_at) < count:
            seen_at.append(now)
        left = until - time.time()
        if left <= 0:
            return
        time.sleep(min(0.05, left))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--claims-per-day", type=int, default=1550)
    parser.add_argument("--peers", default="bare,faust,quix,bytewax,claimflow,claimflow-unaligned")
    parser.add_argument("--timeout", type=float, default=600, help="per consumer run, seconds")
    parser.add_argument("--catch-up-days", type=int, default=90, help="0 to skip")
    parser.add_argument("--catch-up-claims", type=int, default=2000)
    parser.add_argument("--catch-up-timeout", type=float, default=900)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--latency-seconds", type=float, default=60, help="0 to skip")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument(
        "--cache",
        default=os.path.join(os.path.expanduser("~"), ".cache", "claimflow-bench"),
        help="where the peers' virtual environment lives",
    )
    args = parser.parse_args()
    # `kill PID` unwinds like Ctrl-C: every consumer, worker and broker started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(tempfile.mkdtemp(prefix="claimflow-live-bench-"))
    print(f"logs in {folder}", flush=True)
    steps: list[Callable[[argparse.Namespace, Path], None]] = []
    if args.peers:
        steps.append(main_table)
    if args.latency_seconds > 0:
        steps.append(latency)
    if args.catch_up_days > 0:
        steps.append(catch_up)
    for step in steps:
        try:
            step(args, folder)
        except Exception as exc:  # one broken step must not hide the others' figures
            print(f"{step.__name__} failed: {exc!r}", flush=True)


if __name__ == "__main__":
    main()
