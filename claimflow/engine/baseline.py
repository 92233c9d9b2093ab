"""The seasonal baseline: what a window normally holds at this time of day and week.

A window [start, end) is compared with the same clock window on reference days: yesterday
(only when yesterday was the same kind of day, business day or not, so Monday morning is
never compared with Sunday) and the same weekday 1..N weeks back. The expectation is the
median of those counts, so one holiday or one bad day in the history does not drag it down.
"The same clock window" is local wall-clock time: across a daylight-saving change a week back
is 7 x 24 h plus or minus an hour, and a fixed 7 x 86,400 s would compare 13:15 with 12:15
for `reference_weeks` weeks after every change (the lunch dip an hour off reads as a drop).
Reference days that are configured holidays, or that lie before the engine saw any data,
are skipped; with fewer than `min_references` left, there is no expectation (warming up),
and detectors that need one stay quiet. For a window that touches a configured holiday
(also the hour after its midnight) there is no expectation either: a holiday's low inflow
is not an incident.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from claimflow.engine.windows import Amount, BucketCounts
from claimflow.timeutil import DAY, HOUR, WEEK


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(frozen=True, slots=True)
class Expectation:
    # The median of the reference counts: one of them (an int) for an odd number of
    # references, their mean (a float) for an even one; kept so, in both builds (windows.py).
    expected: Amount
    references: tuple[tuple[float, Amount], ...]  # (offset seconds, count), most recent first


def _median(values: list[Amount]) -> Amount:
    """statistics.median, without its generality (judged for every scope at every window)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
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
        # offsets() answers by (start, end, history_start): the same few windows are asked
        # about by every scope and route at every tick, and each answer costs local-time math.
        self._offsets: dict[tuple[float, float, float], list[float] | None] = {}
        self._days: dict[int, tuple[date, float]] = {}  # see _day_and_end
        self._backs: dict[tuple[int, int], float] = {}  # see _back

    @property
    def retention(self) -> float:
        """How much history the counts must keep for this baseline (an hour more for a
        daylight-saving change in between)."""
        return self.reference_weeks * WEEK + DAY + HOUR

    def is_holiday(self, epoch: float) -> bool:
        return self._day(epoch) in self.holidays

    def _day_and_end(self, epoch: float) -> tuple[date, float]:
        """The local day of `epoch` and the epoch of the next local midnight. Cached per
        quarter hour (UTC): every time zone's offset is a whole number of quarter hours, so
        a quarter hour never straddles a local midnight; silences are judged every tick."""
        quarter = int(epoch // 900)
        found = self._days.get(quarter)
        if found is None:
            local = datetime.fromtimestamp(epoch, self.tz)
            midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time())
            found = (local.date(), midnight.replace(tzinfo=self.tz).timestamp())
            if len(self._days) > 4096:
                self._days.clear()
            self._days[quarter] = found
        return found

    def _back(self, epoch: float, days: int) -> float:
        """Seconds from the same local wall-clock time `days` days earlier to `epoch`: days x
        86,400 s plus the change of UTC offset in between. Both offsets are constant within a
        UTC quarter hour (changes fall on quarter hours), so the answer is cached per one."""
        key = (int(epoch // 900), days)
        found = self._backs.get(key)
        if found is None:
            local = datetime.fromtimestamp(epoch, self.tz)
            found = epoch - (local - timedelta(days=days)).timestamp()
            if len(self._backs) > 8192:
                self._backs.clear()
            self._backs[key] = found
        return found

    def _day(self, epoch: float) -> date:
        return self._day_and_end(epoch)[0]

    def _is_business(self, day: date) -> bool:
        return day.weekday() in self.business_days and day not in self.holidays

    def offsets(self, start: float, end: float, history_start: float) -> list[float] | None:
        """How far back the reference windows of [start, end) lie, or None when there is no
        expectation (a holiday today, or fewer than `min_references` usable days)."""
        key = (start, end, history_start)
        cache = self._offsets
        if key in cache:
            return cache[key]
        if len(cache) > 256:
            cache.clear()
        cache[key] = answer = self._find_offsets(start, end, history_start)
        return answer

    def _find_offsets(self, start: float, end: float, history_start: float) -> list[float] | None:
        today = self._day(end - 1)
        if today in self.holidays or self._day(start) in self.holidays:
            return None  # a window reaching into a holiday (its last evening hour) too
        same_kind = self._is_business(self._day(end - 1 - DAY)) == self._is_business(today)
        candidates = [
            self._back(start, days)
            for days in ([1] if same_kind else [])
            + [7 * k for k in range(1, self.reference_weeks + 1)]
        ]
        usable = [
            offset
            for offset in candidates
            if start - offset >= history_start
            and self._day(end - 1 - offset) not in self.holidays
            and self._day(start - offset) not in self.holidays
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
        return Expectation(_median([c for _, c in refs]), refs)

    def expect_span(
        self, counts: BucketCounts, key: Hashable, start: float, end: float, history_start: float
    ) -> float | None:
        """The expectation over a span that may cross local midnights (a silence since last
        evening): the sum of each day's part, a holiday's part counting 0 (low traffic on a
        holiday is not an incident, and an ordinary day's count must not be expected of it).
        None while any ordinary day's part is warming up, or when every part is a holiday."""
        total, judged = 0.0, False
        t = start
        while t < end:
            day, midnight = self._day_and_end(t)
            part_end = min(end, midnight)
            if day not in self.holidays:
                part = self.expect(counts, key, t, part_end, history_start)
                if part is None:
                    return None
                total += part.expected
                judged = True
            t = part_end
        return total if judged else None
