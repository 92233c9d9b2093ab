"""When a team works, and how much working time lies between two instants.

The SLA projection multiplies a team's pace by the working time left before a deadline; a
deadline at 18:00 seen at 22:00 the evening before has ten working hours in front of it,
not twenty.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from claimflow.config import WEEKDAYS, Team


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class WorkingCalendar:
    def __init__(self, team: Team, holidays: frozenset[date] = frozenset()) -> None:
        assert team.timezone is not None and team.working_hours is not None
        self.tz = ZoneInfo(team.timezone)
        hours = team.working_hours
        self.start, self.end = hours.start, hours.end
        self.days = frozenset(WEEKDAYS.index(d) for d in hours.days)
        self.holidays = holidays
        self._cache: dict[date, tuple[float, float] | None] = {}

    def shift(self, day: date) -> tuple[float, float] | None:
        """Start and end (epoch seconds) of the working day, or None on a day off."""
        if day in self._cache:
            return self._cache[day]
        if day.weekday() not in self.days or day in self.holidays:
            span = None
        else:
            span = (
                datetime.combine(day, self.start, tzinfo=self.tz).timestamp(),
                datetime.combine(day, self.end, tzinfo=self.tz).timestamp(),
            )
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[day] = span
        return span

    def local_day(self, epoch: float) -> date:
        return datetime.fromtimestamp(epoch, self.tz).date()

    def is_working(self, epoch: float) -> bool:
        span = self.shift(self.local_day(epoch))
        return span is not None and span[0] <= epoch < span[1]

    def working_seconds(self, begin: float, end: float) -> float:
        """Working time in [begin, end)."""
        return sum(stop - start for start, stop in self.spans(begin, end))

    def spans(self, begin: float, end: float) -> list[tuple[float, float]]:
        """The working intervals within [begin, end), in order."""
        out: list[tuple[float, float]] = []
        if end <= begin:
            return out
        day = self.local_day(begin) - timedelta(days=1)  # a shift may straddle UTC midnight
        last = self.local_day(end)
        while day <= last:
            span = self.shift(day)
            if span is not None and span[1] > begin and span[0] < end:
                out.append((max(begin, span[0]), min(end, span[1])))
            day += timedelta(days=1)
        return out
