"""Item 4 end to end: one run of benchmarks/takeover.py (two workers, SIGKILL the detector
worker while events flow) on the embedded broker: the survivor ends with every event."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from claimflow.config import Config
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import takeover_run

pytestmark = [pytest.mark.attack, pytest.mark.live]


def _produce(bootstrap: str, lines: list[bytes]) -> None:
    producer = make_producer(bootstrap)
    produce(lines, producer, Topics())
    producer.flush()
    producer.close()


def test_sigkill_of_the_detector_worker_loses_nothing(
    broker: EmbeddedBroker, tmp_path: Path, config: Config
) -> None:
    events = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 3, date(2026, 11, 2), 1, 400), events)
    lines = events.read_bytes().splitlines()
    run = takeover_run(broker.bootstrap, tmp_path, config, lines, _produce)
    assert (run.applied, run.lost) == (run.expected, 0), run
