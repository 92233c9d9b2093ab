"""The IT view of a hub-link break: which claims, since when, how many."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.engine import Engine
from claimflow.tools.simulate import Simulator
from claimflow.views.hub_links import RouteNotFoundError, break_episodes, transit_page


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def mid_break(config: Config) -> tuple[Engine, dict]:  # type: ignore[type-arg]
    sim = Simulator(config, "hub-break", 10, date(2026, 11, 2), seed=2)
    fault = sim.truth()["faults"][0]
    engine = Engine(config)
    stop = _epoch(fault["start"]) + 3 * 3600  # three hours into the overnight break
    events = [raw for _, raw in sim.events()]
    fault["first_lost_dispatch"] = min(
        raw["dispatched_at"]
        for raw in events
        if raw["type"] == "hub_dispatched"
        and raw["hub_id"] == "hub-1"
        and _epoch(raw["dispatched_at"]) >= _epoch(fault["start"])
    )
    for raw in events:
        event = decode(json.dumps(raw))
        if event.time.timestamp() > stop:  # type: ignore[union-attr]
            break
        engine.ingest(event)  # type: ignore[arg-type]
    return engine, fault


@pytest.mark.slow
def test_missing_claims_oldest_first_paginated(mid_break: tuple[Engine, dict]) -> None:  # type: ignore[type-arg]
    engine, fault = mid_break
    first = transit_page(engine, "hub-1", "center-1", limit=10)
    assert first["in_transit"] >= first["missing"] > 10
    assert first["as_of"] is not None
    dispatched = [c["dispatched_at"] for c in first["claims"]]
    assert dispatched == sorted(dispatched)
    assert all(c["missing"] and c["claim_id"].startswith("CLM-") for c in first["claims"])
    assert _epoch(dispatched[0]) >= _epoch(fault["start"])  # nothing from before the break
    assert first["claims"][0]["age_seconds"] > first["claims"][-1]["age_seconds"]
    second = transit_page(engine, "hub-1", "center-1", offset=first["next_offset"], limit=10)
    assert not {c["claim_id"] for c in first["claims"]} & {c["claim_id"] for c in second["claims"]}
    everything = transit_page(engine, "hub-1", "center-1", limit=1000)
    assert (
        everything["next_offset"] is None and len(everything["claims"]) == everything["in_transit"]
    )
    assert sum(c["missing"] for c in everything["claims"]) == everything["missing"]


def test_break_episode_names_route_start_and_size(mid_break: tuple[Engine, dict]) -> None:  # type: ignore[type-arg]
    engine, fault = mid_break
    (episode,) = break_episodes(engine)
    assert (episode["hub_id"], episode["center_id"]) == ("hub-1", "center-1")
    assert episode["open"] and episode["ended_at"] is None
    # The break starts with the first claim of the suspicious run: the first claim dispatched
    # after the link broke, or a straggler still in transit from just before it when nothing
    # was dispatched in between (the data cannot tell the two apart).
    since = _epoch(episode["since"])
    assert since <= _epoch(fault["first_lost_dispatch"])
    assert since >= _epoch(fault["start"]) - 15 * 60
    assert episode["missing_claims_now"] == transit_page(engine, "hub-1", "center-1")["missing"]
    assert episode["max_missing_claims"] >= 5


def test_bad_requests_are_clear(mid_break: tuple[Engine, dict]) -> None:  # type: ignore[type-arg]
    engine, _ = mid_break
    with pytest.raises(RouteNotFoundError, match="no route hub-9 -> center-1"):
        transit_page(engine, "hub-9", "center-1")
    with pytest.raises(ValueError, match="limit must be 1 to 1000"):
        transit_page(engine, "hub-1", "center-1", limit=0)
    with pytest.raises(ValueError, match="offset must not be negative"):
        transit_page(engine, "hub-1", "center-1", offset=-1)


@pytest.mark.slow
def test_a_finished_episode_records_its_end(scenario) -> None:  # type: ignore[no-untyped-def]
    run = scenario("hub-break")
    fault = run.truth["faults"][0]
    engine = Engine(__import__("claimflow.config", fromlist=["x"]).load_config())
    with run.events.open("rb") as fh:
        for line in fh:
            engine.ingest(decode(line))  # type: ignore[arg-type]
    engine.finish()
    (episode,) = break_episodes(engine)
    assert not episode["open"]
    assert _epoch(fault["end"]) <= _epoch(episode["ended_at"]) <= _epoch(fault["end"]) + 3600
    assert episode["max_missing_claims"] > 100  # an overnight of the main hub's claims
