from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow.engine.windows import BucketCounts


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
