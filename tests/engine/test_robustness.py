"""No input crashes the engine, and arrival order within the lateness never changes alerts."""

from __future__ import annotations

import json
import random
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.contract.rejections import Reason, Rejection
from claimflow.engine import Engine
from claimflow.tools.simulate import Simulator

FIELDS = [
    "type",
    "event_id",
    "claim_id",
    "client_id",
    "hub_id",
    "center_id",
    "team",
    "claim_type",
    "hub_received_at",
    "dispatched_at",
    "arrived_at",
    "completed_at",
    "responded_at",
    "outcome",
    "score",
    "survey_id",
    "comment",
    "handled_by",
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**12),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "hub_dispatched",
            "claim_arrived",
            "claim_completed",
            "survey_response",
            "motor",
            "hub-1",
            "center-1",
            "resolved",
            "2026-11-24T10:00:00Z",
            "2026-11-24T10:00:00",
            "2026-11-24T10:00:00+05:45",
            "9999-12-31T23:59:59Z",
            "",
            "x" * 300,
        ]
    ),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)
TEMPLATES = [
    {
        "type": "hub_dispatched",
        "event_id": "d1",
        "claim_id": "c1",
        "client_id": "x",
        "hub_id": "hub-1",
        "center_id": "center-1",
        "hub_received_at": "2026-11-24T10:00:00Z",
        "dispatched_at": "2026-11-24T10:01:00Z",
    },
    {
        "type": "claim_arrived",
        "event_id": "a1",
        "claim_id": "c1",
        "client_id": "x",
        "hub_id": "hub-1",
        "team": "motor",
        "claim_type": "m",
        "hub_received_at": "2026-11-24T10:00:00Z",
        "arrived_at": "2026-11-24T10:03:00Z",
    },
    {
        "type": "claim_completed",
        "event_id": "x1",
        "claim_id": "c1",
        "team": "motor",
        "completed_at": "2026-11-24T11:00:00Z",
        "outcome": "resolved",
    },
    {
        "type": "survey_response",
        "event_id": "s1",
        "survey_id": "s1",
        "client_id": "x",
        "responded_at": "2026-11-24T15:00:00Z",
        "score": 1,
        "claim_id": "c1",
    },
]
TIMES = st.datetimes(
    min_value=__import__("datetime").datetime(1990, 1, 1),
    max_value=__import__("datetime").datetime(2120, 1, 1),
    timezones=st.sampled_from([__import__("datetime").UTC, None]),
).map(lambda d: d.isoformat().replace("+00:00", "Z"))


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A valid event with some fields swapped for odd values (including valid but extreme
    timestamps), so the engine itself, not just the schema, meets hostile input."""
    event = dict(draw(st.sampled_from(TEMPLATES)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            event.pop(name, None)
        elif choice == 1 or not name.endswith("_at"):
            event[name] = draw(VALUES)
        else:
            event[name] = draw(TIMES)
    event["event_id"] = draw(st.sampled_from(["e1", "e2", "e3", "e4"]))
    event["claim_id"] = draw(st.sampled_from(["c1", "c2", event.get("claim_id")]))
    return json.dumps(event).encode()


MESSAGES = st.one_of(
    near_valid(),
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=len(FIELDS)).map(
        lambda d: json.dumps(d).encode()
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(MESSAGES, min_size=1, max_size=30))
def test_nothing_crashes_and_every_input_is_accounted_for(
    config: Config, messages: list[bytes]
) -> None:
    engine = Engine(config)
    counted = rejected = 0
    for raw in messages:
        event = decode(raw)
        result = event if isinstance(event, Rejection) else engine.ingest(event)
        if result is None:
            counted += 1
        else:
            assert isinstance(result.reason, Reason) and result.detail
            rejected += 1
            counted += result.applied
    if engine.newest > float("-inf"):
        engine.advance_to(engine.newest + 86400)  # a quiet day after it, as a live clock would
    engine.finish()
    engine.drain_alerts()
    assert counted + rejected >= len(messages)
    assert sum(engine.accepted.values()) == counted


@pytest.mark.slow
def test_any_arrival_order_within_the_lateness_gives_the_same_alerts(config: Config) -> None:
    sim = Simulator(config, "hub-break", 10, date(2026, 11, 2), seed=4)
    events = [decode(json.dumps(e)) for _, e in sim.events()]
    by_time = sorted(events, key=lambda e: e.time)  # type: ignore[union-attr]

    def run(order: list) -> list[str]:  # type: ignore[type-arg]
        engine = Engine(config)
        for event in order:
            assert engine.ingest(event) is None
        engine.finish()
        return [a.to_json() for a in engine.drain_alerts()]

    expected = run(by_time)
    assert any('"HubLinkBreak", "state": "firing"' in a for a in expected)
    for seed in (1, 2):
        rng = random.Random(seed)
        # Delay each event by up to the allowed lateness (the default, 25 s).
        lateness = config.engine.allowed_lateness
        shuffled = sorted(by_time, key=lambda e: e.time.timestamp() + rng.uniform(0, lateness))  # type: ignore[union-attr]
        assert run(shuffled) == expected
