from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow.config import Team, WorkingHours
from claimflow.workhours import WorkingCalendar

LONDON = ZoneInfo("Europe/London")
TEAM = Team(id="t", timezone="Europe/London", working_hours=WorkingHours())
CAL = WorkingCalendar(TEAM, frozenset({date(2026, 12, 25)}))


def _t(*args: int) -> float:
    return datetime(*args, tzinfo=LONDON).timestamp()  # type: ignore[misc]


def test_working_seconds_within_and_across_days() -> None:
    assert CAL.working_seconds(_t(2026, 11, 24, 9), _t(2026, 11, 24, 11)) == 7200
    # 22:00 Monday to 18:00 Tuesday: one full shift.
    assert CAL.working_seconds(_t(2026, 11, 23, 22), _t(2026, 11, 24, 18)) == 36000
    # Friday 17:00 to Monday 09:00: one hour on Friday, one on Monday.
    assert CAL.working_seconds(_t(2026, 11, 27, 17), _t(2026, 11, 30, 9)) == 7200
    # Christmas is a holiday.
    assert CAL.working_seconds(_t(2026, 12, 25, 0), _t(2026, 12, 26, 0)) == 0
    assert CAL.working_seconds(_t(2026, 11, 24, 11), _t(2026, 11, 24, 9)) == 0


def test_is_working() -> None:
    assert CAL.is_working(_t(2026, 11, 24, 8))
    assert not CAL.is_working(_t(2026, 11, 24, 18))
    assert not CAL.is_working(_t(2026, 11, 28, 10))  # Saturday


@settings(max_examples=200, deadline=None)
@given(
    a=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
    gap1=st.integers(0, 5 * 86400),
    gap2=st.integers(0, 5 * 86400),
)
def test_working_time_is_additive_and_bounded(a: datetime, gap1: int, gap2: int) -> None:
    start = a.replace(tzinfo=LONDON).timestamp()
    middle, end = start + gap1, start + gap1 + gap2
    total = CAL.working_seconds(start, end)
    assert total == CAL.working_seconds(start, middle) + CAL.working_seconds(middle, end)
    assert 0 <= total <= end - start
