"""Moving event time on by the wall clock between events, and when no events arrive at all.

Event time normally comes from the events: the engine judges tick T once an event at
T + `allowed_lateness` or later has arrived. Live, that leaves two gaps, both closed here
(through `timeutil.Clock`, the only place wall time enters the engine; a replay never uses
this):

* **Between events, when caught up.** On a quiet stream (a route of 130 claims an hour sends
  an event every ten seconds or so; while it is broken, only its dispatches) the next event
  can be many seconds away, and a tick waits for it. When the live merge knows that nothing
  is waiting anywhere (every input partition reported caught up since its last record, and
  nothing is held), the worker calls `tick(caught_up=...)` and event time runs on with the
  wall clock: the watermark moves to `now - lag - lateness`, where `lag` is how long after
  they happened the freshest events were read (the smallest wall-minus-event-time of the
  events read in the last five to ten minutes of wall time: transport delay plus any clock
  skew between the sources and the worker, measured, not assumed). That is exactly where an
  event read now with that lag would put the watermark, so an event counts as late on the
  same terms as when events are dense: it arrived more than `allowed_lateness` behind the
  freshest events. Only while the stream is live (that lag is at most `live_lag`, five
  minutes): a backfill of history, read long after it happened, never moves on by the wall
  clock this way, so pausing a backfill cannot make the rest of it late.
* **No events at all.** If a hub link breaks completely and nothing else arrives either (a
  quiet night, or the whole feed down), event time would stand still and no detector would
  ever see the silence. Once no event has been taken for `idle_after` seconds of wall time,
  event time moves to `now - grace`. `grace` must exceed the normal delay between an event
  happening and reaching the worker, or on-time events would be refused as late; it
  defaults to the allowed lateness plus five minutes. This works without the merge's word
  (a partition whose worker is gone never reports caught up), hence the margin.
"""

from __future__ import annotations

from collections.abc import Callable

from claimflow.engine import Engine
from claimflow.timeutil import Clock

_NEVER = float("inf")
LAG_BUCKET = 300.0  # wall seconds: the lag is the smallest over this bucket and the one before
LIVE_LAG = 300.0  # a stream whose freshest events are read later than this is not live


class IdleClock:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        grace: float | None = None,
        idle_after: float = 60.0,
        live_lag: float = LIVE_LAG,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.grace = grace if grace is not None else engine.lateness + 300.0
        self.idle_after = idle_after
        self.live_lag = live_lag
        self._last_event_wall = clock.now()
        # The smallest lag (wall time read minus event time) in the current wall-clock bucket
        # and the one before, and the latest lag (used when both buckets are empty).
        self._bucket = -_NEVER
        self._lag_now = _NEVER
        self._lag_before = _NEVER
        self._lag_last = _NEVER

    def observe(self, wall: float, event_time: float) -> None:
        """An event that happened at `event_time` was read at wall time `wall`."""
        lag = wall - event_time
        bucket = wall // LAG_BUCKET
        if bucket > self._bucket:
            self._lag_before = self._lag_now if bucket == self._bucket + 1 else _NEVER
            self._lag_now = _NEVER
            self._bucket = bucket
        self._lag_now = min(self._lag_now, lag)
        self._lag_last = lag

    def lag(self, now: float) -> float:
        """How long after they happen the freshest events are read, as of wall time `now`
        (inf before the first event)."""
        bucket = now // LAG_BUCKET
        if bucket <= self._bucket:
            return min(self._lag_now, self._lag_before)
        if bucket == self._bucket + 1 and self._lag_now < _NEVER:
            return self._lag_now
        return self._lag_last

    def event_taken(self) -> None:
        """Call after each batch of events handed to the engine."""
        self._last_event_wall = self.clock.now()

    def tick(self, caught_up: Callable[[], bool] | None = None) -> bool:
        """Advance event time if the input is caught up (`caught_up()` says so: asked only
        when it would matter) or has been idle; True when it did."""
        now = self.clock.now()
        engine = self.engine
        if caught_up is not None:
            lag = self.lag(now)
            if lag <= self.live_lag:
                target = now - lag - engine.lateness
                if target > engine.watermark and caught_up():
                    engine.advance_to(target)
                    return True
        if now - self._last_event_wall < self.idle_after:
            return False
        target = now - self.grace
        if target <= engine.newest:
            return False
        engine.advance_to(target)
        return True
