"""Attack: grow the metric series without bound, and inflate a team's pace.

* 5,000 survey answers from client ids the configuration does not list used to add 5,025
  series to `claimflow_survey_responses_total`; they now count under client_id="other" and
  in `claimflow_unknown_scope_total{kind="client"}`.
* Completions of claims that never arrived used to count in the team's pace (claims per busy
  hour), so a flood of them hid a team falling behind; they are now counted in
  `claimflow_completions_without_arrival_total{team}` and left out of the pace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from claimflow.config import Config
from claimflow.engine import Engine
from claimflow.views.metrics import OTHER, EngineCollector
from tests.live_harness import parse_metrics, reference

pytestmark = pytest.mark.attack


def _series(engine: Engine) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: [engine]))
    return parse_metrics(generate_latest(registry).decode())


def _stamp(line: bytes) -> str:
    event = json.loads(line)
    field = {
        "hub_dispatched": "dispatched_at",
        "claim_arrived": "arrived_at",
        "claim_completed": "completed_at",
        "survey_response": "responded_at",
    }[event["type"]]
    return str(event[field])


def _with(lines: list[bytes], extra: list[dict[str, Any]], every: int) -> list[bytes]:
    """`lines` with one of `extra` after every `every` lines, stamped with that line's time."""
    out: list[bytes] = []
    pending = list(extra)
    for i, line in enumerate(lines):
        out.append(line)
        if pending and i % every == every - 1:
            event = pending.pop()
            field = "responded_at" if event["type"] == "survey_response" else "completed_at"
            event[field] = _stamp(line)
            out.append(json.dumps(event).encode())
    return out


@pytest.mark.slow
def test_unknown_clients_fold_into_one_series(config: Config, scenario: Any) -> None:
    lines = Path(scenario("normal", 10, 1).events).read_bytes().splitlines()
    surveys = [
        {
            "type": "survey_response",
            "event_id": f"attack-s-{i}",
            "survey_id": f"attack-s-{i}",
            "client_id": f"stranger-{i}",
            "score": 1 + i % 5,
            "comment": "who reads this?",
        }
        for i in range(5000)
    ]
    every = len(lines) // 5001
    engine, _ = reference(config, _with(lines, surveys, every))
    series = _series(engine)
    responses = {
        dict(labels)["client_id"]
        for (name, labels) in series
        if name == "claimflow_survey_responses_total"
    }
    configured = {c.id for c in config.clients}
    assert responses <= configured | {OTHER}
    assert len(responses) <= len(configured) + 1
    other = sum(
        v
        for (name, labels), v in series.items()
        if name == "claimflow_survey_responses_total" and dict(labels)["client_id"] == OTHER
    )
    assert other == 5000
    assert series[("claimflow_unknown_scope_total", (("kind", "client"),))] == 5000
    # Every label value of every family is bounded by the configuration.
    teams = {t.id for t in config.teams}
    hubs = {h.id for h in config.hubs}
    centers = {c for h in config.hubs for c in h.centers}
    allowed = {
        "team": teams | {"", OTHER},
        "client_id": configured | {"", OTHER},
        "hub_id": hubs | {"", OTHER},
        "center_id": centers | {"", OTHER},
    }
    for (_, labels), _ in series.items():
        for label, value in labels:
            if label in allowed:
                assert value in allowed[label], (label, value)
            assert "who reads this" not in value


@pytest.mark.slow
def test_completions_without_an_arrival_are_counted_and_not_paced(
    config: Config, scenario: Any
) -> None:
    lines = Path(scenario("normal", 10, 1).events).read_bytes().splitlines()
    team = config.teams[0].id
    ghosts = [
        {
            "type": "claim_completed",
            "event_id": f"attack-c-{i}",
            "claim_id": f"GHOST-{i}",
            "team": team,
            "outcome": "resolved",
        }
        for i in range(3000)
    ]
    honest, _ = reference(config, lines)
    every = len(lines) // 3001
    attacked, _ = reference(config, _with(lines, ghosts, every))
    series = _series(attacked)
    key = ("claimflow_completions_without_arrival_total", (("team", team),))
    assert series[key] == 3000
    assert _series(honest)[key] == 0
    # The pace is what it is without them: they shortened no queue.
    assert attacked.backlog.pace_per_hour(team) == honest.backlog.pace_per_hour(team)
    assert honest.backlog.pace_per_hour(team) is not None
    # They still count as completions (something was completed), and nothing crashed.
    completions = ("claimflow_completions_total", (("team", team),))
    assert series[completions] == _series(honest)[completions] + 3000
