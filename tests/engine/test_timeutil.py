from __future__ import annotations

import pytest

from claimflow.timeutil import ManualClock, format_duration, iso, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("14d", 14 * 86400),
        ("1w", 604800),
        ("250ms", 0.25),
        ("1.5h", 5400),
        (" 3 m ", 180),
        (42, 42),
        (0.5, 0.5),
        ("7", 7),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 minutes", "-3m", "", "1h30m", True, -1])
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


def test_format_duration_and_iso() -> None:
    assert [format_duration(s) for s in (5, 60, 125, 3900, 90000)] == [
        "5s",
        "1m",
        "2m05s",
        "1h05m",
        "1d01h",
    ]
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1.5) == "1970-01-01T00:00:01.500000Z"


def test_manual_clock() -> None:
    clock = ManualClock(100)
    clock.advance(5)
    assert clock.now() == 105
    clock.set(7)
    assert clock.now() == 7
