from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from claimflow.engine.baseline import SeasonalBaseline
from claimflow.engine.windows import BucketCounts
from claimflow.timeutil import DAY, HOUR, WEEK

LONDON = ZoneInfo("Europe/London")
MON_TO_FRI = frozenset(range(5))


def _t(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def _baseline(holidays: frozenset[date] = frozenset(), min_refs: int = 2) -> SeasonalBaseline:
    return SeasonalBaseline(
        LONDON, MON_TO_FRI, holidays, reference_weeks=3, min_references=min_refs
    )


def test_monday_is_compared_with_mondays_not_sunday() -> None:
    start, end = _t(2026, 11, 23, 9), _t(2026, 11, 23, 10)  # Monday
    assert _baseline().offsets(start, end, history_start=0) == [WEEK, 2 * WEEK, 3 * WEEK]
    tuesday = _baseline().offsets(start + DAY, end + DAY, history_start=0)
    assert tuesday == [DAY, WEEK, 2 * WEEK, 3 * WEEK]


def test_warm_up_holidays_and_the_median() -> None:
    start, end = _t(2026, 11, 24, 9), _t(2026, 11, 24, 10)  # Tuesday
    # Only yesterday is in the history: one reference, fewer than two: no expectation.
    assert _baseline().offsets(start, end, history_start=start - DAY) is None
    # Yesterday was a holiday: skipped.
    holiday = frozenset({date(2026, 11, 23)})
    assert _baseline(holiday).offsets(start, end, history_start=0) == [WEEK, 2 * WEEK, 3 * WEEK]
    # Today a holiday: no expectation at all.
    assert _baseline(frozenset({date(2026, 11, 24)})).offsets(start, end, 0) is None
    counts = BucketCounts(300, 30 * DAY)
    for offset, n in ((DAY, 50), (WEEK, 48), (2 * WEEK, 0), (3 * WEEK, 52)):  # one dead day
        for k in range(n):
            counts.add("k", start - offset + k * HOUR / n)
    expectation = _baseline().expect(counts, "k", start, end, history_start=0)
    assert expectation is not None
    assert expectation.expected == 49  # median of 50, 48, 0, 52: the dead day does not drag it
    assert dict(expectation.references) == {DAY: 50, WEEK: 48, 2 * WEEK: 0, 3 * WEEK: 52}


def test_references_are_the_same_local_clock_window_across_a_clock_change() -> None:
    # London moved to summer time on Sunday 2027-03-28: 13:15 BST is 12:15 UTC, and the same
    # local window a week or more back (still GMT) is 13:15 UTC: 7 x 24 h less an hour ago.
    start, end = _t(2027, 3, 30, 12, 15), _t(2027, 3, 30, 12, 45)  # Tuesday 13:15 BST
    offsets = _baseline().offsets(start, end, history_start=0)
    assert offsets == [DAY, WEEK - HOUR, 2 * WEEK - HOUR, 3 * WEEK - HOUR]
    counts = BucketCounts(900, 30 * DAY)
    for days in (7, 14, 21):  # 30 claims every week at 13:15 local, none at 12:15 local
        for k in range(30):
            counts.add("k", _t(2027, 3, 30 - days, 13, 15) + k * 50)
    for k in range(30):
        counts.add("k", _t(2027, 3, 29, 12, 15) + k * 50)  # Monday 13:15 BST
    expectation = _baseline().expect(counts, "k", start, end, history_start=0)
    assert expectation is not None and expectation.expected == 30


def test_a_span_across_midnight_expects_nothing_of_its_holiday_part() -> None:
    holiday = frozenset({date(2027, 1, 1)})
    counts = BucketCounts(900, 40 * DAY)
    for day in range(1, 22):  # every day but the holiday: 4 arrivals an hour, all day long
        for k in range(96):
            t = _t(2026, 12, 10, 0) + day * DAY + k * 900
            if datetime.fromtimestamp(t, LONDON).date() not in holiday:
                counts.add("k", t)
    evening, after_midnight = _t(2027, 1, 1, 20), _t(2027, 1, 2, 2)
    plain = _baseline().expect(counts, "k", evening, after_midnight, history_start=0)
    assert plain is not None and plain.expected == 24  # six ordinary hours: what went wrong
    span = _baseline(holiday).expect_span(counts, "k", evening, after_midnight, history_start=0)
    assert span == 8  # the holiday evening expects nothing; 00:00-02:00 on the 2nd expects 8
    assert _baseline(holiday).expect_span(counts, "k", evening, _t(2027, 1, 1, 23), 0) is None
    # An hour-long window from the holiday's last evening hour into the next day: not judged.
    assert _baseline(holiday).offsets(_t(2027, 1, 1, 23, 30), _t(2027, 1, 2, 0, 30), 0) is None
