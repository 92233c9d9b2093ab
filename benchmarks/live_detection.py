"""How long the live worker takes to raise a total hub-link break, next to a replay of the same
events. A benchmark, not a test: run it by hand (progress goes to stderr, the table to stdout).

    python benchmarks/live_detection.py [--runs 3] [--busy-per-hour 150] [--warmup 150]
        [--ports 47100-47199]

Each run starts a fresh embedded broker (`claimflow broker`, Tansu) and a `claimflow worker`
with its default live settings (only the session timeout is short, as in the tests), then
feeds it a stream stamped with the current time, at wall-clock pace:

* two routes, hub-1 -> center-1 (busy: `--busy-per-hour` claims) and hub-2 -> center-1
  (`--other-per-hour`); each claim is dispatched, arrives after a log-normal transit (median
  6 s, sigma 0.6: the 1-20 s the issue measured, as in the detection benchmark) with 0.1%
  stragglers (2 min to 4 h late), and is completed by its team about 20 minutes later;
* every event is sent up to 20 s after its event time (uniform), the transport jitter the
  simulator models (`claimflow.tools.simulate`): within one partition the events are that much out
  of order;
* history before the live part, stamped in the past and produced at once: the last six hours
  (so each route's transit curve holds hundreds of healthy samples) and the same hours one and
  two weeks back (so the seasonal baseline has its references);
* `--warmup` seconds after the start, hub-1 -> center-1 breaks totally: its dispatches go on,
  nothing arrives any more.

Measured, in wall time from the first undelivered dispatch (its event time, which is the wall
time it happened): (a) the HubLinkBreak alert read from the alerts topic, (b)
`claimflow_hub_link_up{hub_id="hub-1",center_id="center-1"} 0` on /metrics (polled every
0.2 s). The same events (in the order they were produced) then go through `claimflow.tools.replay`
in process: its alert's event time minus the first undelivered dispatch is the replay delay.
live - replay is what the live pipeline adds (the acceptance: at most 30 s). The live alert's
event time is printed too: it must equal the replay's (determinism). "other HubLinkBreak
alerts" counts the rest on the alerts topic: the made-up history leaves the days between its
blocks empty, so both routes raise (and resolve) a silence alert there, hours before the break.

To measure another version (e.g. the code before a change), put its tree first on
PYTHONPATH (with agents/, streams/ and dashboards/ linked under its claimflow/); the worker
is started from the log folder so that it imports the same claimflow as this script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

import claimflow
from claimflow.config import Config, load_config
from claimflow.engine import Alert
from claimflow.streams.topics import Topics
from claimflow.timeutil import DAY, HOUR, MINUTE, iso
from claimflow.tools.broker import EmbeddedBroker, port_taken
from claimflow.tools.produce import ensure_topics, make_producer, route
from claimflow.tools.replay import replay

TOPICS = Topics()
BUSY = ("hub-1", "center-1")
OTHER = ("hub-2", "center-1")
JITTER = 20.0  # seconds an event may be sent after its event time


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(order=True)
class Out:
    emit: float  # wall time to send it
    event_time: float
    line: bytes = field(compare=False)


@dataclass
class Stream:
    """Claims on two routes, as contract events with the time each is to be sent."""

    config: Config
    seed: int
    busy_per_hour: float
    other_per_hour: float
    break_at: float
    tag: str
    transit_median: float = 6.0
    transit_sigma: float = 0.6
    events: list[Out] = field(default_factory=list)
    first_lost: float = math.inf  # dispatch time of the first claim the break swallows

    def build(self, spans: list[tuple[float, float]]) -> list[Out]:
        rng = random.Random(self.seed)
        teams = list(self.config.team_settings)
        clients = [c.id for c in self.config.clients]
        hubs = list(self.config.hub_centers)
        # As the simulator assigns them: the second client through the last hub, the rest
        # through the first; 80% of a client's claims go to its own team.
        by_hub: dict[str, list[str]] = {}
        for i, client in enumerate(clients):
            hub = hubs[-1] if i == 1 else hubs[0]
            by_hub.setdefault(hub, []).append(client)
        client_team = {c: teams[i % len(teams)] for i, c in enumerate(clients)}
        n = 0
        for start, end in spans:
            for (hub, center), per_hour in (
                (BUSY, self.busy_per_hour),
                (OTHER, self.other_per_hour),
            ):
                t = start
                while True:
                    t += rng.expovariate(per_hour / HOUR)
                    if t >= end:
                        break
                    n += 1
                    client = rng.choice(by_hub[hub])
                    team = client_team[client] if rng.random() < 0.8 else rng.choice(teams)
                    self._claim(rng, n, hub, center, client, team, t)
        self.events.sort()
        return self.events

    def _claim(
        self, rng: random.Random, n: int, hub: str, center: str, client: str, team: str, t: float
    ) -> None:
        cid = f"CLM-{self.tag}-{n:07d}"
        received = iso(t - rng.uniform(5, 90))
        self._emit(
            rng,
            t,
            {
                "type": "hub_dispatched",
                "event_id": f"d-{cid}",
                "claim_id": cid,
                "client_id": client,
                "hub_id": hub,
                "center_id": center,
                "hub_received_at": received,
                "dispatched_at": iso(t),
            },
        )
        if (hub, center) == BUSY and t >= self.break_at:
            self.first_lost = min(self.first_lost, t)
            return  # the total break: dispatched, never arrives
        arrived = t + min(
            1800.0, rng.lognormvariate(math.log(self.transit_median), self.transit_sigma)
        )
        if rng.random() < 0.001:  # a straggler
            arrived += math.exp(rng.uniform(math.log(2 * MINUTE), math.log(4 * HOUR)))
        self._emit(
            rng,
            arrived,
            {
                "type": "claim_arrived",
                "event_id": f"a-{cid}",
                "claim_id": cid,
                "client_id": client,
                "hub_id": hub,
                "team": team,
                "claim_type": f"{team}-claim",
                "hub_received_at": received,
                "arrived_at": iso(arrived),
            },
        )
        completed = arrived + rng.expovariate(1 / (20 * MINUTE))
        self._emit(
            rng,
            completed,
            {
                "type": "claim_completed",
                "event_id": f"c-{cid}",
                "claim_id": cid,
                "team": team,
                "completed_at": iso(completed),
                "outcome": "resolved",
                "handled_by": f"emp-{rng.randrange(1, 60):03d}",
            },
        )

    def _emit(self, rng: random.Random, t: float, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":")).encode()
        self.events.append(Out(t + rng.uniform(0, JITTER), t, line))


@dataclass
class Result:
    live_alert: float = math.nan  # seconds from the first undelivered dispatch
    live_metric: float = math.nan
    replay: float = math.nan
    live_at: str = ""  # the live alert's event time
    replay_at: str = ""
    caught_up_before_break: bool = False
    false_alarms: int = 0
    error: str = ""


class Ports:
    def __init__(self, spec: str) -> None:
        low, _, high = spec.partition("-")
        self.free = list(range(int(low), int(high or low) + 1))

    def take(self) -> int:
        while self.free:
            port = self.free.pop(0)
            if not port_taken(port):
                return port
        raise SystemExit("no free port left in --ports")


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        return str(response.read().decode())


def _link_down(text: str) -> bool:
    for line in text.splitlines():
        if (
            line.startswith("claimflow_hub_link_up{")
            and f'hub_id="{BUSY[0]}"' in line
            and f'center_id="{BUSY[1]}"' in line
        ):
            return float(line.rsplit(" ", 1)[1]) == 0
    return False


def _applied(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("claimflow_events_total{")
    )


def _spawn_worker(bootstrap: str, port: int, folder: Path, label: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLAIMFLOW_BOOTSTRAP": bootstrap,
        "CLAIMFLOW_WEB_PORT": str(port),
        "CLAIMFLOW_APP_ID": f"bench-live-{label}-{time.time_ns()}",
        "CLAIMFLOW_DATA_DIR": str(folder / f"data-{label}"),
        "CLAIMFLOW_SESSION_TIMEOUT": "6",
        "CLAIMFLOW_LOG_LEVEL": "info",
    }
    log = (folder / f"worker-{label}.log").open("wb")
    # Run from the log folder: `-m` puts the working directory first on sys.path, and the
    # worker must import the same claimflow as this process (PYTHONPATH compares versions).
    return subprocess.Popen(
        [sys.executable, "-m", "claimflow.cli", "worker"],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def one_run(args: argparse.Namespace, k: int, folder: Path, ports: Ports) -> Result:  # noqa: PLR0915 - one run's steps in the order they happen (broker, worker, feed, measure)
    config = load_config()
    result = Result()
    label = f"run{k}"
    with EmbeddedBroker(port=ports.take(), log=folder / f"broker-{label}.log") as broker:
        bootstrap = broker.bootstrap
        ensure_topics(bootstrap, TOPICS.inputs(), 4)
        web = ports.take()
        url = f"http://127.0.0.1:{web}"
        worker = _spawn_worker(bootstrap, web, folder, label)
        stop = threading.Event()
        try:
            deadline = time.time() + 90
            while True:
                try:
                    _metrics(url)
                    break
                except OSError:
                    if worker.poll() is not None or time.time() > deadline:
                        result.error = f"worker did not come up (see {folder})"
                        return result
                    time.sleep(0.3)
            now = time.time()
            break_at = now + args.warmup
            stream = Stream(
                config, args.seed + k, args.busy_per_hour, args.other_per_hour, break_at, label
            )
            live_end = break_at + args.timeout + 60
            spans = [(now - d * DAY - 2 * HOUR, now - d * DAY + HOUR) for d in (14, 7)] + [
                (now - 6 * HOUR, live_end)
            ]
            events = stream.build(spans)
            first_lost = stream.first_lost
            say(
                f"{label}: {len(events):,} events, break at {iso(break_at)}, first undelivered "
                f"dispatch {iso(first_lost)}"
            )
            seen: dict[str, float] = {}
            at: dict[str, str] = {}

            def listen() -> None:
                consumer = KafkaConsumer(
                    TOPICS.alerts, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
                )
                try:
                    while not stop.is_set():
                        for batch in consumer.poll(timeout_ms=100).values():
                            for record in batch:
                                alert = json.loads(record.value)
                                if alert["alert"] != "HubLinkBreak" or alert["state"] != "firing":
                                    continue
                                fired = datetime.fromisoformat(alert["at"]).timestamp()
                                labels = (alert["labels"]["hub_id"], alert["labels"]["center_id"])
                                if labels == BUSY and fired >= break_at and "alert" not in seen:
                                    seen["alert"] = time.time()
                                    at["alert"] = alert["at"]
                                elif fired < break_at or labels != BUSY:
                                    result.false_alarms += 1
                finally:
                    consumer.close()

            def poll_metrics() -> None:
                while not stop.is_set():
                    try:
                        text = _metrics(url)
                    except OSError:
                        text = ""
                    now = time.time()
                    if now >= first_lost and _link_down(text) and "metric" not in seen:
                        seen["metric"] = now
                    if "caught" not in seen and now >= break_at - 5:
                        # Every history event applied, and the live ones sent so far.
                        due = sum(1 for e in events if e.emit <= now - 5)
                        seen["caught"] = float(_applied(text) >= due)
                    stop.wait(0.2)

            threads = [threading.Thread(target=listen), threading.Thread(target=poll_metrics)]
            for thread in threads:
                thread.start()
            producer = make_producer(bootstrap)
            history = sum(1 for e in events if e.emit <= now)
            ended = live_end
            for sent, event in enumerate(events):
                wait = event.emit - time.time()
                if wait > 0:
                    if sent == history:
                        producer.flush()
                        say(f"{label}: {history:,} history events produced; live from here")
                    if "alert" in seen and "metric" in seen:
                        ended = time.time()
                        break
                    if time.time() > break_at + args.timeout:
                        ended = time.time()
                        break
                    time.sleep(wait)
                where = route(event.line, TOPICS)
                assert not isinstance(where, str)
                producer.send(where[0], key=where[1], value=event.line)
            producer.flush()
            producer.close()
            stop.set()
            for thread in threads:
                thread.join()
        finally:
            stop.set()
            _stop(worker)
    result.caught_up_before_break = bool(seen.get("caught"))
    if "alert" in seen:
        result.live_alert = seen["alert"] - first_lost
        result.live_at = at["alert"]
    if "metric" in seen:
        result.live_metric = seen["metric"] - first_lost
    # The same events, in the order they were produced, through the replay.
    alerts: list[Alert] = []
    lines = [e.line for e in events if e.emit <= ended]
    replay(config, lines, alerts.append, lambda *_: None)
    for alert in alerts:
        key = (alert.labels.get("hub_id"), alert.labels.get("center_id"))
        firing = alert.alert == "HubLinkBreak" and alert.state == "firing"
        if firing and key == BUSY and alert.at >= break_at:
            result.replay = alert.at - first_lost
            result.replay_at = iso(alert.at)
            break
    return result


def _median(values: list[float]) -> float:
    good = [v for v in values if not math.isnan(v)]
    return statistics.median(good) if good else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy-per-hour", type=float, default=150.0)
    parser.add_argument("--other-per-hour", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=150.0, help="seconds before the break")
    parser.add_argument("--timeout", type=float, default=480.0, help="seconds after the break")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ports", default="47100-47199", help="ports to use on 127.0.0.1")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="claimflow-live-detection-"))
    say(f"logs in {folder}; claimflow from {Path(claimflow.__file__).parent}")
    ports = Ports(args.ports)
    results = []
    for k in range(args.runs):
        result = one_run(args, k, folder, ports)
        say(f"run {k + 1}: {result}")
        results.append(result)
    config = load_config().engine
    print(
        f"\nTotal break of {BUSY[0]} -> {BUSY[1]} ({args.busy_per_hour:g} claims/h; "
        f"{OTHER[0]} -> {OTHER[1]} {args.other_per_hour:g}/h), events sent 0-{JITTER:g} s after "
        f"they happen; engine.allowed_lateness {config.allowed_lateness:g} s, evaluate_every "
        f"{config.evaluate_every:g} s. Seconds from the first undelivered dispatch:\n"
    )
    print(
        "| run | live: alert on topic | live: link_up 0 on /metrics | replay | live - replay "
        "| alert event time live / replay | caught up before the break "
        "| other HubLinkBreak alerts |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for k, r in enumerate(results, 1):
        print(
            f"| {k} | {r.live_alert:.1f} | {r.live_metric:.1f} | {r.replay:.1f} | "
            f"{r.live_alert - r.replay:.1f} | {r.live_at or '-'} / {r.replay_at or '-'} | "
            f"{'yes' if r.caught_up_before_break else 'no'} | {r.false_alarms} |"
            + (f" {r.error}" if r.error else "")
        )
    live = _median([r.live_alert for r in results])
    metric = _median([r.live_metric for r in results])
    rep = _median([r.replay for r in results])
    diff = _median([r.live_alert - r.replay for r in results])
    print(
        f"| **median** | **{live:.1f}** | **{metric:.1f}** | **{rep:.1f}** | **{diff:.1f}** | | | |"
    )


if __name__ == "__main__":
    main()
