"""Remembering event ids for a bounded stretch of event time, to count redeliveries once."""

from __future__ import annotations

from mypy_extensions import mypyc_attr


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class SeenIds:
    """Two generations of ids, each covering `horizon` seconds of event time.

    An id is remembered for at least `horizon` and at most twice that. A redelivery later
    than the horizon is older than the allowed lateness (the configuration insists
    horizon >= lateness), so it is refused as late instead: still counted once.
    """

    __slots__ = ("_current", "_previous", "_rotate_at", "horizon")

    def __init__(self, horizon: float) -> None:
        self.horizon = horizon
        self._current: set[str] = set()
        self._previous: set[str] = set()
        self._rotate_at: float | None = None

    def seen(self, event_id: str) -> bool:
        return event_id in self._current or event_id in self._previous

    def first_time(self, event_id: str, now: float) -> bool:
        """Remember the id; False when it was already remembered."""
        if event_id in self._current or event_id in self._previous:
            return False
        rotate_at = self._rotate_at
        if rotate_at is not None and now < rotate_at:
            self._current.add(event_id)
            return True
        self.add(event_id, now)
        return True

    def add(self, event_id: str, now: float) -> None:
        if self._rotate_at is None:
            self._rotate_at = now + self.horizon
        elif now >= self._rotate_at:
            self._previous, self._current = self._current, set()
            self._rotate_at = now + self.horizon
        self._current.add(event_id)

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
