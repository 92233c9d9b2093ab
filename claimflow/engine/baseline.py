"""The seasonal baseline: what a window normally holds at this time of day and week.

A window [start, end) is compared with the same clock window on reference days: yesterday
(only when yesterday was the same kind of day, business day or not, so Monday morning is
never compared with Sunday) and the same weekday 1..N weeks back. The expectation is the
median of those counts, so one holiday or one bad day in the history does not drag it down.
Reference days that are configured holidays, or that lie before the engine saw any data,
are skipped; with fewer than `min_references` left, there is no expectation (warming up),
and detectors that need one stay quiet. On a configured holiday there is no expectation
either: a holiday's low inflow is not an incident.
"""

from __future__ import annotations

import statistics
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from claimflow.engine.windows import BucketCounts
from claimflow.timeutil import DAY, WEEK


@dataclass(frozen=True, slots=True)
class Expectation:
    expected: float
    references: tuple[tuple[float, float], ...]  # (offset seconds, count), most recent first


class SeasonalBaseline:
    def __init__(
        self,
        tz: ZoneInfo,
        business_days: frozenset[int],
        holidays: frozenset[date],
        reference_weeks: int,
        min_references: int,
    ) -> None:
        self.tz = tz
        self.business_days = business_days
        self.holidays = holidays
        self.reference_weeks = reference_weeks
        self.min_references = min_references

    @property
    def retention(self) -> float:
        """How much history the counts must keep for this baseline."""
        return self.reference_weeks * WEEK + DAY

    def _day(self, epoch: float) -> date:
        return datetime.fromtimestamp(epoch, self.tz).date()

    def _is_business(self, day: date) -> bool:
        return day.weekday() in self.business_days and day not in self.holidays

    def offsets(self, start: float, end: float, history_start: float) -> list[float] | None:
        """How far back the reference windows of [start, end) lie, or None when there is no
        expectation (a holiday today, or fewer than `min_references` usable days)."""
        today = self._day(end - 1)
        if today in self.holidays:
            return None
        same_kind = self._is_business(self._day(end - 1 - DAY)) == self._is_business(today)
        candidates = ([DAY] if same_kind else []) + [
            k * WEEK for k in range(1, self.reference_weeks + 1)
        ]
        usable = [
            offset
            for offset in candidates
            if start - offset >= history_start and self._day(end - 1 - offset) not in self.holidays
        ]
        return usable if len(usable) >= self.min_references else None

    def expect(
        self,
        counts: BucketCounts,
        key: Hashable,
        start: float,
        end: float,
        history_start: float,
        offsets: list[float] | None = None,
    ) -> Expectation | None:
        """The expectation for one key; pass `offsets` when judging many keys over one window."""
        if offsets is None:
            offsets = self.offsets(start, end, history_start)
            if offsets is None:
                return None
        refs = tuple(
            (offset, counts.window_sum(key, start - offset, end - offset)) for offset in offsets
        )
        return Expectation(statistics.median(c for _, c in refs), refs)
