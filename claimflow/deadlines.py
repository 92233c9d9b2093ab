"""When a claim is due, from the client's agreement, time zone and business days.

A claim that reaches the hub on a business day at or before the client's `same_day_cutoff`
(local time) is due at `due` that day; any other claim is due at `due` on the next business
day. Business days are the agreement's weekdays minus the configured holidays.

Local times that a DST change makes ambiguous take their first occurrence; local times that
it skips move forward by the size of the change (02:30 on a spring-forward night becomes
03:30). Both follow from building the local time with `fold=0`, as zoneinfo does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from claimflow.config import WEEKDAYS, Config, Weekday

# The cache keeps the quarter hours of about the last day (two generations of `_GENERATION`
# quarter hours each): claims reach the hub shortly before they are applied, so nearly every
# look-up hits, and an older one is only computed again. Memory stays flat however long the
# run; `_CACHE_LIMIT` is a last bound for input whose hub times jump about.
_GENERATION = 48
_CACHE_LIMIT = 50_000


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(frozen=True, slots=True)
class ClientAgreement:
    tz: ZoneInfo
    same_day_cutoff: time
    due: time
    business_days: frozenset[int]  # 0 = Monday, as date.weekday()
    holidays: frozenset[date]

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.business_days and day not in self.holidays

    def next_business_day(self, day: date) -> date:
        for step in range(1, 400):
            candidate = day + timedelta(days=step)
            if self.is_business_day(candidate):
                return candidate
        raise ValueError("no business day within a year: check business_days and holidays")

    def at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.tz)


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class DeadlineCalendar:
    """Due instants for claims, per client. Cached per client and quarter hour: the hot path
    of the engine asks this once per arriving claim. The cache forgets quarter hours that
    lie well behind the newest one asked for (see `_GENERATION`), so it does not grow with
    the length of the run."""

    def __init__(self, config: Config) -> None:
        holidays = frozenset(config.holidays)
        d = config.defaults
        self.default = ClientAgreement(
            tz=ZoneInfo(config.timezone),
            same_day_cutoff=d.same_day_cutoff,
            due=d.due,
            business_days=_weekday_numbers(d.business_days),
            holidays=holidays,
        )
        self.clients: dict[str, ClientAgreement] = {}
        for client in config.clients:
            self.clients[client.id] = ClientAgreement(
                tz=ZoneInfo(client.timezone) if client.timezone else self.default.tz,
                same_day_cutoff=client.same_day_cutoff or d.same_day_cutoff,
                due=client.due or d.due,
                business_days=_weekday_numbers(client.business_days)
                if client.business_days
                else self.default.business_days,
                holidays=holidays,
            )
        self._cache: dict[tuple[str, int], tuple[float, float, float]] = {}
        self._previous: dict[tuple[str, int], tuple[float, float, float]] = {}
        self._rotate_at = -1  # the quarter hour from which on a new generation starts

    def agreement(self, client_id: str) -> ClientAgreement:
        return self.clients.get(client_id, self.default)

    def due(self, client_id: str, hub_received: datetime) -> datetime:
        """The due instant (in the client's time zone) of a claim that reached the hub then."""
        agreement = self.agreement(client_id)
        return datetime.fromtimestamp(self.due_epoch(client_id, hub_received), agreement.tz)

    def due_epoch(self, client_id: str, hub_received: datetime) -> float:
        return self.due_at(client_id, hub_received.timestamp())[0]

    def due_at(self, client_id: str, received: float) -> tuple[float, bool]:
        """The due instant of a claim that reached the hub at epoch `received`, and whether it
        is entitled to same-day service (reached the hub by the cutoff on a business day).
        Cached per client and quarter hour (UTC): every time zone's offset is a whole number
        of quarter hours, so a quarter hour never straddles a local midnight."""
        quarter = int(received // 900)
        key = (client_id, quarter)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._previous.get(key)
            if entry is None:
                agreement = self.agreement(client_id)
                day = datetime.fromtimestamp(received, agreement.tz).date()
                entry = self._day_entry(agreement, day)
            self._remember(key, quarter, entry)
        cutoff, due_same_day, due_next = entry
        return (due_same_day, True) if received <= cutoff else (due_next, False)

    def _remember(
        self, key: tuple[str, int], quarter: int, entry: tuple[float, float, float]
    ) -> None:
        if quarter >= self._rotate_at or len(self._cache) >= _CACHE_LIMIT:
            self._previous, self._cache = self._cache, {}
            self._rotate_at = quarter + _GENERATION
        self._cache[key] = entry

    def cached(self) -> int:
        """How many (client, quarter hour) entries the cache holds now."""
        return len(self._cache) + len(self._previous)

    @staticmethod
    def _day_entry(agreement: ClientAgreement, day: date) -> tuple[float, float, float]:
        due_next = agreement.at(agreement.next_business_day(day), agreement.due).timestamp()
        if not agreement.is_business_day(day):
            return float("-inf"), due_next, due_next
        cutoff = agreement.at(day, agreement.same_day_cutoff).timestamp()
        return cutoff, agreement.at(day, agreement.due).timestamp(), due_next


def _weekday_numbers(days: Sequence[Weekday]) -> frozenset[int]:
    return frozenset(WEEKDAYS.index(day) for day in days)
