"""InflowDrop: public holidays from the `holidays` package, one episode at the hub, the budget.

Small generated arrival streams (no simulator): three weeks of steady weekday inflow, then
the case under test. Real engine, real configuration parsing.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from claimflow.config import Config, ConfigError, parse_config
from claimflow.contract.events import ClaimArrived
from claimflow.engine import Alert, Engine
from claimflow.engine.inflow import QUARTER

FEEDS = {"hub-1": ("motor", "property"), "hub-2": ("international-settlements",)}


def _config(holidays: Any) -> Config:
    return parse_config(
        {
            "timezone": "Europe/London",
            "holidays": holidays,
            "teams": ["motor", "property", "international-settlements"],
            "hubs": [
                {"id": "hub-1", "centers": ["center-1"]},
                {"id": "hub-2", "centers": ["center-1"]},
            ],
        }
    )


def _run(config: Config, first: date, days: int, stop: tuple[date, str] | None) -> list[Alert]:
    """40 arrivals an hour per (hub, team) route, 08:00-18:00 on weekdays. `stop` (day, hub):
    that hub delivers nothing from 10:00 that day."""
    engine = Engine(config)
    n = 0
    alerts: list[Alert] = []
    for d in range(days):
        day = first + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        base = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
        events = []
        for hub, teams in FEEDS.items():
            for i, team in enumerate(teams):
                for k in range(400):
                    at = base + timedelta(seconds=k * 90 + 7 * i)
                    if stop == (day, hub) and at.hour >= 10:
                        continue
                    n += 1
                    events.append(
                        ClaimArrived(
                            event_id=f"a{n}",
                            claim_id=f"c{n}",
                            client_id="x",
                            hub_id=hub,
                            team=team,
                            claim_type="motor",
                            hub_received_at=at - timedelta(minutes=1),
                            arrived_at=at,
                        )
                    )
        for event in sorted(events, key=lambda e: e.arrived_at):
            assert engine.ingest(event) is None
        engine.advance_to(base.timestamp() + 10 * 3600)
        alerts += engine.drain_alerts()
    return [a for a in alerts if a.alert == "InflowDrop"]


@pytest.mark.slow
def test_a_public_holiday_from_the_package_silences_inflow_drop() -> None:
    """Christmas Day 2026 is a Friday: nothing arrives. With the package's calendar for
    England it is a holiday, no alert; with no holidays configured, the same data fires."""
    first, christmas = date(2026, 12, 1), date(2026, 12, 25)
    quiet_config = _config({"country": "GB", "subdivision": "ENG"})
    assert christmas in quiet_config.holidays and date(2026, 12, 28) in quiet_config.holidays
    # The stream stops on Christmas morning (a hub that is off for the day).
    quiet = _run(quiet_config, first, 25, (christmas, "hub-1"))
    assert quiet == []
    loud = _run(_config([]), first, 25, (christmas, "hub-1"))
    assert [a.labels for a in loud if a.state == "firing"] == [{"hub_id": "hub-1"}]


def test_the_configurations_own_dates_still_count_in_both_forms() -> None:
    assert _config(["2026-12-24"]).holidays == [date(2026, 12, 24)]
    mixed = _config({"country": "DE", "subdivision": "BY", "dates": ["2026-12-24"]})
    assert date(2026, 12, 24) in mixed.holidays
    assert date(2026, 1, 6) in mixed.holidays  # Epiphany: Bavaria, not all of Germany
    assert date(2026, 1, 6) not in _config({"country": "DE"}).holidays


def test_an_unknown_country_is_a_clear_error() -> None:
    with pytest.raises((ConfigError, ValueError), match="XX"):
        _config({"country": "XX"})


def test_a_hub_drop_is_one_episode_at_the_hub_naming_its_teams() -> None:
    """hub-1 stops on an ordinary Wednesday: its two teams' inflow halves or worse, but the
    page is one episode at the hub, whose details name both teams; hub-2's team is quiet."""
    stop_day = date(2026, 11, 25)
    alerts = _run(_config([]), date(2026, 11, 2), 24, (stop_day, "hub-1"))
    firing = [a for a in alerts if a.state == "firing"]
    assert [a.labels for a in firing] == [{"hub_id": "hub-1"}]
    assert firing[0].details["teams"] == ["motor", "property"]
    assert "motor, property" in firing[0].summary


def test_a_fault_free_stretch_raises_nothing() -> None:
    assert _run(_config([]), date(2026, 11, 2), 24, None) == []


def test_the_budget_sets_the_per_window_p_value() -> None:
    engine = Engine(_config([]))
    s = engine.inflow.settings
    assert s.false_alarms_per_quarter == 1.0 and s.max_p_value is None
    # One hourly window per hour, a quarter of them for the one false alarm allowed.
    assert math.isclose(engine.inflow.max_p_value, 3600 / QUARTER)
    assert math.isclose(QUARTER / 3600, 2191.5)
