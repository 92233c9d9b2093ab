"""One `feed` (claimflow/engine/feed.py) for every path from raw input to the engine: the
replay, `staffing suggest` and the live worker count and refuse the same lines alike, and
`staffing suggest --at` judges at `--at` itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from claimflow.agents.ingest import judge
from claimflow.cli import floor_at
from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.contract.rejections import Rejection
from claimflow.engine import Engine
from claimflow.live.envelopes import Progress
from claimflow.live.live_engine import LiveEngine, LiveSettings
from claimflow.streams.topics import Topics
from claimflow.tools.replay import replay
from claimflow.tools.simulate import Simulator, write_scenario

INPUTS = Topics().inputs()  # input topic -> event type
TOPIC_OF = {kind: topic for topic, kind in INPUTS.items()}
ARRIVED = TOPIC_OF["claim_arrived"]
BAD = [
    b"{not json",
    b'{"type": "claim_arrived", "event_id": "x"}',  # fields missing
    b'{"type": "claim_arrived", "event_id": "y", "claim_id": 7}',  # wrong types
]


def _lines(config: Config, folder: Path) -> list[bytes]:
    """Two days of a small service centre, with the bad lines among them."""
    out = folder / "events.jsonl"
    write_scenario(Simulator(config, "normal", 2, date(2026, 11, 2), 3, 150), out)
    lines = out.read_bytes().splitlines()
    for k, bad in enumerate(BAD):
        lines.insert(len(lines) * (k + 1) // (len(BAD) + 1), bad)
    return lines


def _live(config: Config, lines: list[bytes]) -> Engine:
    """The lines as the live worker takes them: each on its topic's single partition,
    judged by ingest, forwarded, merged and applied by the detector's LiveEngine."""
    live = LiveEngine(config, INPUTS, LiveSettings(idle_clock_after=0))
    live.merge.expect(dict.fromkeys(INPUTS, 1))
    offsets = dict.fromkeys(INPUTS, 0)
    wall = 1e10  # read long after the fact: nothing is ahead of the wall clock
    for seq, line in enumerate(lines):
        event = decode(line)
        topic = ARRIVED if isinstance(event, Rejection) else TOPIC_OF[event.type]
        record = judge(topic, 0, offsets[topic], line, wall, INPUTS[topic], 1 << 20, 600.0)
        offsets[topic] += 1
        live.take(seq, record)
        wall += 0.001
    for k in range(2):  # every partition reports caught up, twice idle_after apart
        wall += 5
        done = tuple((topic, 0, offsets[topic], True) for topic in INPUTS)
        live.take(len(lines) + k, Progress(wall, dict.fromkeys(INPUTS, 1), done))
    return live.engine


def test_replay_staffing_and_live_count_and_refuse_the_same_lines(
    config: Config, tmp_path: Path
) -> None:
    lines = _lines(config, tmp_path)
    replayed = Engine(config)
    summary = replay(config, lines, lambda a: None, lambda n, r, raw: None, engine=replayed)
    staffing = floor_at(config, lines, None)
    assert staffing is not None
    live = _live(config, lines)

    assert sum(summary.rejected.values()) >= len(BAD)
    assert replayed.rejected == Counter(summary.rejected)  # the engine counts what it reports
    assert staffing.rejected == replayed.rejected
    assert live.rejected == replayed.rejected
    assert live.accepted == staffing.accepted == replayed.accepted
    assert sum(replayed.accepted.values()) > 500


def test_staffing_suggest_at_judges_at_that_moment(config: Config, tmp_path: Path) -> None:
    lines = _lines(config, tmp_path)
    events = tmp_path / "with-bad-lines.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    times = sorted(e.time for e in map(decode, lines) if not isinstance(e, Rejection))
    middle = times[len(times) // 2] + timedelta(minutes=7, seconds=30)
    after_the_end = times[-1] + timedelta(hours=3)
    roster = Path(__file__).resolve().parents[2] / "claimflow" / "data" / "staffing.yaml"

    for at in (middle, after_the_end):
        engine = floor_at(config, lines, at)
        assert engine is not None and engine.watermark == at.timestamp()
        applied = sum(engine.accepted.values())
        assert applied == sum(1 for t in times if t <= at)  # the events dated up to it
        done = subprocess.run(
            [
                *(sys.executable, "-m", "claimflow.cli", "staffing", "suggest", "--json"),
                *("--roster", str(roster), "--input", str(events), "--at", at.isoformat()),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        said = datetime.fromisoformat(json.loads(done.stdout)["at"])
        assert said == at.astimezone(UTC)

    before = times[0] - timedelta(seconds=1)
    assert floor_at(config, lines, before) is None  # nothing dated up to it: nothing judged
