"""Everything a replay shows a user, as text: what tests/engine/test_compiled_parity.py compares
between the compiled engine and its plain-Python sources.

    python tests/parity_dump.py EVENTS OUT            # everything below, for EVENTS
    python tests/parity_dump.py EVENTS SNAPSHOT --write-snapshot   # state at half of EVENTS
    python tests/parity_dump.py EVENTS OUT --resume SNAPSHOT       # alerts of the second half

Run as a script, it imports whichever claimflow comes first on sys.path (the test puts a copy
of the plain sources there); imported, it uses the installed one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from claimflow import _compiled
from claimflow.config import load_config
from claimflow.contract.rejections import Rejection
from claimflow.engine import Alert, Engine
from claimflow.live import state_codec
from claimflow.tools.replay import ReplaySummary, replay
from claimflow.views.hub_links import break_episodes, routes_overview
from claimflow.views.metrics import EngineCollector

METRICS_EVERY = 8  # progress reports (8,192 lines each) between two scrapes mid-stream


def dump(events: Path) -> str:
    """Alerts (as JSON, as `claimflow replay` prints them), refused lines with their reasons,
    the /metrics text (mid-stream and at the end), the IT views and the replay's counts."""
    config = load_config()
    engine = Engine(config)
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: [engine]))
    out: list[str] = []

    def on_alert(alert: Alert) -> None:
        out.append(alert.to_json())

    def on_reject(number: int, problem: Rejection, line: bytes) -> None:
        out.append(f"refused line {number}: {problem.reason.value} applied={problem.applied}")

    def on_progress(summary: ReplaySummary) -> None:
        if summary.lines % (METRICS_EVERY * 8192) == 0:
            out.append(f"metrics at line {summary.lines}:\n{generate_latest(registry).decode()}")

    summary = replay(config, events.read_bytes().splitlines(), on_alert, on_reject, on_progress)
    out.append(f"metrics at the end:\n{generate_latest(registry).decode()}")
    out.append(json.dumps(break_episodes(engine), sort_keys=True))
    out.append(json.dumps(routes_overview(engine), sort_keys=True))
    out.append(
        f"lines {summary.lines} events {summary.events} blank {summary.blank_lines} "
        f"rejected {sorted(summary.rejected.items())} alerts {sorted(summary.alerts.items())}"
    )
    return "\n".join(out) + "\n"


def write_snapshot(events: Path, target: Path) -> None:
    """The engine's state after the first half of `events`, as the live worker snapshots it."""
    config = load_config()
    engine = Engine(config)
    lines = events.read_bytes().splitlines()
    replay(config, lines[: len(lines) // 2], lambda a: None, lambda n, r, raw: None, None, engine)
    target.write_bytes(state_codec.encode(engine))


def resume(events: Path, snapshot: Path) -> str:
    """The alerts of the second half of `events`, replayed on the state from `snapshot`."""
    config = load_config()
    engine = state_codec.decode(snapshot.read_bytes())
    assert state_codec.shape_difference(engine, Engine(config)) is None
    lines = events.read_bytes().splitlines()
    out: list[str] = []
    replay(
        config,
        lines[len(lines) // 2 :],
        lambda a: out.append(a.to_json()),
        lambda n, r, raw: None,
        None,
        engine,
    )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    events, target = Path(sys.argv[1]), Path(sys.argv[2])
    print(_compiled.running(), file=sys.stderr)  # the test checks this side ran pure
    if sys.argv[3:] == ["--write-snapshot"]:
        write_snapshot(events, target)
    elif sys.argv[3:4] == ["--resume"]:
        target.write_text(resume(events, Path(sys.argv[4])))
    else:
        target.write_text(dump(events))
