"""NegativeFeedbackSurge, risk-adjusted: the expectation follows the claim, the budget sets
the threshold. Hand-made answer streams driven straight into the detector (plain Python)."""

from __future__ import annotations

import math
import random

import pytest

from claimflow.config import NegativeFeedbackSettings
from claimflow.engine.alerts import Alert, AlertBook
from claimflow.engine.detector import Arrived, Completed
from claimflow.engine.feedback import (
    MAX_STRENGTH,
    Feedback,
    age_bin,
    alternative_share,
    bound_threshold,
    budget_threshold,
    cusum_step,
    drift,
    shrinkage_strength,
)
from claimflow.timeutil import DAY, HOUR

T0 = 1_793_577_600.0  # 2026-11-02 00:00 UTC, a Monday
STEP = 300.0


def _arrive(fb: Feedback, claim_id: str, team: str, received: float, due: float) -> None:
    """The engine's Arrived fact for a claim that reached the team as it reached the hub."""
    fb.on_arrived(
        Arrived(claim_id, team, "hub-1", "client", received, received, due, False, True, True)
    )


def _complete(fb: Feedback, claim_id: str, t: float) -> None:
    fb.on_completed(Completed(claim_id, "motor", t, True, True))


class _Stream:
    settings = NegativeFeedbackSettings()

    """A client's claims and answers: on-time claims (1 h) are rarely negative, late ones
    (15 h, past due) mostly; answers come during the working day."""

    def __init__(self, seed: int = 1) -> None:
        self.book = AlertBook()
        self.fb = Feedback(self.settings, 300.0, self.book)
        self.rng = random.Random(seed)
        self.n = 0
        self.alerts: list[Alert] = []
        self.now = T0

    def answer(self, t: float, age_hours: float, negative: bool, client: str = "a") -> None:
        self.n += 1
        cid = f"c{self.n}"
        received = t - age_hours * HOUR - 600
        due = received + 8 * HOUR
        _arrive(self.fb, cid, "motor", received, due)
        _complete(self.fb, cid, received + age_hours * HOUR)
        self.fb.on_response(client, None, 1 if negative else 5, t, True, cid)

    def until(self, t: float) -> None:
        while self.now + STEP <= t:
            self.now += STEP
            self.fb.evaluate(self.now, T0)
            self.fb.expire(self.now)
            self.alerts += self.book.drain()

    def ordinary_day(self, day: int, late_share: float = 0.3) -> None:
        """40 answers from 08:00 to 18:00: on-time 5% negative, late 60% negative."""
        for k in range(40):
            t = T0 + day * DAY + 8 * HOUR + k * 900 + self.rng.uniform(0, 600)
            self.until(t)
            late = self.rng.random() < late_share
            self.answer(t, 15.0 if late else 1.0, self.rng.random() < (0.6 if late else 0.05))
        self.until(T0 + (day + 1) * DAY)

    def surges(self) -> list[Alert]:
        return [a for a in self.alerts if a.alert == "NegativeFeedbackSurge"]


def _history(days: int = 15, **settings: object) -> _Stream:
    stream = _Stream()
    if settings:
        stream.settings = NegativeFeedbackSettings.model_validate(settings)
        stream.fb = Feedback(stream.settings, 300.0, stream.book)
    for day in range(days):
        stream.ordinary_day(day)
    return stream


def test_the_risk_class_is_the_claims_age_and_whether_it_was_late() -> None:
    fb = Feedback(NegativeFeedbackSettings(), 300.0, AlertBook())
    _arrive(fb, "c1", "motor", T0, T0 + 8 * HOUR)
    assert fb.risk_class("c1", T0 + 3 * HOUR) == ("age", age_bin(3 * HOUR), False)
    _complete(fb, "c1", T0 + 15 * HOUR)
    assert fb.risk_class("c1", T0 + 20 * HOUR) == ("age", age_bin(15 * HOUR), True)
    assert age_bin(12 * HOUR) == age_bin(18 * HOUR) != age_bin(9 * HOUR)
    assert fb.risk_class(None, T0 + 9 * HOUR)[0] == "week"  # no claim: time of week
    assert fb.team_of("c1") == "motor"


def test_budget_arithmetic() -> None:
    # Siegmund: (e^h - h - 1) / D = n / b, solved for h.
    for n, d, b in ((4000, 0.04, 1.0), (4000, 0.04, 2.0), (90_000, 0.1, 1.0)):
        h = budget_threshold(n, d, b)
        assert math.isclose((math.exp(h) - h - 1) / d, n / b, rel_tol=1e-9)
    assert budget_threshold(4000, 0.04, 2.0) < budget_threshold(4000, 0.04, 1.0)
    assert math.isclose(drift(0.1, 3.0), math.log(1.2) - 0.1 * math.log(3))
    # A negative answer adds log R - log(1 - p + R p); any other subtracts the second term.
    assert math.isclose(cusum_step(0.0, True, 0.1, 3.0), math.log(3) - math.log(1.2))
    assert cusum_step(0.0, False, 0.1, 3.0) == 0.0
    assert math.isclose(cusum_step(1.0, False, 0.1, 3.0), 1 - math.log(1.2))


def test_the_budget_holds_when_the_model_is_right() -> None:
    """Answers drawn with their own known probabilities: the CUSUM at the budget's threshold
    raises about b false alarms over n answers (here b = 5 over 200,000 answers)."""
    rng = random.Random(7)
    n, budget = 200_000, 5.0
    mean_drift = sum(drift(p, 3.0) for p in (0.02, 0.05, 0.3, 0.6)) / 4
    h, s, alarms = budget_threshold(n, mean_drift, budget), 0.0, 0
    for _ in range(n):
        p = rng.choice((0.02, 0.05, 0.3, 0.6))
        s = cusum_step(s, rng.random() < p, p, 3.0)
        if s >= h:
            alarms, s = alarms + 1, 0.0
    assert 1 <= alarms <= 2 * budget, alarms  # an approximation: the order is what counts


def test_the_sharper_bound_counts_negative_starts_and_keeps_the_budget() -> None:
    """`threshold: negatives`: h = log(n q / b), q the answers' mean negative share under the
    alternative. Lower than log(n / b) by log(1 / q), and still a guarantee: answers drawn
    with their own known probabilities raise fewer than b false alarms over n answers (here
    b = 50 over 200,000 answers: about ten, as the bound ignores how much the runs overlap)."""
    assert math.isclose(alternative_share(0.1, 3.0), 0.3 / 1.2)
    assert math.isclose(bound_threshold(4000, 1.0), math.log(4000))
    assert math.isclose(bound_threshold(4000, 1.0, 0.25), math.log(1000))
    rng = random.Random(11)
    shares = (0.02, 0.05, 0.3, 0.6)
    n, budget, odds = 200_000, 50.0, 3.0
    q = sum(alternative_share(p, odds) for p in shares) / len(shares)
    h, s, alarms = bound_threshold(n, budget, q), 0.0, 0
    assert h < bound_threshold(n, budget) - 0.5
    for _ in range(n):
        p = rng.choice(shares)
        s = cusum_step(s, rng.random() < p, p, odds)
        if s >= h:
            alarms, s = alarms + 1, 0.0
    assert 1 <= alarms <= budget, alarms  # a bound on the expectation: well inside it


def test_classes_are_pooled_unless_they_differ_beyond_chance() -> None:
    """Empirical Bayes, the prior's strength from the classes' own spread: twelve classes
    drawn at the same 7% share (only chance apart) are pooled; a 5% and a 30% class with
    hundreds of answers each keep their own shares (strength near the least given)."""
    rng = random.Random(3)
    same = []
    for _ in range(12):
        n = rng.randint(50, 400)
        same.append((float(n), float(sum(rng.random() < 0.07 for _ in range(n)))))
    pooled = sum(neg for _, neg in same) / sum(n for n, _ in same)
    assert shrinkage_strength(same, pooled, 20.0) >= 1000
    apart = [(500.0, 25.0), (500.0, 150.0)]
    assert shrinkage_strength(apart, 175 / 1000, 20.0) < 30
    assert shrinkage_strength([(500.0, 25.0)], 0.05, 20.0) == 20.0  # one class: nothing learned
    assert shrinkage_strength([(100.0, 7.0), (100.0, 7.0)], 0.07, 20.0) == MAX_STRENGTH


def test_a_day_of_late_claims_does_not_fire() -> None:
    """A bad day for lateness: 80% of answers are about late claims, so negatives are three
    times the usual count, but each is expected for its claim: no surge."""
    stream = _history()
    stream.ordinary_day(15, late_share=0.8)
    stream.ordinary_day(16, late_share=0.8)
    assert stream.surges() == []
    assert stream.fb.threshold(("client", "a")) > 5


@pytest.mark.parametrize(
    ("threshold", "minutes"), [("approximate", 130), ("negatives", 160), ("bound", 300)]
)
def test_a_surge_on_on_time_claims_fires(threshold: str, minutes: int) -> None:
    """15 extra negative answers over 6 hours about claims handled on time, on a client that
    answers only 40 times a day: raised, with the figures in the details, then resolved once
    answers are normal. At this volume the budget (1 false alarm a quarter) needs about four
    extra negatives with the approximate threshold (125 min here; the issue's 90 minutes
    is not met at this volume), 145 min with the sharper bound over negative starts, about
    three hours with the default bound."""
    stream = _history(threshold=threshold)
    start = T0 + 15 * DAY + 9 * HOUR
    extra = [start + k * 6 * HOUR / 15 for k in range(15)]
    day = 15
    for k in range(40):
        t = T0 + day * DAY + 8 * HOUR + k * 900
        for e in [x for x in extra if x <= t]:
            stream.until(e)
            stream.answer(e, 1.0, True)
            extra.remove(e)
        stream.until(t)
        stream.answer(t, 1.0, stream.rng.random() < 0.05)
    stream.until(T0 + 16 * DAY)
    for d in range(16, 18):
        stream.ordinary_day(d)
    surges = [a for a in stream.surges() if a.labels == {"client_id": "a"}]
    assert [a.state for a in surges] == ["firing", "resolved"], surges
    fired = surges[0]
    assert fired.labels == {"client_id": "a"}
    assert fired.at - start <= minutes * 60, (fired.at - start) / 60
    assert fired.details["negative_responses"] > fired.details["expected_negative"]


def test_a_fault_free_fortnight_is_silent() -> None:
    stream = _history(29)
    assert stream.surges() == []
