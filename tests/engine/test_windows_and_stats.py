from __future__ import annotations

import math
from decimal import Decimal, getcontext
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow.engine.alerts import AlertBook
from claimflow.engine.dedupe import SeenIds
from claimflow.engine.stats import poisson_cdf, poisson_sf
from claimflow.engine.windows import BucketCounts

getcontext().prec = 60


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.floats(0, 10_000, allow_nan=False), max_size=200),
    start=st.integers(0, 40),
    length=st.integers(0, 40),
)
def test_window_sum_counts_exactly_the_events_in_whole_buckets(
    times: list[float], start: int, length: int
) -> None:
    counts = BucketCounts(width=300, retention=1e9)
    for t in reversed(times):  # any order: windows are addressed by event time
        counts.add("k", t)
    lo, hi = start * 300, (start + length) * 300
    assert counts.window_sum("k", lo, hi) == sum(1 for t in times if lo <= t < hi)
    # A sum asked for inside a bucket is the same as at its start (stable between edges).
    assert counts.window_sum("k", lo + 17, hi + 299) == counts.window_sum("k", lo, hi)


def test_expiry_drops_closed_windows_and_keeps_recent_ones() -> None:
    counts = BucketCounts(width=60, retention=600)
    for t in range(0, 3600, 10):
        counts.add("a", t)
    counts.add("b", 5)
    dropped = counts.expire(3600)
    assert dropped > 0
    assert counts.window_sum("a", 0, 3000) == 0
    assert counts.window_sum("a", 3000, 3600) == 60
    assert "b" not in set(counts.keys())
    assert counts.bucket_count() == 10


def _exact_cdf(k: int, mu: float) -> float:
    m = Fraction(mu)
    total = sum(m**i / math.factorial(i) for i in range(k + 1))
    return float(Decimal(math.exp(-mu)) * Decimal(total.numerator) / Decimal(total.denominator))


def test_poisson_tails_match_exact_sums() -> None:
    for mu in (0.5, 4.0, 30.0, 200.0):
        for k in (0, 1, 3, 10, 25, 180, 260):
            assert math.isclose(
                poisson_cdf(k, mu), min(1.0, _exact_cdf(k, mu)), rel_tol=1e-9, abs_tol=1e-300
            )
            assert math.isclose(
                poisson_sf(k + 1, mu), 1 - poisson_cdf(k, mu), rel_tol=1e-6, abs_tol=1e-12
            )
    assert poisson_sf(40, 1.0) < 1e-40  # deep tails do not round to zero or one
    assert poisson_cdf(0, 20.0) == math.exp(-20.0)


def test_alert_book_emits_one_firing_and_one_resolved_per_episode() -> None:
    book = AlertBook()
    labels = {"team": "motor"}
    for minute in range(5):
        book.fire("InflowDrop", labels, 60.0 * minute, "drop", {"n": minute})
    for minute in range(5, 8):
        book.resolve("InflowDrop", labels, 60.0 * minute, "back", {})
    alerts = book.drain()
    assert [(a.state, a.at) for a in alerts] == [("firing", 0.0), ("resolved", 300.0)]
    assert alerts[1].details["firing_since"] == "1970-01-01T00:00:00Z"
    assert alerts[1].details["duration_seconds"] == 300.0
    assert book.drain() == []


def test_alert_book_hold_needs_the_condition_unbroken() -> None:
    book = AlertBook()
    labels = {"team": "t"}
    book.fire("SlaAtRisk", labels, 0, "s", {}, hold=600)
    book.fire("SlaAtRisk", labels, 300, "s", {}, hold=600)
    book.calm("SlaAtRisk", labels)  # the condition broke: the hold starts again
    book.fire("SlaAtRisk", labels, 600, "s", {}, hold=600)
    assert book.drain() == []
    book.fire("SlaAtRisk", labels, 1200, "s", {}, hold=600)
    assert [a.at for a in book.drain()] == [1200]


def test_seen_ids_remember_for_the_horizon_and_stay_bounded() -> None:
    seen = SeenIds(horizon=100)
    assert seen.first_time("a", 0)
    assert not seen.first_time("a", 50)
    assert not seen.first_time("a", 150)  # rotated once: still in the previous generation
    for i in range(1000):
        seen.first_time(f"id-{i}", 1000 + i)
    assert len(seen) <= 200
