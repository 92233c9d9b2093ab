"""Time in claimflow: event time as float epoch seconds, and the one clock abstraction.

The engine never reads the wall clock. Everything it does is driven by the event times it
is given, or by an explicit `advance_to(t)` call; the live worker makes that call from a
`Clock`, so that a route that has gone completely silent is still noticed. Replays use no
clock at all, which is why they give the same output at any speed.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol

from mypy_extensions import mypyc_attr

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY


def parse_duration(value: str | float) -> float:
    """Seconds in a duration written as a number of seconds or `90s`, `15m`, `2h`, `14d`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 15m or 2h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration such as 90s, 15m, 2h or 14d, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form, `1h05m`, for summaries and alert texts."""
    days, rest = divmod(round(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


def to_epoch(moment: datetime) -> float:
    """Epoch seconds of an offset-aware datetime (the schemas reject naive ones)."""
    return moment.timestamp()


@lru_cache(maxsize=4096)  # detectors label every evaluation with the same few deadlines
def iso(epoch: float) -> str:
    """RFC 3339 in UTC with a `Z`, whole seconds unless the instant has a fraction."""
    moment = datetime.fromtimestamp(epoch, UTC)
    if moment.microsecond:
        return moment.isoformat().replace("+00:00", "Z")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock(Protocol):
    """Where wall-clock time enters claimflow: only the live worker holds one."""

    def now(self) -> float: ...


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class SystemClock:
    def now(self) -> float:
        return time.time()


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class ManualClock:
    """A clock tests set by hand."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def set(self, epoch: float) -> None:
        self._now = epoch

    def advance(self, seconds: float) -> None:
        self._now += seconds
