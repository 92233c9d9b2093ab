"""Item 3 in `claimflow replay`: one event dated ahead (or a first event far ahead) must not
move event time and blind every real event after it (0 alerts instead of 15)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from claimflow.config import Config
from claimflow.contract.deadletter import original_bytes
from claimflow.contract.events import decode
from claimflow.contract.rejections import Rejection
from claimflow.engine import Alert, Engine
from claimflow.tools.replay import replay
from tests.conftest import ScenarioRun

pytestmark = [pytest.mark.attack, pytest.mark.slow]
CLI = [sys.executable, "-m", "claimflow.cli"]


def _run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, timeout=300, check=False)


def _dated_ahead(line: bytes, days: float, event_id: str) -> bytes:
    """A copy of a real arrival dated `days` later, with a fresh id."""
    event = json.loads(line)
    at = datetime.fromisoformat(event["arrived_at"]) + timedelta(days=days)
    event["arrived_at"] = at.isoformat().replace("+00:00", "Z")
    event["event_id"] = event_id
    return json.dumps(event).encode()


def _unbounded(config: Config, lines: list[bytes]) -> tuple[list[str], dict[str, int]]:
    """The replay before the bound: every event that decodes goes straight into the engine.
    Its alerts and what the engine refused."""
    engine = Engine(config)
    out: list[str] = []
    for line in lines:
        event = decode(line) if line.strip() else None
        if event is not None and not isinstance(event, Rejection):
            engine.ingest(event)
        out.extend(a.to_json() for a in engine.drain_alerts())
    engine.finish()
    out.extend(a.to_json() for a in engine.drain_alerts())
    return out, dict(engine.rejected)


@pytest.fixture(scope="module")
def clean(scenario: Callable[..., ScenarioRun]) -> tuple[ScenarioRun, list[str]]:
    """The mixed scenario and the alerts `claimflow replay` prints for it untouched."""
    run = scenario("mixed")
    done = _run("replay", "--input", run.events, "--quiet")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return run, done.stdout.decode().splitlines()


@pytest.mark.parametrize(
    ("where", "days", "copies"),
    [
        ("middle", 20, 1),  # within engine.max_jump (30 days): nothing refused it
        ("first", 20, 1),  # the very first event: nothing came before it to compare with
        ("first", 400, 1),  # far beyond max_jump, but the first event is not checked
        ("middle", 20, 3),  # a few alike in a row
    ],
)
def test_one_event_dated_ahead_is_refused_and_every_alert_still_fires(
    clean: tuple[ScenarioRun, list[str]], tmp_path: Path, where: str, days: int, copies: int
) -> None:
    run, expected = clean
    lines = run.events.read_bytes().splitlines()
    arrivals = [i for i, line in enumerate(lines) if b'"claim_arrived"' in line]
    at = 0 if where == "first" else arrivals[len(arrivals) // 3]
    ahead = [_dated_ahead(lines[arrivals[0]], days, f"ahead-{n}") for n in range(copies)]
    attacked = tmp_path / "attacked.jsonl"
    attacked.write_bytes(b"\n".join([*lines[:at], *ahead, *lines[at:]]) + b"\n")

    dead = tmp_path / "dead.jsonl"
    done = _run("replay", "--input", attacked, "--quiet", "--dead-letters", dead)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    # Exactly the alerts of the clean input: before the bound, none at all.
    assert sum(a.state == "firing" for a in run.alerts) >= 12
    assert done.stdout.decode().splitlines() == expected
    err = done.stderr.decode()
    assert f"rejected future_timestamp: {copies}" in err
    assert "rejected late" not in err
    # Each outlier is a dead letter with its reason, line number and exact bytes.
    records = [json.loads(line) for line in dead.read_bytes().splitlines()]
    assert [r["reason"] for r in records] == ["future_timestamp"] * copies
    assert [r["source"]["offset"] for r in records] == [at + 1 + n for n in range(copies)]
    assert [original_bytes(r) for r in records] == ahead
    assert "the stream did not follow" in records[0]["detail"]


def test_the_bound_leaves_ordinary_replays_as_they_were(
    scenario: Callable[..., ScenarioRun], config: Config
) -> None:
    # Real jumps in event time (a night, three missing days of data, the first event) are
    # followed by the events after them: accepted, with exactly the unbounded result.
    for run in (scenario("hub-break", 10, 1), scenario("mixed")):
        lines = run.events.read_bytes().splitlines()
        start = lines.index(next(x for x in lines if b"2026-11-05T" in x))
        end = lines.index(next(x for x in lines if b"2026-11-08T" in x))
        for case in (lines, lines[:start] + lines[end:]):
            printed: list[str] = []
            summary = replay(config, case, _printer(printed), _ignore)
            assert "future_timestamp" not in summary.rejected
            assert (printed, dict(summary.rejected)) == _unbounded(config, case)
            assert printed


def _printer(out: list[str]) -> Callable[[Alert], None]:
    """Keep each alert as printed when published (alert objects change after)."""
    return lambda alert: out.append(alert.to_json())


def _ignore(number: int, problem: Rejection, raw: bytes) -> None:
    pass


def test_a_burst_of_outliers_is_refused_up_to_the_documented_limit(
    scenario: Callable[..., ScenarioRun], config: Config
) -> None:
    lines = scenario("hub-break", 10, 1).events.read_bytes().splitlines()
    arrivals = [i for i, line in enumerate(lines) if b'"claim_arrived"' in line]
    at = arrivals[len(arrivals) // 2]
    for copies, refused in ((9, 9), (10, 0)):  # ten alike: taken as the stream moving on
        ahead = [_dated_ahead(lines[arrivals[0]], 20, f"burst-{n}") for n in range(copies)]
        summary = replay(config, [*lines[:at], *ahead, *lines[at:]], _printer([]), _ignore)
        assert summary.rejected.get("future_timestamp", 0) == refused, (copies, summary.rejected)
