"""The engine on hand-made event streams: ordering, lateness, duplicates, references, bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from claimflow.config import Config, parse_config
from claimflow.contract.events import (
    ClaimArrived,
    ClaimCompleted,
    Event,
    HubDispatched,
    SurveyResponse,
)
from claimflow.contract.rejections import Reason
from claimflow.engine import Engine

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday


def _config(**engine: Any) -> Config:
    return parse_config(
        {
            "teams": ["motor", "property"],
            "hubs": [
                {"id": "hub-1", "centers": ["center-1"]},
                {"id": "hub-2", "centers": ["c-a", "c-b"]},
            ],
            "engine": engine,
        }
    )


def dispatched(n: int, at: datetime, hub: str = "hub-1", center: str = "center-1") -> HubDispatched:
    return HubDispatched(
        event_id=f"d{n}",
        claim_id=f"c{n}",
        client_id="x",
        hub_id=hub,
        center_id=center,
        hub_received_at=at - timedelta(seconds=30),
        dispatched_at=at,
    )


def arrived(n: int, at: datetime, team: str = "motor", hub: str = "hub-1") -> ClaimArrived:
    return ClaimArrived(
        event_id=f"a{n}",
        claim_id=f"c{n}",
        client_id="x",
        hub_id=hub,
        team=team,
        claim_type="motor",
        hub_received_at=at - timedelta(minutes=2),
        arrived_at=at,
    )


def completed(n: int, at: datetime, team: str = "motor") -> ClaimCompleted:
    return ClaimCompleted(
        event_id=f"x{n}",
        claim_id=f"c{n}",
        team=team,
        completed_at=at,
        outcome="resolved",
    )


def survey(n: int, at: datetime, score: int, claim: int | None = None) -> SurveyResponse:
    return SurveyResponse(
        event_id=f"s{n}",
        survey_id=f"s{n}",
        client_id="x",
        responded_at=at,
        score=score,
        claim_id=f"c{claim}" if claim is not None else None,
    )


def _inflow_buckets(engine: Engine) -> dict[int, float]:
    return dict(engine.inflow.counts._data.get(("team", "motor"), {}))


def _stream(n: int) -> list[Event]:
    events: list[Event] = []
    for i in range(n):
        at = T0 + timedelta(seconds=37 * i)
        events += [dispatched(i, at), arrived(i, at + timedelta(seconds=90))]
        if i % 3 == 0:
            events.append(completed(i, at + timedelta(minutes=20)))
    return events


def test_out_of_order_within_lateness_lands_in_the_right_windows() -> None:
    ordered = sorted(_stream(300), key=lambda e: e.time)
    shuffled = list(ordered)
    rng = random.Random(7)
    # Displace events by up to the default allowed lateness (25 s) of event time.
    lateness = _config().engine.allowed_lateness
    shuffled.sort(key=lambda e: e.time.timestamp() + rng.uniform(0, lateness))
    results = []
    for events in (ordered, shuffled):
        engine = Engine(_config())
        rejections = [engine.ingest(e) for e in events]
        engine.finish()
        assert rejections == [None] * len(events)
        results.append(
            (
                _inflow_buckets(engine),
                engine.backlog.open_count("motor"),
                len(engine.links.in_transit(("hub-1", "center-1"))),
            )
        )
    assert results[0] == results[1]
    assert sum(results[0][0].values()) == 300


def test_late_event_is_reported_and_still_closes_its_claim() -> None:
    engine = Engine(_config(allowed_lateness="2m"))
    assert engine.ingest(dispatched(1, T0)) is None
    assert engine.ingest(dispatched(2, T0 + timedelta(minutes=30))) is None
    # The arrival of claim 1 comes 28 minutes behind the newest event time.
    late = engine.ingest(arrived(1, T0 + timedelta(minutes=2)))
    assert late is not None and late.reason is Reason.LATE and late.applied
    engine.finish()
    assert engine.backlog.open_count("motor") == 1  # the claim is open, not lost
    assert "c1" not in engine.links.transit  # and no longer counted as in transit
    assert _inflow_buckets(engine) == {}  # but its closed window was not changed
    assert engine.rejected["late"] == 1


def test_duplicates_count_once() -> None:
    engine = Engine(_config())
    event = arrived(1, T0)
    assert engine.ingest(event) is None
    again = engine.ingest(event)
    assert again is not None and again.reason is Reason.DUPLICATE
    engine.finish()
    assert engine.backlog.open_count("motor") == 1
    assert sum(_inflow_buckets(engine).values()) == 1
    assert engine.accepted["claim_arrived"] == 1 and engine.rejected["duplicate"] == 1


def test_same_claim_arriving_twice_under_new_event_ids_is_idempotent() -> None:
    engine = Engine(_config())
    engine.ingest(arrived(1, T0))
    second = msgspec.structs.replace(arrived(1, T0 + timedelta(minutes=1)), event_id="other")
    engine.ingest(second)
    engine.finish()
    assert engine.backlog.open_count("motor") == 1
    assert engine.backlog.ignored_arrivals == 1


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (arrived(1, T0, team="gardening"), Reason.UNKNOWN_TEAM),
        (arrived(1, T0, hub="hub-9"), Reason.UNKNOWN_HUB),
        (completed(1, T0, team="gardening"), Reason.UNKNOWN_TEAM),
        (dispatched(1, T0, hub="hub-9"), Reason.UNKNOWN_HUB),
        (dispatched(1, T0, center="center-7"), Reason.UNKNOWN_CENTER),
    ],
)
def test_unknown_references_are_rejected(event: Event, reason: Reason) -> None:
    engine = Engine(_config())
    result = engine.ingest(event)
    assert result is not None and result.reason is reason
    assert engine.rejected[reason.value] == 1 and not any(engine.accepted.values())


def test_arrival_resolves_transit_and_learns_the_route() -> None:
    engine = Engine(_config())
    engine.ingest(dispatched(1, T0))
    engine.ingest(arrived(1, T0 + timedelta(seconds=75)))
    engine.ingest(completed(1, T0 + timedelta(minutes=30)))
    engine.finish()
    route = engine.links.routes[("hub-1", "center-1")]
    assert route.curve.total == 1 and route.curve.quantile(1.0) >= 75.0
    assert not route.pending and route.last_arrival == (T0 + timedelta(seconds=75)).timestamp()
    assert engine.backlog.open_count("motor") == 0
    assert engine.backlog.team_of("c1") == "motor"  # remembered for late survey answers


def test_survey_is_attributed_to_the_claims_team() -> None:
    engine = Engine(_config())
    engine.ingest(arrived(1, T0, team="property"))
    engine.ingest(completed(1, T0 + timedelta(hours=1), team="property"))
    engine.ingest(survey(1, T0 + timedelta(hours=3), score=1, claim=1))
    engine.ingest(survey(2, T0 + timedelta(hours=3, minutes=1), score=5))
    engine.finish()
    assert engine.feedback.keys == {("client", "x"), ("team", "property")}
    assert engine.feedback.scores[("x", 1)] == 1 and engine.feedback.scores[("x", 5)] == 1


def test_same_input_gives_same_alerts_however_it_is_chunked() -> None:
    """Speed independence: the engine has no clock; feeding with pauses, clock advances or all
    at once gives the same alerts. Here: a hub whose dispatches stop arriving."""
    events: list[Event] = []
    for i in range(400):
        at = T0 + timedelta(seconds=20 * i)
        events.append(dispatched(i, at))
        if i < 200:
            events.append(arrived(i, at + timedelta(seconds=60)))
    events.sort(key=lambda e: e.time)

    def run(advance_every: int | None) -> list[str]:
        engine = Engine(_config())
        for k, event in enumerate(events):
            engine.ingest(event)
            if advance_every and k % advance_every == 0:
                engine.advance_to(event.time.timestamp() - 300)  # a clock behind the data
        engine.finish()
        return [a.to_json() for a in engine.drain_alerts()]

    plain = run(None)
    assert plain == run(7) == run(50)
    assert any('"HubLinkBreak", "state": "firing"' in line for line in plain)


def test_state_stays_bounded_as_claims_complete_and_time_passes() -> None:
    engine = Engine(_config(dedupe_horizon="1h", claim_memory="1h"))
    for day in range(3):
        for i in range(500):
            n = day * 1000 + i
            at = T0 + timedelta(days=day, seconds=60 * i)
            engine.ingest(dispatched(n, at))
            engine.ingest(arrived(n, at + timedelta(seconds=60)))
            engine.ingest(completed(n, at + timedelta(minutes=15)))
    engine.advance_to((T0 + timedelta(days=30)).timestamp())
    engine.ingest(arrived(99_999, T0 + timedelta(days=30, seconds=1)))  # rotates the memories
    engine.finish()
    assert engine.backlog.open_count("motor") == 1
    assert not engine.links.transit
    assert len(engine.seen) < 1500  # ids from a month ago are forgotten
    assert len(engine.backlog._done) + len(engine.backlog._done_before) < 1500
    assert engine.inflow.counts.bucket_count() < 3 * 24 * 12 + 50  # old windows expired


def test_backlog_by_sla_class_and_oldest_claim() -> None:
    engine = Engine(_config())
    # Tuesday 09:00 UTC (London = UTC in November): due today 18:00.
    engine.ingest(arrived(1, T0))
    engine.ingest(arrived(2, T0 + timedelta(minutes=5)))
    # Reached the hub after the noon cutoff: due tomorrow.
    late_in_day = T0 + timedelta(hours=4)
    engine.ingest(arrived(3, late_in_day))
    engine.finish()
    backlog = engine.backlog
    now = (T0 + timedelta(hours=5)).timestamp()
    assert backlog.by_class("motor", now) == {"overdue": 0, "due_today": 2, "due_later": 1}
    after_due = (T0 + timedelta(hours=10)).timestamp()  # 19:00
    assert backlog.by_class("motor", after_due) == {"overdue": 2, "due_today": 0, "due_later": 1}
    assert backlog.oldest_arrival("motor") == T0.timestamp()
    assert backlog.oldest_arrival("property") is None
    assert backlog.open_count("motor") == 3


def test_link_status_follows_the_episode() -> None:
    engine = Engine(_config())
    route = ("hub-1", "center-1")
    for i in range(200):
        at = T0 + timedelta(minutes=i)
        engine.ingest(dispatched(i, at))
        if i < 150:  # from minute 150 on, dispatched claims stop arriving
            engine.ingest(arrived(i, at + timedelta(seconds=60)))
        if i == 151:  # a minute into the break: no claim is overdue yet
            assert engine.links.status(route) == 0
    engine.advance_to((T0 + timedelta(minutes=210)).timestamp())
    assert engine.links.status(route) == 1
    (alert,) = [a for a in engine.drain_alerts() if a.alert == "HubLinkBreak"]
    # 150 transits of 60 s seen: S bottoms out at 1/151, so each lost claim weighs about
    # log(151) = 5: three of them clear the budget's bar.
    assert 2 <= alert.details["missing_claims"] <= 5
    assert alert.at - (T0 + timedelta(minutes=150)).timestamp() <= 5 * 60
    assert alert.details["since"] == "2026-11-24T11:30:00Z"


def test_an_event_far_in_the_future_is_refused_not_obeyed() -> None:
    engine = Engine(_config())
    assert engine.ingest(arrived(1, T0)) is None
    poison = engine.ingest(arrived(2, T0 + timedelta(days=365 * 50)))
    assert poison is not None and poison.reason is Reason.FUTURE_TIMESTAMP
    # Everything after it is judged against the real event time, not the poisoned one.
    assert engine.ingest(arrived(3, T0 + timedelta(minutes=1))) is None
    engine.finish()
    assert engine.backlog.open_count("motor") == 2
    assert engine.rejected == {"future_timestamp": 1}


def test_a_long_gap_in_the_data_is_crossed_without_ticking_through_it() -> None:
    engine = Engine(_config())
    engine.ingest(dispatched(1, T0))
    engine.ingest(arrived(2, T0 + timedelta(days=25)))
    engine.ingest(arrived(3, T0 + timedelta(days=50)))
    engine.finish()
    assert engine.skipped_gaps == 2
    assert engine.backlog.open_count("motor") == 2
    assert not engine.links.transit  # the claim dispatched before the gap was given up on
    assert engine.links.abandoned == 1
