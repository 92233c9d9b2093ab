"""Shared fixtures: the bundled configuration and generated scenarios (cached per session);
the hooks behind the `live` mark (tests/tiers.py) and the process clean-up (tests/processes.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from claimflow import _compiled
from claimflow.config import Config, load_config
from claimflow.engine import Alert
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.replay import ReplaySummary, replay
from claimflow.tools.simulate import Simulator, write_scenario
from tests.processes import no_process_left_behind  # noqa: F401 (autouse: every test)
from tests.tiers import (  # noqa: F401 (hooks: the `live` mark and its safety nets)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_fixture_setup,
    pytest_runtest_makereport,
    pytest_runtest_protocol,
)


def _ports_of_this_xdist_worker() -> None:
    """Under pytest-xdist (`pytest -n 2`), give each worker process its own
    slice of `CLAIMFLOW_PORTS`: `free_port` checks that a port is free and the test binds it
    later, and tests that restart a broker on the port it had (tests/live/test_delivery.py) would
    otherwise race with another worker picking the same port in between."""
    span = os.environ.get("CLAIMFLOW_PORTS")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if not span or not worker.startswith("gw") or count < 2:
        return
    first, last = (int(p) for p in span.split("-"))
    size = (last - first + 1) // count
    if size < 50:  # too narrow to share out: every worker keeps the whole range
        return
    start = first + int(worker[2:]) * size
    os.environ["CLAIMFLOW_PORTS"] = f"{start}-{start + size - 1}"


_ports_of_this_xdist_worker()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop before any test when an engine module was edited after it was compiled (an
    editable install): the tests would run the old compiled code, not the edited source."""
    if stale := _compiled.stale():
        pytest.exit(_compiled.stale_message(stale), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh embedded Kafka-protocol broker (Tansu, in memory) on a free port."""
    with EmbeddedBroker(log=tmp_path / "broker.log") as running:
        yield running


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config()


@dataclass
class ScenarioRun:
    events: Path
    truth: dict[str, Any]
    alerts: list[Alert]
    summary: ReplaySummary

    def firing(self, name: str | None = None) -> list[Alert]:
        return [a for a in self.alerts if a.state == "firing" and (name is None or a.alert == name)]


_CACHE: dict[tuple[str, int, int], ScenarioRun] = {}


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory, config: Config):  # type: ignore[no-untyped-def]
    """scenario(name, days, seed) -> a generated scenario replayed through the engine."""

    def run(name: str, days: int = 21, seed: int = 1) -> ScenarioRun:
        key = (name, days, seed)
        if key not in _CACHE:
            folder = tmp_path_factory.mktemp(f"{name}-{days}-{seed}")
            out = folder / "events.jsonl"
            sim = Simulator(config, name, days, date(2026, 11, 2), seed)
            _, truth_path = write_scenario(sim, out)
            alerts: list[Alert] = []
            with out.open("rb") as fh:
                summary = replay(config, fh, alerts.append, lambda n, r, raw: None)
            _CACHE[key] = ScenarioRun(out, json.loads(truth_path.read_text()), alerts, summary)
        return _CACHE[key]

    return run
