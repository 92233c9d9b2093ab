"""HubLinkBreak on hand-made streams: each evidence path, the budget, healthy-only learning,
back-to-back breaks, resolution with claims still missing, batching hubs, stragglers."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from claimflow.config import Config, parse_config
from claimflow.contract.events import ClaimArrived, Event, HubDispatched
from claimflow.engine import Alert, Engine
from claimflow.engine.transit import TransitCurve

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
ROUTE = ("hub-1", "center-1")
HOUR = 3600.0


def _config(**hub_link: object) -> Config:
    return parse_config(
        {
            "teams": ["motor"],
            "hubs": [{"id": "hub-1", "centers": ["center-1"]}],
            "detectors": {"hub_link_break": hub_link},
        }
    )


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _transit(rng: random.Random, stragglers: float = 0.001) -> float:
    """1-20 s normally; a share of stragglers delayed by minutes to hours."""
    if rng.random() < stragglers:
        return rng.uniform(120, 3 * HOUR)
    return rng.uniform(1, 20)


def flow(
    start: float,
    end: float,
    per_hour: float,
    seed: int,
    delivered: Callable[[float], bool] = lambda t: True,
    transit: Callable[[random.Random], float] = _transit,
    batch_every: float | None = None,
    first_id: int = 0,
) -> Iterator[tuple[float, Event]]:
    """(time, event) of one route's dispatches and arrivals; `delivered(t)` says whether a
    claim dispatched at t arrives; with `batch_every`, claims leave in batches."""
    rng = random.Random(seed)
    t = start
    n = first_id
    while True:
        t += rng.expovariate(per_hour / HOUR)
        if t >= end:
            return
        n += 1
        sent = math.ceil(t / batch_every) * batch_every if batch_every else t
        claim = f"c{n}"
        yield (
            sent,
            HubDispatched(
                event_id=f"d{n}",
                claim_id=claim,
                client_id="client-a" if n % 3 else "client-b",
                hub_id="hub-1",
                center_id="center-1",
                hub_received_at=_at(t),
                dispatched_at=_at(sent),
            ),
        )
        if delivered(sent):
            arrive = sent + transit(rng)
            yield (
                arrive,
                ClaimArrived(
                    event_id=f"a{n}",
                    claim_id=claim,
                    client_id="client-a",
                    hub_id="hub-1",
                    team="motor",
                    claim_type="motor",
                    hub_received_at=_at(t),
                    arrived_at=_at(arrive),
                ),
            )


def resent(stuck: list[HubDispatched], start: float, step: float) -> list[tuple[float, Event]]:
    """The stuck claims of a break arriving after its fix, one every `step` seconds."""
    return [
        (
            start + k * step,
            ClaimArrived(
                event_id=f"late{e.claim_id}",
                claim_id=e.claim_id,
                client_id=e.client_id,
                hub_id="hub-1",
                team="motor",
                claim_type="motor",
                hub_received_at=e.hub_received_at,
                arrived_at=_at(start + k * step),
            ),
        )
        for k, e in enumerate(stuck)
    ]


def sent_between(
    events: list[tuple[float, Event]], start: float, end: float
) -> list[HubDispatched]:
    return [
        e
        for _, e in events
        if isinstance(e, HubDispatched)
        and start <= e.dispatched_at.timestamp() - T0.timestamp() < end
    ]


def run(
    events: list[tuple[float, Event]], until: float, config: Config | None = None
) -> tuple[Engine, list[Alert]]:
    engine = Engine(config or _config())
    alerts: list[Alert] = []
    for t, event in sorted(events, key=lambda item: item[0]):
        if t > until:
            break  # the stream ends at `until` (a claim still in transit then stays so)
        engine.ingest(event)
        alerts += engine.drain_alerts()
    engine.advance_to(T0.timestamp() + until)
    alerts += engine.drain_alerts()
    return engine, [a for a in alerts if a.alert == "HubLinkBreak"]


def _since(alert: Alert) -> float:
    return datetime.fromisoformat(alert.details["since"].replace("Z", "+00:00")).timestamp()


def _first_lost(events: list[tuple[float, Event]], after: float) -> float:
    arrived = {e.claim_id for _, e in events if isinstance(e, ClaimArrived)}
    return min(
        e.dispatched_at.timestamp()
        for _, e in events
        if isinstance(e, HubDispatched)
        and e.claim_id not in arrived
        and e.dispatched_at.timestamp() >= T0.timestamp() + after
    )


# --- the curve ----------------------------------------------------------------------------


def test_a_young_curve_is_cautious_and_its_floor_shrinks_only_with_data() -> None:
    curve = TransitCurve()
    assert curve.survival(3 * HOUR) == 1.0  # nothing learned: nothing is improbable
    for _ in range(9):
        curve.learn(5.0)
    assert curve.survival(3 * HOUR) == curve.floor == 0.1  # 1 / (9 + 1)
    assert curve.survival(1.0) == 1.0
    for _ in range(990):
        curve.learn(5.0)
    assert curve.survival(3 * HOUR) == curve.floor == 0.001
    # A straggler is learned, not ignored: ages up to it stay plausible.
    for _ in range(20):
        curve.learn(600.0)
    assert curve.survival(500.0) > curve.survival(3 * HOUR)


def test_the_threshold_follows_the_budget_and_the_route_volume() -> None:
    events = list(flow(0, 2 * 86400, 120, seed=1))
    engine, alerts = run(events, 2 * 86400)
    assert alerts == []
    links = engine.links
    state = links.routes[ROUTE]
    now = T0.timestamp() + 2 * 86400
    per_year = state.dispatched_total / (2 * 86400) * 365 * 86400  # one claim a dispatch
    # The missing-claims test spends 1 - silence_share of the budget, the silence test the rest.
    assert math.isclose(
        links.evidence(state, now).threshold, math.log(per_year / 0.8), rel_tol=0.01
    )
    assert math.isclose(links._threshold(state, now, 0.2), math.log(per_year / 0.2), rel_tol=0.01)
    # Ten times the budget lowers the bar by log(10).
    lenient, _ = run(events, 2 * 86400, _config(false_alarms_per_year=10.0))
    lenient_state = lenient.links.routes[ROUTE]
    assert math.isclose(
        links.evidence(state, now).threshold - lenient.links.evidence(lenient_state, now).threshold,
        math.log(10),
        rel_tol=1e-6,
    )


# --- missing claims -----------------------------------------------------------------------


def test_a_total_break_on_a_busy_route_is_seen_within_two_minutes() -> None:
    broken = 3 * 86400 + 12 * HOUR  # midday, day four
    events = list(flow(0, broken + HOUR, 130, seed=2, delivered=lambda t: t < broken))
    _, alerts = run(events, broken + HOUR)
    (fired,) = [a for a in alerts if a.state == "firing"]
    first_lost = _first_lost(events, broken)
    assert _since(fired) == first_lost  # since = the first lost claim's dispatch
    assert fired.at - first_lost <= 120
    assert fired.details["evidence"] == ["missing_claims"]
    assert fired.details["lost_share"] == 1.0


def test_a_partial_break_at_night_is_seen_after_a_few_lost_claims() -> None:
    rng = random.Random(7)
    broken = 3 * 86400 + 2 * HOUR  # 02:00, ~25 claims an hour
    events = list(
        flow(
            0, broken + 2 * HOUR, 25, seed=3, delivered=lambda t: t < broken or rng.random() < 0.15
        )
    )
    _, alerts = run(events, broken + 2 * HOUR)
    (fired,) = [a for a in alerts if a.state == "firing"]
    lost = sorted(
        e.dispatched_at.timestamp()
        for _, e in events
        if isinstance(e, HubDispatched) and e.dispatched_at.timestamp() >= T0.timestamp() + broken
    )
    # Seen by the fourth claim dispatched after the break (three lost on average) plus the
    # route's transit tail and one tick.
    assert fired.at <= lost[3] + 20 + 2 * 60
    assert fired.details["evidence"] == ["missing_claims"]


@pytest.mark.slow
def test_stragglers_and_heavy_tails_do_not_page() -> None:
    """Thirty days at 60 claims an hour with 1% of claims delayed up to three hours:
    twenty times the straggler share the defaults are measured on."""
    events = list(flow(0, 30 * 86400, 60, seed=4, transit=lambda r: _transit(r, 0.01)))
    _, alerts = run(events, 30 * 86400)
    assert alerts == []


def test_a_batching_hub_is_learned_and_a_lost_batch_is_seen() -> None:
    """A hub that sends a file every 15 minutes; transit 30 s to 5 min per file."""
    broken = 5 * 86400 + 10 * HOUR
    events = list(
        flow(
            0,
            broken + 2 * HOUR,
            100,
            seed=5,
            delivered=lambda t: t < broken,
            transit=lambda r: r.uniform(30, 300),
            batch_every=900,
        )
    )
    _, alerts = run(events, broken + 2 * HOUR)
    (fired,) = [a for a in alerts if a.state == "firing"]
    first_lost = _first_lost(events, broken)
    # A file is one piece of evidence (its claims travel together): seen once two or three
    # lost files are improbably late.
    assert first_lost <= fired.at <= first_lost + 2 * 900 + 300 + 60


def test_the_flood_after_a_fix_does_not_teach_the_curve_and_a_second_break_is_as_fast() -> None:
    first, fixed, second = 3 * 86400 + 10 * HOUR, 3 * 86400 + 12 * HOUR, 3 * 86400 + 13 * HOUR

    def delivered(t: float) -> bool:
        return not (first <= t < fixed or t >= second)

    events = list(flow(0, second + HOUR, 130, seed=6, delivered=delivered))
    # The stuck claims of the first break arrive in a flood when it is fixed: two a second.
    events += resent(sent_between(events, first, fixed), fixed + 60, 0.5)
    engine, alerts = run(events, second + HOUR)
    fired = [a for a in alerts if a.state == "firing"]
    assert len(fired) == 2
    resolved = [a for a in alerts if a.state == "resolved"]
    assert len(resolved) == 1 and resolved[0].at < fired[1].at
    assert resolved[0].details["written_off"] == 0
    delays = [
        a.at - _first_lost(events, start) for a, start in zip(fired, (first, second), strict=True)
    ]
    assert all(d <= 120 for d in delays), delays
    # The curve still says a healthy claim arrives within ~20 s.
    assert engine.links.routes[ROUTE].curve.quantile(0.99) <= 30


def test_a_second_break_while_the_first_ones_claims_are_still_coming_is_a_new_episode() -> None:
    """The first break's stuck claims are re-sent slowly (11:20 to 11:50); the link breaks
    again at 11:30, before they are all in: a new episode, raised as fast as the first."""
    first, fixed, second = 3 * 86400 + 10 * HOUR, 3 * 86400 + 11 * HOUR, 3 * 86400 + 11.5 * HOUR

    def delivered(t: float) -> bool:
        return not (first <= t < fixed or t >= second)

    events = list(flow(0, second + HOUR, 130, seed=11, delivered=delivered))
    stuck = sent_between(events, first, fixed)
    events += resent(stuck, fixed + 20 * 60, 30 * 60 / len(stuck))
    _, alerts = run(events, second + HOUR)
    fired = [a for a in alerts if a.state == "firing"]
    assert len(fired) == 2
    first_resolution = next(a for a in alerts if a.state == "resolved")
    assert first_resolution.details["still_missing"] > 0  # said, not silent
    assert fired[1].at - _first_lost(events, second) <= 120


def test_an_episode_resolves_only_when_its_missing_claims_arrive_or_are_written_off() -> None:
    broken, back = 3 * 86400 + 12 * HOUR, 3 * 86400 + 13 * HOUR
    config = _config(write_off_after="3h")
    events = list(flow(0, back + 4 * HOUR, 130, seed=8, delivered=lambda t: not broken <= t < back))
    _, alerts = run(events, back + 4 * HOUR, config)
    fired, resolved = alerts
    assert (fired.state, resolved.state) == ("firing", "resolved")
    # Claims flow again from 13:00, but the hour's lost claims never come: the episode stays
    # open until they are written off, three hours after their dispatch, and says so.
    last_lost = max(
        e.dispatched_at.timestamp()
        for _, e in events
        if isinstance(e, HubDispatched)
        and broken <= e.dispatched_at.timestamp() - T0.timestamp() < back
    )
    assert resolved.at >= last_lost + 3 * HOUR
    assert resolved.details["written_off"] >= 100
    assert "written off" in resolved.summary


def test_the_open_alert_keeps_its_figures_current() -> None:
    broken = 3 * 86400 + 12 * HOUR
    events = list(flow(0, broken + HOUR, 130, seed=9, delivered=lambda t: t < broken))
    engine, alerts = run(events, broken + HOUR)
    (fired,) = alerts
    current = engine.book.opened("HubLinkBreak", {"hub_id": "hub-1", "center_id": "center-1"})
    assert current is not None and current.at == fired.at
    assert current.details["missing_claims"] > fired.details["missing_claims"] + 50
    view = engine.links.read(ROUTE, engine.watermark)
    assert current.details["missing_claims"] <= view.missing
    assert set(view.missing_by_client) == {"client-a", "client-b"}
    assert str(current.details["missing_claims"]) in current.summary


# --- silence ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_hub_that_stops_sending_altogether_is_seen_by_silence() -> None:
    """No dispatch reports either: only the seasonal rate of arrivals can tell. Three weeks
    of history at ~130 an hour, then nothing from Monday 11:00."""
    quiet = 21 * 86400 + 11 * HOUR
    events = list(flow(0, quiet, 130, seed=10))
    _, alerts = run(events, quiet + 2 * HOUR)
    (fired,) = alerts
    assert fired.details["evidence"] == ["silence"]
    # At 130 an hour, silence is improbable under the budget after roughly
    # dispersion * log(2V) / 130 h: about a quarter of an hour.
    assert fired.at - (T0.timestamp() + quiet) <= 30 * 60
