from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow.config import parse_config
from claimflow.deadlines import DeadlineCalendar

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")

CONFIG = parse_config(
    {
        "timezone": "Europe/London",
        "holidays": ["2026-12-25", "2026-12-28"],
        "clients": [
            {
                "id": "victor",
                "timezone": "America/New_York",
                "same_day_cutoff": "12:00",
                "due": "18:00",
            },
            {"id": "weekend", "business_days": ["sat", "sun"], "due": "16:00"},
            {
                "id": "night",
                "timezone": "Europe/London",
                "same_day_cutoff": "00:30",
                "due": "01:30",
            },
        ],
        "teams": ["t"],
        "hubs": [{"id": "h", "centers": ["c"]}],
    }
)


def _due(client: str, received: datetime) -> datetime:
    return DeadlineCalendar(CONFIG).due(client, received)


@pytest.mark.parametrize(
    ("client", "received", "due"),
    [
        # Default agreement, London: noon cutoff, due 18:00, Monday to Friday.
        (
            "anyone",
            datetime(2026, 11, 24, 11, 59, tzinfo=LONDON),
            datetime(2026, 11, 24, 18, 0, tzinfo=LONDON),
        ),
        (
            "anyone",
            datetime(2026, 11, 24, 12, 0, tzinfo=LONDON),
            datetime(2026, 11, 24, 18, 0, tzinfo=LONDON),
        ),
        (
            "anyone",
            datetime(2026, 11, 24, 12, 0, 1, tzinfo=LONDON),
            datetime(2026, 11, 25, 18, 0, tzinfo=LONDON),
        ),
        # Friday afternoon and the weekend: due Monday.
        (
            "anyone",
            datetime(2026, 11, 27, 15, 0, tzinfo=LONDON),
            datetime(2026, 11, 30, 18, 0, tzinfo=LONDON),
        ),
        (
            "anyone",
            datetime(2026, 11, 28, 9, 0, tzinfo=LONDON),
            datetime(2026, 11, 30, 18, 0, tzinfo=LONDON),
        ),
        # Holidays are skipped: Thursday 24 Dec after noon -> Tue 29 Dec (25th and 28th off).
        (
            "anyone",
            datetime(2026, 12, 24, 13, 0, tzinfo=LONDON),
            datetime(2026, 12, 29, 18, 0, tzinfo=LONDON),
        ),
        # The client's own time zone: 16:30 London is 11:30 New York, before its noon cutoff.
        (
            "victor",
            datetime(2026, 11, 24, 16, 30, tzinfo=LONDON),
            datetime(2026, 11, 24, 18, 0, tzinfo=NEW_YORK),
        ),
        (
            "victor",
            datetime(2026, 11, 24, 17, 30, tzinfo=UTC),
            datetime(2026, 11, 25, 18, 0, tzinfo=NEW_YORK),
        ),
        # Weekend-only agreement.
        (
            "weekend",
            datetime(2026, 11, 24, 9, 0, tzinfo=LONDON),
            datetime(2026, 11, 28, 16, 0, tzinfo=LONDON),
        ),
    ],
)
def test_due_examples(client: str, received: datetime, due: datetime) -> None:
    assert _due(client, received) == due


def test_due_time_skipped_by_spring_forward_moves_forward() -> None:
    # 29 March 2026, London: 01:00 -> 02:00. A 01:30 due time does not exist that day.
    due = _due("night", datetime(2026, 3, 27, 12, 0, tzinfo=LONDON))  # Friday after cutoff
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)  # Monday 01:30 BST
    received = datetime(2026, 3, 30, 0, 10, tzinfo=LONDON)
    assert _due("night", received).astimezone(LONDON).time() == time(1, 30)


def test_dst_change_day_keeps_local_due_time() -> None:
    # Claims before and after the autumn change are due at 18:00 local on their days.
    for day in (23, 26):  # Friday before, Monday after (25 Oct 2026)
        received = datetime(2026, 10, day, 9, 0, tzinfo=LONDON)
        assert _due("anyone", received) == datetime(2026, 10, day, 18, 0, tzinfo=LONDON)
    assert _due("anyone", datetime(2026, 10, 26, 9, tzinfo=LONDON)).utcoffset() == timedelta(0)


def _reference_due(config_client: str, received: datetime) -> datetime:
    """Brute force from the contract's words, independent of the cached implementation."""
    spec = {c.id: c for c in CONFIG.clients}.get(config_client)
    tz = ZoneInfo(spec.timezone) if spec and spec.timezone else LONDON
    cutoff = (spec and spec.same_day_cutoff) or CONFIG.defaults.same_day_cutoff
    due = (spec and spec.due) or CONFIG.defaults.due
    days = (spec and spec.business_days) or CONFIG.defaults.business_days
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    def business(d: date) -> bool:
        return names[d.weekday()] in days and d not in CONFIG.holidays

    local = received.astimezone(tz)
    d = local.date()
    if business(d) and received <= datetime.combine(d, cutoff, tzinfo=tz):
        return datetime.combine(d, due, tzinfo=tz)
    d += timedelta(days=1)
    while not business(d):
        d += timedelta(days=1)
    return datetime.combine(d, due, tzinfo=tz)


@settings(max_examples=400, deadline=None)
@given(
    client=st.sampled_from(["anyone", "victor", "weekend", "night"]),
    moment=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31)),
    zone=st.sampled_from(
        ["UTC", "Europe/London", "America/New_York", "Asia/Kathmandu", "Australia/Eucla"]
    ),
)
def test_due_matches_reference(client: str, moment: datetime, zone: str) -> None:
    received = moment.replace(tzinfo=ZoneInfo(zone))
    calendar = DeadlineCalendar(CONFIG)
    expected = _reference_due(client, received)
    assert calendar.due_epoch(client, received) == expected.timestamp()
    # Asking again (now from the cache) gives the same answer.
    assert calendar.due_epoch(client, received) == expected.timestamp()


@settings(max_examples=200, deadline=None)
@given(moment=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)))
def test_due_is_never_before_reaching_the_hub_and_is_monotonic(moment: datetime) -> None:
    calendar = DeadlineCalendar(CONFIG)
    received = moment.replace(tzinfo=UTC)
    later = received + timedelta(minutes=37)
    assert calendar.due_epoch("anyone", received) > received.timestamp()
    assert calendar.due_epoch("anyone", later) >= calendar.due_epoch("anyone", received)


def test_cache_forgets_old_quarter_hours_and_answers_stay_the_same() -> None:
    """A long run (120 days of claims, with stragglers received hours earlier): the cache
    stays bounded by the recent quarter hours, and every answer, from the cache, from the
    older generation or computed again after eviction, equals the brute-force reference."""
    calendar = DeadlineCalendar(CONFIG)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    largest = 0
    for step in range(120 * 24 * 6):  # every 10 minutes
        received = start + timedelta(minutes=10 * step)
        asked = [received, received - timedelta(hours=3 + step % 20)]  # late ones too
        for client in ("anyone", "victor", "weekend", "night"):
            for moment in asked:
                assert (
                    calendar.due_epoch(client, moment) == _reference_due(client, moment).timestamp()
                )
        largest = max(largest, calendar.cached())
    # Four clients, a couple of days of quarter hours at most: not 120 days' worth.
    assert 0 < largest <= 4 * 4 * 24 * 3
    assert calendar.cached() < 4 * 4 * 24 * 120 / 10
