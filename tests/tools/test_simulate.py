"""The simulator's realism options, its physical limits and its streamed output, and the
scoring functions the detection benchmark uses (on hand-made alert and arrival lists)."""

from __future__ import annotations

import json
import math
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from claimflow.config import Config, load_config
from claimflow.engine import Alert
from claimflow.timeutil import DAY, HOUR, MINUTE, iso
from claimflow.tools import simulate
from claimflow.tools.scoring import (
    QUARTER,
    YEAR,
    first_episode_after,
    offset_rule,
    rate_per,
    timings,
)
from claimflow.tools.simulate import (
    Realism,
    SimulationError,
    Simulator,
    transit_tail,
    write_scenario,
)

START = date(2026, 11, 2)  # a Monday


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_straggler_share_and_delay(config: Config) -> None:
    sim = Simulator(config, "normal", 5, START, 4, 3000, realism=Realism(straggler_share=0.02))
    sim.events()
    c = sim.claims
    stragglers = [i for i in range(len(c)) if c.flags[i] & 2]
    share = len(stragglers) / len(c)
    assert 0.015 < share < 0.025, share
    # healthy transit is capped at 30 min; a straggler adds at least 2 min on top of it
    assert all(c.arrived[i] - c.dispatched[i] >= 2 * MINUTE for i in stragglers)
    assert max(c.arrived[i] - c.dispatched[i] for i in stragglers) > HOUR  # a heavy tail


def test_batching_hub_dispatches_files_that_travel_together(config: Config) -> None:
    real = Realism(straggler_share=0.0, batching={"hub-1": 15 * MINUTE})
    sim = Simulator(config, "normal", 2, START, 2, 2000, realism=real)
    events = [e for _, e in sim.events()]
    files: dict[str, set[str]] = {}
    for e in events:
        if e["type"] == "hub_dispatched" and e["hub_id"] == "hub-1":
            at = _epoch(e["dispatched_at"])
            assert (at - sim.t0) % (15 * MINUTE) == pytest.approx(0, abs=1e-3)
            files.setdefault(e["dispatched_at"], set()).add(e["claim_id"])
    assert max(len(ids) for ids in files.values()) > 10  # many claims share one file
    arrived = {e["claim_id"]: e["arrived_at"] for e in events if e["type"] == "claim_arrived"}
    for ids in files.values():
        assert len({arrived[i] for i in ids if i in arrived}) <= 1  # one transit per file
    others = {e["dispatched_at"] for e in events if "dispatched_at" in e and e["hub_id"] == "hub-2"}
    assert len(others) > 100  # hub-2 still dispatches claim by claim


def test_duplicate_dispatches_are_present(config: Config) -> None:
    real = Realism(duplicate_share=0.02)
    sim = Simulator(config, "normal", 3, START, 3, 2000, realism=real)
    dispatches = [e for _, e in sim.events() if e["type"] == "hub_dispatched"]
    per_claim = Counter(e["claim_id"] for e in dispatches)
    twice = [cid for cid, n in per_claim.items() if n == 2]
    assert 0.01 < len(twice) / len(per_claim) < 0.03
    ids = Counter(e["event_id"] for e in dispatches)
    assert any(n == 2 for n in ids.values())  # redelivered as is
    assert any(i.startswith("d2-") for i in ids)  # re-dispatched under a new id


def test_holidays_have_low_inflow(config: Config) -> None:
    holiday = START + timedelta(days=2)  # a Wednesday
    real = Realism(holidays=(holiday,))
    sim = Simulator(config, "normal", 7, START, 5, 3000, realism=real)
    sim.events()
    days = Counter(
        (datetime.fromtimestamp(t, sim.tz).date() - START).days for t in sim.claims.received
    )
    assert days[2] < 0.35 * days[1] and days[2] < 0.35 * days[3]
    assert holiday.isoformat() in sim.truth()["realism"]["holidays"]  # with the configured ones


def test_overnight_hold_sends_the_night_at_six(config: Config) -> None:
    sim = Simulator(config, "normal", 2, START, 6, 2000, realism=Realism(overnight_hold=("hub-2",)))
    hours = Counter(
        datetime.fromisoformat(e["dispatched_at"]).astimezone(sim.tz).hour
        for _, e in sim.events()
        if e["type"] == "hub_dispatched" and e["hub_id"] == "hub-2"
    )
    assert not any(hours[h] for h in (23, 0, 1, 2, 3, 4, 5))
    assert hours[6] > hours[7]  # the morning backlog


@pytest.mark.parametrize(
    "scenario",
    [
        "hub-break",
        "partial-hub-break",
        "back-to-back-break",
        "hub-silent",
        "team-capacity-loss",
        "feedback-surge",
        "inflow-drop",
    ],
)
def test_truth_has_a_physical_limit_after_the_start(config: Config, scenario: str) -> None:
    sim = Simulator(config, scenario, 10, START, 7, 1500)
    sim.events()
    faults = sim.truth()["faults"]
    assert faults
    for fault in faults:
        start, limit = _epoch(fault["start"]), _epoch(fault["physical_limit"])
        assert start <= limit <= _epoch(fault["end"]), fault
        assert fault["physical_limit_basis"]


def test_link_break_limit_is_the_kth_lost_claim_plus_the_transit_tail(config: Config) -> None:
    sim = Simulator(config, "hub-break", 10, START, 8, 2000)
    events = [e for _, e in sim.events()]
    (fault,) = sim.truth()["faults"]
    start, end = _epoch(fault["start"]), _epoch(fault["end"])
    arrived = {e["claim_id"]: _epoch(e["arrived_at"]) for e in events if "arrived_at" in e}
    lost = sorted(
        _epoch(e["dispatched_at"])
        for e in events
        if e["type"] == "hub_dispatched"
        and e["hub_id"] == fault["labels"]["hub_id"]
        and start <= _epoch(e["dispatched_at"]) < end
        and arrived.get(e["claim_id"], math.inf) > end
    )
    # the route's volume: ~1,700 claims a day, k = ceil(ln(N) / ln(1000)) = 2
    assert "lost claim 2 " in fault["physical_limit_basis"]
    assert _epoch(fault["physical_limit"]) == pytest.approx(lost[1] + transit_tail(), abs=1e-3)
    assert 300 < transit_tail() < 600  # 90 s * exp(0.5 * 3.09)


@pytest.mark.slow
def test_simulate_streams_its_output(config: Config, tmp_path: Path) -> None:
    """Memory grows with claims (compact columns), not with events: writing four times the
    days costs well under four times the peak; and the file is in emit order."""

    def peak(days: int) -> tuple[int, Path]:
        sim = Simulator(config, "normal", days, START, 9, 1500)
        out = tmp_path / f"{days}.jsonl"
        tracemalloc.start()
        write_scenario(sim, out)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, out

    short, _ = peak(3)
    long, out = peak(12)
    assert long < 2.0 * short, (short, long)
    previous = 0.0
    with out.open() as fh:
        for line in fh:
            e = json.loads(line)
            at = next(v for k, v in e.items() if k.endswith("_at") and k != "hub_received_at")
            t = _epoch(at)
            assert t >= previous - 25  # emit order: event time plus up to 20 s of jitter
            previous = max(previous, t)


class _HeldSort:
    """The implementation `_Spill` replaced: every event held, one sort by emit key."""

    def __init__(self, folder: Path, t0: float) -> None:
        self.rows: list[tuple[float, str]] = []

    def add(self, key: float, line: str) -> None:
        self.rows.append((key, line))

    def close(self) -> None:
        pass

    def sorted_lines(self) -> Iterator[tuple[float, str]]:
        self.rows.sort(key=lambda pair: pair[0])
        yield from self.rows


def test_streamed_output_is_the_held_sort_byte_for_byte(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spilling per emit day and sorting each day alone writes the very bytes that holding
    every event and sorting them once wrote, for the same seed (faults, stragglers hours
    late across midnight, duplicates and batching included)."""
    realism = Realism(straggler_share=0.02, duplicate_share=0.01, batching={"hub-2": 15 * MINUTE})

    def written(name: str) -> bytes:
        sim = Simulator(config, "mixed", 14, START, 11, 700, realism=realism)
        out = tmp_path / name
        write_scenario(sim, out)
        return out.read_bytes()

    streamed = written("streamed.jsonl")
    monkeypatch.setattr(simulate, "_Spill", _HeldSort)
    held = written("held.jsonl")
    assert streamed == held
    lines = streamed.splitlines()
    days = {
        next(v for k, v in json.loads(line).items() if k.endswith("_at"))[:10]
        for line in lines[::50]
    }
    assert len(days) >= 14 and len(lines) > 20_000  # the spill merged many day files


def test_simulate_cli_writes_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    """Same seed, same file, whatever the process's hash seed (no set order leaks out)."""
    import os
    import subprocess

    from tests.live_harness import CLI

    args = ("simulate", "--scenario", "normal", "--days", "3", "--seed", "5")
    args += ("--claims-per-day", "800", "--no-progress")
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run{hash_seed}.jsonl"
        subprocess.run(
            [*CLI, *args, "--out", str(out)],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            check=True,
            capture_output=True,
            timeout=300,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") > 3000


def test_realism_refuses_nonsense() -> None:
    with pytest.raises(SimulationError):
        Realism(straggler_share=1.5)
    with pytest.raises(SimulationError):
        Realism(batching={"hub-1": 0})


# --- scoring ------------------------------------------------------------------------------

T0 = 1_800_000_000.0


def _alert(name: str, at: float, **labels: str) -> Alert:
    return Alert(name, "firing", at, labels, "")  # type: ignore[arg-type]


def test_timings_use_the_first_matching_alert_and_the_limit() -> None:
    truth = {
        "faults": [
            {
                "kind": "hub_link_break",
                "start": iso(T0),
                "end": iso(T0 + HOUR),
                "physical_limit": iso(T0 + 90),
                "labels": {"hub_id": "hub-1", "center_id": "center-1"},
                "expect": "HubLinkBreak",
                "allow": [],
            }
        ]
    }
    alerts = [
        _alert("HubLinkBreak", T0 - 60, hub_id="hub-1", center_id="center-1"),  # before: no
        _alert("HubLinkBreak", T0 + 100, hub_id="hub-2", center_id="center-1"),  # other hub
        _alert("HubLinkBreak", T0 + 240, hub_id="hub-1", center_id="center-1"),
    ]
    (t,) = timings(alerts, truth)
    assert (t.delay, t.limit, t.excess) == (240, 90, 150)
    (missed,) = timings(alerts[:2], truth)
    assert missed.delay is None and missed.excess is None


def test_rates_per_route_year_and_scope_quarter() -> None:
    assert rate_per(2, 2, YEAR, YEAR) == 1.0
    assert rate_per(3, 6, 2 * QUARTER, QUARTER) == 0.25
    with pytest.raises(ValueError):
        rate_per(1, 0, YEAR, YEAR)


def test_offset_rule_fires_when_the_hour_halves_against_last_week() -> None:
    stop = T0 + 8 * DAY
    steady = [T0 + 30 + 60 * i for i in range(int((stop - T0) / 60))]  # one a minute
    episodes = offset_rule({"hub-1": steady}, T0, stop + 2 * HOUR)["hub-1"]
    # 30 an hour is half of last week's 60: the rule holds from the 31st silent minute
    fired = first_episode_after(episodes, stop)
    assert fired is not None and 30 * MINUTE <= fired - stop <= 31 * MINUTE
    assert all(opened >= stop for opened, _ in episodes)  # nothing while it was steady
    assert first_episode_after(episodes, stop + 3 * HOUR) is None
