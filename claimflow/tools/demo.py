"""`claimflow demo`: the whole story on one machine, with nothing installed.

Starts the embedded broker and a worker on 127.0.0.1, backfills nine days of a generated
service center (so the detectors have learned their baselines), then plays the tenth day
faster than real time. The story of issue 13: the link from hub-1 breaks at 01:00 and only
about 15% of its claims get through until 10:00; at the 09:00 morning meeting the wall shows
where, since when, how many claims are missing, how many of them are same-day claims per
client, and (with motor at 30% of its staff from 08:00) whom to move. When the link comes
back the flood lands on the teams that expected it, and the hand-back and next-day
suggestions appear as the teams clear it. The wall page, the metrics and the IT views are
served by the worker. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from claimflow.config import load_config
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker, free_port, port_taken
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Fault, Simulator

DAYS = 10


BREAK_HOURS = (1.0, 10.0)  # the night break, local time of the played day
DELIVERED = 0.15  # share of hub-1's claims that still get through during it


class DemoSimulator(Simulator):
    """The bundled simulator's demo day with the night break of the story instead of its
    midday one (the team losing staff stays: it is who needs the help)."""

    def _faults(self) -> list[Fault]:
        faults = [f for f in super()._faults() if f.kind != "hub_link_break"]
        day = self._weekday_on_or_before(self.days - 1)
        hub = self.hubs[0]
        center = self.config.hub_centers[hub][0]
        faults.append(
            Fault(
                "hub_link_break",
                self._local(day, BREAK_HOURS[0]),
                self._local(day, BREAK_HOURS[1]),
                {"hub_id": hub, "center_id": center},
                "HubLinkBreak",
                ["InflowDrop", "SlaAtRisk", "NegativeFeedbackSurge"],
                {"loss": 1 - DELIVERED},
            )
        )
        return sorted(faults, key=lambda f: f.start)


class DemoError(RuntimeError):
    """The demo cannot start; the message says why."""


@dataclass(frozen=True)
class DemoOptions:
    speed: float = 300.0  # simulated seconds per wall second; 0: as fast as possible
    web_port: int = 6066
    broker_port: int | None = None  # None: any free port
    claims_per_day: int = 1000
    start: date = date(2026, 11, 16)  # first history day; the played day is nine days later
    stop_at: clock_time | None = None  # stop playing at this local time of the played day
    exit_when_done: bool = False
    seed: int = 1


def run_demo(options: DemoOptions, out: TextIO = sys.stderr) -> int:  # noqa: PLR0915 - the demo's steps in the order a user sees them, with one cleanup
    """Run the demo until the day is played (`exit_when_done`) or a KeyboardInterrupt: the
    caller makes SIGINT and SIGTERM raise it (`cli._stop_on_signals`, also when the demo was
    started with SIGINT ignored), and whatever ends the run, the broker and the worker it
    started are stopped before it returns."""
    if port_taken(options.web_port):
        raise DemoError(
            f"port 127.0.0.1:{options.web_port} is taken: stop what uses it or pass --web-port"
        )
    if options.broker_port is not None and port_taken(options.broker_port):
        raise DemoError(
            f"port 127.0.0.1:{options.broker_port} is taken: pass another --broker-port"
        )
    config = load_config()
    zone = ZoneInfo(config.timezone)
    folder = Path(tempfile.mkdtemp(prefix="claimflow-demo-"))

    def say(message: str) -> None:
        print(message, file=out, flush=True)

    say(f"generating {DAYS} days of claims ({options.claims_per_day:,} a day)...")
    sim = DemoSimulator(config, "demo", DAYS, options.start, options.seed, options.claims_per_day)
    events = sim.events()
    played_day = options.start.toordinal() + DAYS - 1
    day_start = datetime.combine(date.fromordinal(played_day), clock_time(), zone).timestamp()
    # Today's roster: the people the simulation has, the ones off sick marked unavailable.
    roster = folder / "staffing.yaml"
    roster.write_text(json.dumps(sim.roster(day_start + 12 * 3600), indent=1) + "\n")
    history = [e for t, e in events if t < day_start]
    today = [(t, e) for t, e in events if t >= day_start]
    if options.stop_at is not None:
        stop = datetime.combine(date.fromordinal(played_day), options.stop_at, zone).timestamp()
        today = [(t, e) for t, e in today if t <= stop]

    broker = EmbeddedBroker(options.broker_port or free_port(), log=folder / "broker.log")
    worker: subprocess.Popen[bytes] | None = None
    web = f"http://127.0.0.1:{options.web_port}"
    try:
        broker.start()
        worker = _start_worker(broker.bootstrap, options.web_port, folder, roster)
        assert broker.process is not None
        say(
            f"broker {broker.bootstrap} (pid {broker.process.pid}), worker pid {worker.pid}; "
            f"logs in {folder}"
        )
        _wait_ready(web, worker, folder)
        say(f"wall page   {web}/wall")
        say(f"metrics     {web}/metrics")
        say(f"IT views    {web}/it/routes  {web}/it/breaks")
        say(f"roster      {roster} (edit it: the worker reloads it)")
        producer = make_producer(broker.bootstrap)
        topics = Topics()
        say(f"backfilling {DAYS - 1} days of history ({len(history):,} events)...")
        produce(_lines(history), producer, topics)
        producer.flush()
        speed = "as fast as it goes" if options.speed <= 0 else f"{options.speed:g}x real time"
        say(
            f"playing {date.fromordinal(played_day)} ({len(today):,} events, {speed}); "
            "Ctrl-C stops the demo"
        )
        produce(_paced(today, options.speed, zone, say), producer, topics)
        producer.flush()
        producer.close()
        say(
            "the day is played"
            + ("" if options.exit_when_done else "; the wall page stays up until Ctrl-C")
        )
        while not options.exit_when_done:
            if worker.poll() is not None:
                raise DemoError(f"the worker stopped; see {folder / 'worker.log'}")
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C (or a terminal's SIGINT to the whole group) or another SIGTERM must
        # not cut the clean-up short and leave the broker or the worker behind.
        handlers = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        say("stopping...")
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        broker.stop()
        for number, handler in handlers.items():
            signal.signal(number, handler)
        say("demo stopped; nothing left running")


def _start_worker(bootstrap: str, port: int, folder: Path, roster: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLAIMFLOW_STAFFING": str(roster),
        "CLAIMFLOW_BOOTSTRAP": bootstrap,
        "CLAIMFLOW_WEB_PORT": str(port),
        "CLAIMFLOW_APP_ID": "claimflow-demo",
        "CLAIMFLOW_SESSION_TIMEOUT": "6",
        # Event time is simulated: the wall clock must not move it on between events.
        "CLAIMFLOW_IDLE_CLOCK_AFTER": "0",
        # ... and runs `--speed` times faster than the wall clock: records that reach their
        # partitions a second out of order (a producer's requests in flight, retries) are
        # minutes apart in event time, beyond the engine's lateness. The merge holds for that
        # (docs/worker.md, "Event time, ordering and the wall clock").
        "CLAIMFLOW_IDLE_AFTER": "2",
    }
    with (folder / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "claimflow.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(web: str, worker: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise DemoError(f"the worker stopped; see {folder / 'worker.log'}")
        try:
            with urllib.request.urlopen(web + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise DemoError(f"the worker did not become ready in 90 s; see {folder / 'worker.log'}")


def _lines(events: list[dict[str, Any]]) -> Iterator[bytes]:
    for event in events:
        yield json.dumps(event, separators=(",", ":")).encode()


def _paced(
    events: list[tuple[float, dict[str, Any]]], speed: float, zone: ZoneInfo, say: Any
) -> Iterator[bytes]:
    """Events released at `speed` times real time, by their event time."""
    if not events:
        return
    first, started = events[0][0], time.monotonic()
    last_report = 0.0
    for t, event in events:
        if speed > 0:
            wait = started + (t - first) / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            say(f"  {datetime.fromtimestamp(t, zone).strftime('%H:%M')} ({zone.key}) played")
        yield json.dumps(event, separators=(",", ":")).encode()
