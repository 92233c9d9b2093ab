"""`claimflow demo` and the wall page, in a real headless Chromium.

The demo runs as a user runs it; the browser loads the page while the played day is held at
09:30, the morning meeting during the night break, and the test reads what a person would
read: the broken hub shown as broken, since when, how many claims are missing and how many
of them are same-day claims due today; the alert with the same figure; every section on one
1920x1080 screen, and none overlapping at 1280x720. The screenshot is kept in
test-artifacts/wall.png.
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
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from claimflow.tools.broker import free_port
from tests.live_harness import tool, wait_until
from tests.processes import alive, descendants, stop, terminate

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

ROOT = Path(__file__).resolve().parents[2]
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


def _layout(chromium: str, url: str, width: int, height: int) -> dict[str, Any]:
    """The page as Chromium lays it out at that window size: the boxes the page measures of
    itself after rendering (its `data-layout`), and the viewport it had."""
    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            "--virtual-time-budget=5000",
            f"--window-size={width},{height}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, "the page measured its layout"
    layout: dict[str, Any] = json.loads(unescape(found.group(1)))
    layout["dom"] = dom
    return layout


def _inside(box: list[int], layout: dict[str, Any]) -> bool:
    left, top, right, bottom = box
    return 0 <= left < right <= layout["width"] and 0 <= top < bottom <= layout["height"]


def test_wall_page_in_chromium_the_morning_meeting_on_one_screen(tmp_path: Path) -> None:  # noqa: PLR0915 - one page load, then every check a meeting relies on
    """The demo held at 09:30, the night break under way: everything on one 1920x1080
    screen, the break card with its same-day figures, and nothing overlapping at 1280x720."""
    chromium = tool("chromium", "chromium-browser")
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        # As a background job starts it (`claimflow demo &`): SIGINT ignored (inherited across
        # exec). The demo must stop on SIGINT all the same, and stop its broker and worker.
        ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            demo = subprocess.Popen(
                [
                    *(sys.executable, "-m", "claimflow.cli", "demo"),
                    *("--speed", "0", "--stop-at", "09:30", "--web-port", str(port)),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            signal.signal(signal.SIGINT, ignored)
    web = f"http://127.0.0.1:{port}"
    pids: list[int] = []
    try:
        started = wait_until(
            lambda: re.search(r"\(pid (\d+)\), worker pid (\d+)", log.read_text()), 120, "start"
        )
        pids = [int(started.group(1)), int(started.group(2))]

        seen: list[str] = []

        def held_at_the_stop() -> bool:
            """The played day stopped at 09:30: event time settles just before it."""
            try:
                with urllib.request.urlopen(web + "/api/wall", timeout=5) as response:
                    data = json.loads(response.read())
            except OSError:
                return False
            seen.append(str(data.get("as_of") or ""))
            return seen[-1] >= "2026-11-25T09:20" and seen[-2:] == [seen[-1]] * 2

        wait_until(held_at_the_stop, 240, f"the wall to settle at 09:30 ({log})", every=2)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "wall.png"
        subprocess.run(
            [
                *(chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=5000"),
                *("--hide-scrollbars", "--window-size=1920,1080", f"--screenshot={shot}"),
                web + "/wall",
            ],
            capture_output=True,
            timeout=120,
            check=True,
            cwd=tmp_path,
        )
        assert shot.stat().st_size > 10_000

        big = _layout(chromium, web + "/wall", 1920, 1080)
        assert big["width"] == 1920
        sections = {"header", "teams", "routes", "clients", "alerts", "comments"}
        assert sections <= set(big["boxes"])
        outside = {k: b for k, b in big["boxes"].items() if not _inside(b, big)}
        assert outside == {}, (outside, big["width"], big["height"])
        assert big["scroll_height"] <= big["height"] and big["scroll_width"] <= big["width"]
        assert "figure:hub-1->center-1" in big["boxes"]  # the same-day figure is on screen

        dom = big["dom"]
        cards = _Cards()
        cards.feed(dom)
        hub = cards.cards["hub-1->center-1"]
        assert "broken" in hub["class"]
        missing = re.search(r"(\d+) claims missing", hub["text"])
        assert missing and int(missing.group(1)) > 50
        assert "since 01:0" in hub["text"]  # the break began at 01:00
        same_day = re.search(r"(\d+) same-day due today, first due (\d\d:\d\d)", hub["text"])
        assert same_day and 0 < int(same_day.group(1)) <= int(missing.group(1))
        assert "ok" in cards.cards["hub-2->center-1"]["class"]
        # One number per fact: the open alert says what the card says, not its first figure.
        assert f"hub-1 → center-1: {missing.group(1)} claims missing" in dom
        assert "T0" not in re.sub(r"<script>.*</script>", "", dom, flags=re.S)  # no raw ISO
        assert 'data-client="northwind-mutual"' in dom  # the client section
        assert "claimflow_" not in dom  # the page reads the JSON API, not metrics
        with urllib.request.urlopen(web + "/api/clients", timeout=5) as response:
            clients = {c["client_id"]: c for c in json.loads(response.read())["clients"]}
        assert clients["northwind-mutual"]["same_day_stuck"] > 0

        small = _layout(chromium, web + "/wall", 1280, 720)
        boxes = [(k, small["boxes"][k]) for k in sorted(sections)]
        for i, (a, ba) in enumerate(boxes):
            assert _inside(ba, small), (a, ba)
            for b, bb in boxes[i + 1 :]:
                overlap = min(ba[2], bb[2]) > max(ba[0], bb[0]) and min(ba[3], bb[3]) > max(
                    ba[1], bb[1]
                )
                assert not overlap, (a, ba, b, bb)
    finally:
        below = descendants(demo.pid)  # its broker and worker, before it stops them
        demo.send_signal(signal.SIGINT)
        try:
            code: int | None = demo.wait(60)
        except subprocess.TimeoutExpired:
            code = None
        left = [pid for pid in below if alive(pid)]
        # Whatever happened above: nothing of the demo's runs on after the test.
        stop(demo, signal.SIGKILL)
        terminate(left)
    assert code == 0, log.read_text()[-2000:]
    assert "nothing left running" in log.read_text()
    assert pids and set(pids) <= set(below)
    assert left == [], "the demo left its broker or worker running"
