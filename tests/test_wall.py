"""`claimflow demo` and the wall page, in a real headless Chromium.

The demo runs as a user runs it; the browser loads the page while the played day is held at
13:30, and the test reads what a person would read: the broken hub shown as broken, with
since when and how many claims are missing; the team that is behind shown at risk, and only
that one, with who could help it. The screenshot is kept in test-artifacts/wall.png.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from claimflow.broker import free_port
from tests.live_harness import alive, tool, wait_until

ROOT = Path(__file__).parent.parent
ARTIFACTS = Path(os.environ.get("CLAIMFLOW_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class _Cards(HTMLParser):
    """Cards of the page (data-team / data-route), their classes and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, dict[str, Any]] = {}
        self._stack: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        key = a.get("data-team") or a.get("data-route")
        if key:
            self.cards[key] = {"class": (a.get("class") or "").split(), "text": ""}
        self._stack.append(key)

    def handle_endtag(self, tag: str) -> None:
        if self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        for key in self._stack:
            if key:
                self.cards[key]["text"] += data + " "


def test_demo_says_clearly_when_its_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "claimflow.cli", "demo", "--web-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"port 127.0.0.1:{port} is taken" in done.stderr


def test_wall_page_in_chromium_shows_the_broken_hub_and_the_team_at_risk(tmp_path: Path) -> None:
    chromium = tool("chromium", "chromium-browser")
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [
                *(sys.executable, "-m", "claimflow.cli", "demo"),
                *("--speed", "0", "--stop-at", "13:30", "--web-port", str(port)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    web = f"http://127.0.0.1:{port}"
    pids: list[int] = []
    try:
        started = wait_until(
            lambda: re.search(r"\(pid (\d+)\), worker pid (\d+)", log.read_text()), 120, "start"
        )
        pids = [int(started.group(1)), int(started.group(2))]

        seen: list[str] = []

        def held_at_the_stop() -> bool:
            """The played day stopped at 13:30: event time settles just before it."""
            try:
                with urllib.request.urlopen(web + "/api/wall", timeout=5) as response:
                    data = json.loads(response.read())
            except OSError:
                return False
            seen.append(str(data.get("as_of") or ""))
            return seen[-1] >= "2026-11-25T13:20" and seen[-2:] == [seen[-1]] * 2

        wait_until(held_at_the_stop, 240, f"the wall to settle at 13:30 ({log})", every=2)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "wall.png"
        common = [chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=5000"]
        dom = subprocess.run(
            [*common, "--dump-dom", web + "/wall"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        subprocess.run(
            [
                *common,
                "--hide-scrollbars",
                "--window-size=1920,1080",
                f"--screenshot={shot}",
                web + "/wall",
            ],
            capture_output=True,
            timeout=120,
            check=True,
            cwd=tmp_path,
        )
        assert shot.stat().st_size > 10_000

        cards = _Cards()
        cards.feed(dom)
        hub = cards.cards["hub-1->center-1"]
        assert "broken" in hub["class"]
        assert re.search(r"BROKEN|broken", hub["text"])
        assert re.search(r"\d+ claims missing", hub["text"])
        assert "since 11:0" in hub["text"]  # the break began at 11:00
        assert "ok" in cards.cards["hub-2->center-1"]["class"]
        at_risk = sorted(k for k, c in cards.cards.items() if "at_risk" in c["class"])
        assert at_risk == ["motor"]  # the team working at 30% of its staff, and only it
        assert re.search(
            r"[1-9]\d* at risk of missing today's deadline", cards.cards["motor"]["text"]
        )
        # The roster's advice beside the team at risk (the demo's roster: the simulated
        # staff, motor's absentees unavailable): who could come from which team.
        motor = cards.cards["motor"]["text"]
        assert re.search(
            r"Help: .*\((priority-client|international-settlements|property), "
            r"(deep|moderate)",
            motor,
        ), motor
        assert re.search(r"\d+ of \d+ misses avoided", motor), motor
        assert "Help:" not in cards.cards["property"]["text"]
        assert "HubLinkBreak" in dom and "SlaAtRisk" in dom  # open alerts listed
        assert "claimflow_" not in dom  # the page reads the JSON API, not metrics

        # A manager edits the roster while the worker runs: the first suggested helper is
        # off after all. The worker reloads the file and suggests without them.
        printed = re.search(r"roster +(\S+)", log.read_text())
        assert printed, "the demo prints where its roster is"
        roster = Path(printed.group(1))
        helper = _motor_help(web)[0]
        data = json.loads(roster.read_text())
        next(p for p in data["employees"] if p["id"] == helper)["available"] = False
        roster.write_text(json.dumps(data))
        wait_until(lambda: helper not in _motor_help(web), 60, "the roster reload", every=2)
        with urllib.request.urlopen(web + "/metrics", timeout=5) as response:
            assert "claimflow_roster_reload_errors_total 0.0" in response.read().decode()
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(60)
    assert code == 0, log.read_text()[-2000:]
    assert "nothing left running" in log.read_text()
    assert pids and not [pid for pid in pids if alive(pid)]


def _motor_help(web: str) -> list[str]:
    with urllib.request.urlopen(web + "/api/wall", timeout=5) as response:
        teams = json.loads(response.read())["teams"]
    suggestion = next(t for t in teams if t["team"] == "motor")["staffing"]["suggestion"]
    return [m["employee"] for m in suggestion["moves"]] if suggestion else []
