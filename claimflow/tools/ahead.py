"""Event time in a replay, bounded by the stream's own progress (issue 14 item 3).

The live worker refuses an event dated ahead of the wall clock that read it. A replay has no
such clock: a file of history is read in minutes. Without a bound, one event dated 20 days
ahead (within `engine.max_jump`), or a first event far ahead of the rest, moves event time
forward and every real event after it is refused as late.

The rule. An event that would move event time more than `allowed_lateness` past the newest
accepted event (so that, alone, it would make events at the stream's current time late) is
held, and so is every line after it, until `window` more events have been read. It is
accepted if more than half of those events are within `allowed_lateness` of it or later
(the stream really moved on: a gap in the data, the first event of a file); else it is
refused as `future_timestamp`, dead-lettered and counted, and never moves the watermark.
The held lines are then handled in their original order, so an accepted jump gives exactly
the result an unbounded replay gives. The very first event is held like any jump (nothing
came before it). At the end of the input the events that are there decide; an event with
none after it is accepted.

Limits: a burst of `window / 2 + 2` or more events dated alike, far ahead (ten with the
default window), is taken as the stream moving on. At most MAX_HELD lines are held: past
that (a jump followed by that many lines that do not decode) the events there decide.
Plain Python; no Faust, no Kafka.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from claimflow.contract.events import Event
from claimflow.contract.rejections import Reason, Rejection
from claimflow.timeutil import format_duration, iso

WINDOW = 16  # events after a jump that decide whether the stream moved on
MAX_HELD = 65_536  # lines held behind one jump at most


class Held(NamedTuple):
    number: int  # line number in the input
    line: bytes
    event: Event | Rejection
    t: float  # event time (epoch seconds); nan for a line that did not decode


class AheadBound:
    """The held lines of one replay and the verdict on the jump at their head."""

    def __init__(self, lateness: float, window: int = WINDOW) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.lateness = lateness
        self.window = window
        self.held: deque[Held] = deque()
        self._events = 0  # decoded events in `held`, the head included

    def jumps(self, t: float, newest: float) -> bool:
        """Whether an event at `t` would move event time more than the lateness past the
        newest accepted event (always true for the first event: newest is -inf)."""
        return t > newest + self.lateness

    def hold(self, item: Held) -> None:
        self.held.append(item)
        if not isinstance(item.event, Rejection):
            self._events += 1

    def decided(self) -> bool:
        """Whether enough events follow the held jump to judge it."""
        return self._events > self.window or len(self.held) > MAX_HELD

    def take(self) -> Held:
        item = self.held.popleft()
        if not isinstance(item.event, Rejection):
            self._events -= 1
        return item

    def judge(self, head: Held, newest: float) -> Rejection | None:
        """The verdict on a jump just taken from the head: None to accept it, else why not.
        Judged on the events held after it (at most `window`)."""
        following = [h.t for h in self.held if not isinstance(h.event, Rejection)]
        following = following[: self.window]
        if not following:
            return None
        floor = head.t - self.lateness
        keep_up = sum(1 for t in following if t >= floor)
        if keep_up * 2 > len(following):
            return None
        if newest == float("-inf"):
            where = f"the first event, dated {iso(head.t)},"
        else:
            where = f"{format_duration(head.t - newest)} ahead of event time {iso(newest)}"
        return Rejection(
            Reason.FUTURE_TIMESTAMP,
            f"{where} and the stream did not follow: {len(following) - keep_up} of the "
            f"{len(following)} events after it are over {format_duration(self.lateness)} "
            "(engine.allowed_lateness) older",
        )
