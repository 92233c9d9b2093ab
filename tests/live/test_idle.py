"""With no events at all, the wall clock still moves event time on: silence is noticed."""

from __future__ import annotations

import json
from datetime import date

import pytest

from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.engine import Engine
from claimflow.live.idle import IdleClock
from claimflow.timeutil import ManualClock
from claimflow.tools.simulate import Simulator


def _fed(config: Config) -> Engine:
    """Nine ordinary days, then the feed stops at 10:00 on the tenth (a Wednesday)."""
    engine = Engine(config)
    for _, raw in Simulator(config, "normal", 10, date(2026, 11, 2), seed=6).events():
        event = decode(json.dumps(raw))
        if (
            raw.get(
                "arrived_at",
                raw.get("dispatched_at", raw.get("completed_at", raw.get("responded_at", ""))),
            )
            > "2026-11-11T10:00"
        ):
            break
        engine.ingest(event)  # type: ignore[arg-type]
    engine.drain_alerts()
    return engine


@pytest.mark.slow
def test_a_silent_feed_is_noticed_by_the_wall_clock(config: Config) -> None:
    engine = _fed(config)
    clock = ManualClock(engine.newest + 30)  # wall time: half a minute after the last event
    idle = IdleClock(engine, clock)
    assert not idle.tick()  # not idle long enough yet
    fired = []
    for _ in range(120):  # two hours of wall time, a tick a minute, no events at all
        clock.advance(60)
        idle.tick()
        fired += [a for a in engine.drain_alerts() if a.state == "firing"]
    breaks = {tuple(sorted(a.labels.items())) for a in fired if a.alert == "HubLinkBreak"}
    assert breaks == {
        (("center_id", "center-1"), ("hub_id", "hub-1")),
        (("center_id", "center-1"), ("hub_id", "hub-2")),
    }
    assert all(a.details["evidence"] == ["silence"] for a in fired if a.alert == "HubLinkBreak")
    # Event time trails the wall clock by the grace, never more.
    assert engine.newest == clock.now() - idle.grace


@pytest.mark.slow
def test_events_flowing_keep_the_clock_out_of_it(config: Config) -> None:
    engine = _fed(config)
    clock = ManualClock(engine.newest + 10)
    idle = IdleClock(engine, clock, idle_after=60)
    newest = engine.newest
    for _ in range(10):
        clock.advance(30)
        idle.event_taken()  # events keep coming every 30 s of wall time
        assert not idle.tick()
    assert engine.newest == newest


@pytest.mark.slow
def test_caught_up_event_time_runs_on_with_the_wall_clock_at_the_measured_lag(
    config: Config,
) -> None:
    engine = _fed(config)
    newest = engine.newest
    clock = ManualClock(newest + 3)
    idle = IdleClock(engine, clock)
    idle.observe(newest + 8, newest - 2)  # read 10 s after it happened
    idle.observe(newest + 3, newest)  # read 3 s after: the freshest lag
    assert idle.lag(clock.now()) == 3
    assert not idle.tick(lambda: False)  # not caught up, not idle: nothing moves
    assert engine.watermark == newest - engine.lateness
    clock.advance(40)
    assert idle.tick(lambda: True)
    # Where an event read now, 3 s after it happened, would put the watermark.
    assert engine.watermark == clock.now() - 3 - engine.lateness
    # The smallest lag is kept for one 5-minute bucket after its own; then the latest counts.
    clock.advance(900)
    idle.observe(clock.now(), clock.now() - 7)
    assert idle.lag(clock.now()) == 7


@pytest.mark.slow
def test_a_backfill_read_long_after_it_happened_never_runs_on_by_the_wall_clock(
    config: Config,
) -> None:
    engine = _fed(config)
    newest, watermark = engine.newest, engine.watermark
    clock = ManualClock(newest + 86400)  # history, read a day later
    idle = IdleClock(engine, clock)
    idle.observe(clock.now(), newest)
    clock.advance(30)  # the backfill pauses, caught up
    assert not idle.tick(lambda: True)
    assert (engine.newest, engine.watermark) == (newest, watermark)
