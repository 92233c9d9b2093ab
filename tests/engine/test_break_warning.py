"""SlaAtRisk on a break day (engine/impact.py SameDayInflow, engine/sla_risk.py's pace rules),
on the scenarios of benchmarks/break_impact.py replayed through the real engine:

* the night break (01:00-10:00, 15% delivered) with the receiving team at 30% of its
  people: SlaAtRisk for its 18:00 deadline fires before the link comes back, at least 2 h
  before 18:00, its projected misses near what the team then misses;
* the same breaks at full staff (the flood is clearable): no SlaAtRisk at all on the break
  day. These are the runs where the first version (branch impact13) fired for claims
  cleared on time: a stale evening pace behind a night break, a pace fallen with the
  inflow during a midday break.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import date, datetime
from functools import cache
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from claimflow.config import load_config
from claimflow.engine import Alert, Engine
from claimflow.engine.impact import INFLOW_MIN_DAYS, SameDayInflow
from claimflow.timeutil import HOUR
from claimflow.tools.replay import replay

TZ = ZoneInfo("Europe/London")


@cache
def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "break_impact.py"
    spec = importlib.util.spec_from_file_location("break_impact_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@cache
def _run(start_h: float, end_h: float, share: float | None, seed: int) -> dict[str, Any]:
    """The benchmark's scenario: its receiving team, the truth, the break day's alerts."""
    b = _bench()
    config = load_config()
    args = SimpleNamespace(history_days=14, claims_per_day=2000)
    probe, lines, day = b._simulate(
        config, b.Case("probe", start_h, end_h, None, False), seed, args, None, 0.85
    )
    deadline = b._at(config, day, 18.0)
    team, _ = b._receiving_team(probe, deadline)
    sim = probe
    if share is not None:
        case = b.Case("short", start_h, end_h, share, True)
        sim, lines, day = b._simulate(config, case, seed, args, team, 0.85)
    alerts: list[Alert] = []
    engine = Engine(config)
    replay(config, (line.encode() for line in lines), alerts.append, lambda *a: None, engine=engine)
    day_start = b._at(config, day, 0.0) - 3 * HOUR
    fired = [
        a
        for a in alerts
        if a.alert == "SlaAtRisk" and a.state == "firing" and day_start <= a.at <= deadline
    ]
    late = {
        (a.labels["team"], a.labels["deadline"]): b._team_misses(
            sim, a.labels["team"], b._ts(a.labels["deadline"])
        )[1]
        for a in fired
    }
    return {
        "team": team,
        "deadline": deadline,
        "back": b._at(config, day, end_h),
        "truth": b._team_misses(sim, team, deadline)[1],
        "fired": fired,
        "late": late,
    }


@pytest.mark.slow
def test_short_staffed_night_break_warns_before_the_link_returns() -> None:
    run = _run(1.0, 10.0, 0.3, 3)
    mine = [
        a
        for a in run["fired"]
        if a.labels["team"] == run["team"] and _bench()._ts(a.labels["deadline"]) == run["deadline"]
    ]
    assert mine, run["fired"]
    first = mine[0]
    assert first.at < run["back"]
    assert first.at <= run["deadline"] - 2 * HOUR
    truth = run["truth"]
    assert truth > 20
    # Within 30% (the benchmark's table says how close each seed comes: the pace measured
    # in the first two working hours is itself uncertain by about that much).
    assert abs(first.details["projected_misses"] - truth) <= 0.3 * truth, (first, truth)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("start_h", "end_h", "seed"),
    [(1.0, 10.0, 3), (11.0, 14.0, 1), (11.0, 14.0, 3)],
    ids=["night-seed3", "midday-seed1", "midday-seed3"],
)
def test_a_clearable_break_raises_no_sla_at_risk(start_h: float, end_h: float, seed: int) -> None:
    run = _run(start_h, end_h, None, seed)
    assert run["truth"] == 0
    assert run["fired"] == [], run["late"]


def test_same_day_inflow_expects_a_low_quantile_of_the_last_business_days() -> None:
    """Per day, the claims that reached the hub later than now; the expectation is the low
    quantile of those counts (the third lowest of ten), only with enough days behind it."""
    inflow = SameDayInflow(TZ)
    due_clock = 18 * HOUR

    def local(day: date, hours: float) -> float:
        return datetime.combine(day, datetime.min.time(), TZ).timestamp() + hours

    days = [date(2026, 11, d) for d in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13)]
    # day k: 10 claims reach the hub at 07:00, and k+1 at 11:00 (after 10:00)
    for k, day in enumerate(days):
        for i in range(10):
            inflow.add("motor", local(day, due_clock), local(day, 7 * HOUR + i))
        for i in range(k + 1):
            inflow.add("motor", local(day, due_clock), local(day, 11 * HOUR + i))
    today = date(2026, 11, 16)
    got = inflow.expected("motor", local(today, 10 * HOUR))
    assert got == {local(today, due_clock): 3.0}  # counts 1..10: the third lowest
    # before 07:00 every claim of those days is still to come: 11..20, third lowest 13
    assert inflow.expected("motor", local(today, 6 * HOUR)) == {local(today, due_clock): 13.0}
    assert inflow.expected("motor", local(today, 19 * HOUR)) == {}  # deadline passed
    assert inflow.expected("property", local(today, 10 * HOUR)) == {}  # no history

    young = SameDayInflow(TZ)
    for day in days[: INFLOW_MIN_DAYS - 1]:
        young.add("motor", local(day, due_clock), local(day, 11 * HOUR))
    assert young.expected("motor", local(today, 10 * HOUR)) == {}
