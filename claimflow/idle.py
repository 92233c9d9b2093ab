"""Moving event time on by the wall clock when no events arrive at all.

Event time normally comes from the events. If a hub link breaks completely and nothing else
arrives either (a quiet night, or the whole feed down), event time would stand still and no
detector would ever see the silence. The live worker therefore calls `IdleClock.tick()`
periodically: once no event has been taken for `idle_after` seconds of wall time, it moves
the engine's event time to `now - grace`. `grace` must exceed the normal delay between an
event happening and reaching the worker, or on-time events would be refused as late; it
defaults to the allowed lateness plus five minutes. This is the only place wall time enters
the engine (through `timeutil.Clock`), and a replay never uses it.
"""

from __future__ import annotations

from claimflow.engine import Engine
from claimflow.timeutil import Clock


class IdleClock:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        grace: float | None = None,
        idle_after: float = 60.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.grace = grace if grace is not None else engine.lateness + 300.0
        self.idle_after = idle_after
        self._last_event_wall = clock.now()

    def event_taken(self) -> None:
        """Call after each batch of events handed to the engine."""
        self._last_event_wall = self.clock.now()

    def tick(self) -> bool:
        """Advance event time if the input has been idle; True when it did."""
        now = self.clock.now()
        if now - self._last_event_wall < self.idle_after:
            return False
        target = now - self.grace
        if target <= self.engine.newest:
            return False
        self.engine.advance_to(target)
        return True
