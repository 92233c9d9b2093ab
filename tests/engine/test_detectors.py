"""Detectors on generated multi-week scenarios, scored against the ground truth.

Each scenario is three weeks of a realistic service center (see claimflow/tools/simulate.py) with
one fault in the last week; the delays asserted here are the ones the README quotes.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from claimflow.timeutil import HOUR, MINUTE
from claimflow.tools.scoring import score

pytestmark = pytest.mark.slow


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_fault_free_fortnight_raises_no_alert(scenario, seed: int) -> None:  # type: ignore[no-untyped-def]
    run = scenario("normal", days=14, seed=seed)
    assert run.summary.events > 60_000
    assert run.summary.rejected == {}
    assert run.alerts == []


@pytest.mark.parametrize(
    ("name", "max_delay"),
    [
        ("hub-break", 15 * MINUTE),  # overnight, ~14 claims/h: three lost claims
        ("partial-hub-break", 15 * MINUTE),  # half the claims lost, daytime
        ("hub-silent", 60 * MINUTE),  # a ~20 claims/h hub stops sending anything
        ("team-capacity-loss", 4 * HOUR),
        # 30 extra negative answers spread over 6 h from a client with ~200 answers a day:
        # 2 to 4.5 h across seeds (benchmarks/detection_delays.py).
        ("feedback-surge", 5 * HOUR),
    ],
)
def test_each_fault_raises_the_right_alert_in_time(scenario, name: str, max_delay: float) -> None:  # type: ignore[no-untyped-def]
    run = scenario(name)
    result = score(run.alerts, run.truth)
    (detection,) = result.detections
    assert detection.alert is not None, result.render()
    assert detection.delay is not None and detection.delay <= max_delay, result.render()
    assert result.false_alarms == [], result.render()
    # One episode: the matching alert is resolved once, after it fired, and never re-fires.
    key = (detection.alert.alert, tuple(sorted(detection.alert.labels.items())))
    states = [a.state for a in run.alerts if (a.alert, tuple(sorted(a.labels.items()))) == key]
    assert states == ["firing", "resolved"]


def test_hub_break_tells_it_where_when_and_how_many(scenario) -> None:  # type: ignore[no-untyped-def]
    run = scenario("hub-break")
    fault = run.truth["faults"][0]
    (fired,) = run.firing("HubLinkBreak")
    assert fired.labels == {"hub_id": "hub-1", "center_id": "center-1"}
    since = _epoch(fired.details["since"])
    # The first claim of the suspicious run: a claim still in transit when the link broke
    # (a straggler) can start it a little before the fault.
    assert abs(since - _epoch(fault["start"])) <= 5 * MINUTE
    # Seen after a few lost claims; the open alert keeps the count current (see IT view).
    assert fired.details["missing_claims"] >= 1
    assert fired.details["evidence_log_likelihood_ratio"] >= fired.details["threshold"]
    assert "missing_claims" in fired.details["evidence"]
    resolved = next(a for a in run.alerts if a.alert == "HubLinkBreak" and a.state == "resolved")
    assert _epoch(fault["end"]) <= resolved.at <= _epoch(fault["end"]) + HOUR
    # By morning the inflow drop is visible too, at the hub and per team (15%-of-usual story).
    drops = run.firing("InflowDrop")
    assert {"hub_id": "hub-1"} in [a.labels for a in drops]
    assert all(a.details["ratio"] <= 0.5 for a in drops)


def test_silent_hub_is_caught_by_silence_not_missing_claims(scenario) -> None:  # type: ignore[no-untyped-def]
    run = scenario("hub-silent")
    (fired,) = run.firing("HubLinkBreak")
    assert fired.labels == {"hub_id": "hub-2", "center_id": "center-1"}
    assert fired.details["evidence"] == ["silence"]
    # Improbable under the budget: expected / dispersion reached the threshold h.
    assert fired.details["expected_arrivals_in_silence"] >= 1.5 * 12


def test_sla_risk_is_raised_hours_before_the_deadline(scenario) -> None:  # type: ignore[no-untyped-def]
    run = scenario("team-capacity-loss")
    fault = run.truth["faults"][0]
    at_risk = [a for a in run.firing("SlaAtRisk") if a.labels["team"] == fault["labels"]["team"]]
    first = min(at_risk, key=lambda a: a.at)
    deadline = _epoch(first.labels["deadline"])
    assert deadline - first.at >= 2 * HOUR
    assert first.details["projected_misses"] >= 5
    assert first.details["throughput_per_hour"] < first.details["needed_per_hour"]
    # The deadline really was missed: the resolution at the deadline says by how much.
    ended = next(
        a
        for a in run.alerts
        if a.state == "resolved" and a.alert == "SlaAtRisk" and a.labels == first.labels
    )
    assert ended.details["missed"] >= 5


def test_mixed_scenario_detects_every_fault_without_false_alarms(scenario) -> None:  # type: ignore[no-untyped-def]
    run = scenario("mixed")
    result = score(run.alerts, run.truth)
    assert len(result.detections) == 5
    assert all(d.alert is not None for d in result.detections), result.render()
    assert result.false_alarms == [], result.render()


def test_no_alarm_while_the_baseline_warms_up(config) -> None:  # type: ignore[no-untyped-def]
    """Two days of data, then nothing arrives: no seasonal baseline yet, so no InflowDrop."""
    from datetime import date

    from claimflow.contract.events import decode
    from claimflow.engine import Engine
    from claimflow.tools.simulate import Simulator

    sim = Simulator(config, "normal", 2, date(2026, 11, 2), seed=3)
    engine = Engine(config)
    last = 0.0
    for _, event in sim.events():
        if event["type"] != "claim_arrived":
            continue
        parsed = decode(str.encode(__import__("json").dumps(event)))
        assert engine.ingest(parsed) is None  # type: ignore[arg-type]
        last = parsed.time.timestamp()  # type: ignore[union-attr]
    engine.advance_to(last + 6 * HOUR)
    assert [a for a in engine.drain_alerts() if a.alert == "InflowDrop"] == []


def test_feedback_surge_scenario_has_no_false_alarm(scenario) -> None:  # type: ignore[no-untyped-def]
    """Was a strict xfail: the flat-share test let chance clusters through. The
    risk-adjusted CUSUM expects late claims' negatives and keeps to its budget."""
    run = scenario("feedback-surge", seed=3)
    assert score(run.alerts, run.truth).false_alarms == []
