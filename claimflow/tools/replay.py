"""`claimflow replay`: the live detection code over a file of events, for backtests.

The loop is the same engine the Faust agents drive, fed line by line through the same
`feed` (claimflow/engine/feed.py), so a bad line is counted as the live worker counts it.
Bad lines are reported with their line numbers and skipped; the run goes on. An event
dated far ahead of the stream is refused (`future_timestamp`) unless the events after it
follow: see claimflow/tools/ahead.py.
"""

from __future__ import annotations

import functools
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from math import nan
from typing import ParamSpec, TypeVar

from claimflow.config import Config
from claimflow.contract.events import Event, decode
from claimflow.contract.rejections import Rejection
from claimflow.engine import Alert, Engine
from claimflow.engine.feed import feed
from claimflow.tools.ahead import AheadBound, Held


@dataclass
class ReplaySummary:
    lines: int = 0
    blank_lines: int = 0
    events: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        """Input lines (good or bad) handled per second: the replay's throughput."""
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        rejected = sum(self.rejected.values())
        out = [
            f"read {self.lines:,} lines ({self.events:,} events counted, {rejected:,} rejected, "
            f"{self.blank_lines:,} blank) in {self.seconds:.2f}s: "
            f"{self.events_per_second:,.0f} events/s",
        ]
        for reason, n in sorted(self.rejected.items()):
            out.append(f"  rejected {reason}: {n:,}")
        if self.alerts:
            out.append(
                "alerts firing: "
                + ", ".join(f"{name} {n}" for name, n in sorted(self.alerts.items()))
            )
        else:
            out.append("alerts firing: none")
        return "\n".join(out)


# The replay allocates a few small containers per event (reorder-buffer entries, facts'
# keys), nearly all freed by reference counting at once. At CPython's default gen-0
# threshold (700 allocations) that means a young collection every few dozen events and
# more full collections over the engine's large, long-lived state: 6-9% of a replay,
# measured on the 21-day mixed scenario. Cycles are rare here, so young collections run
# every YOUNG_EVERY allocations while a replay runs, and the threshold is put back after.
YOUNG_EVERY = 100_000
P = ParamSpec("P")
R = TypeVar("R")


def _fewer_collections(run: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(run)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        previous = gc.get_threshold()
        gc.set_threshold(max(YOUNG_EVERY, previous[0]), *previous[1:])
        try:
            return run(*args, **kwargs)
        finally:
            gc.set_threshold(*previous)

    return wrapped


@_fewer_collections
def replay(  # noqa: PLR0915 - the replay loop inlined for speed (compiled): decode, apply, tick
    config: Config,
    lines: Iterable[bytes],
    on_alert: Callable[[Alert], None],
    on_reject: Callable[[int, Rejection, bytes], None],
    on_progress: Callable[[ReplaySummary], None] | None = None,
    engine: Engine | None = None,
) -> ReplaySummary:
    """Feed `lines` through the engine (a new one unless given), reporting alerts, refused
    lines (with their line numbers) and, every 8,192 lines, progress."""
    engine = engine or Engine(config)
    summary = ReplaySummary()
    started = time.perf_counter()
    ingest = engine.ingest
    book = engine.book

    def publish() -> None:
        for alert in engine.drain_alerts():
            if alert.state == "firing":
                summary.alerts[alert.alert] += 1
            on_alert(alert)

    # The hot loop: summary fields are kept in locals and written back when anyone looks.
    number = events = blank = 0

    def refused(number: int, line: bytes, problem: Rejection) -> bool:
        """Count and report a line the engine refused; True when it was applied all the same
        (a late event updates claim state)."""
        summary.rejected[problem.reason.value] += 1
        summary.lines = number
        on_reject(number, problem, line)
        return problem.applied

    def handle(number: int, line: bytes, event: Event | Rejection, t: float | None = None) -> None:
        nonlocal events
        # the event time is known already when the loop checked it against the bound
        problem = feed(engine, event, t)
        if problem is None or refused(number, line, problem):
            events += 1
            if book.pending:  # tested inline: this runs once per line
                publish()

    # One event dated far ahead must not move event time (claimflow/tools/ahead.py): a jump past
    # the allowed lateness is held with the lines after it until the stream confirms it.
    bound = AheadBound(config.engine.allowed_lateness)
    held = bound.held
    jump = bound.lateness

    def release(final: bool) -> None:
        while held and (final or bound.decided()):
            head = bound.take()
            problem = bound.judge(head, engine.newest)
            handle(head.number, head.line, head.event if problem is None else problem, head.t)
            # Hand on, in order, what no longer jumps ahead; the next jump waits for its own.
            while held:
                item = held[0]
                if not isinstance(item.event, Rejection) and bound.jumps(item.t, engine.newest):
                    break
                bound.take()
                handle(item.number, item.line, item.event, item.t)

    for number, line in enumerate(lines, 1):
        if not line or line.isspace():
            blank += 1
            continue
        event = decode(line)
        if held:
            t = nan if isinstance(event, Rejection) else event.time.timestamp()
            bound.hold(Held(number, line, event, t))
            release(False)
        elif not isinstance(event, Rejection) and (t := event.time.timestamp()) > (
            engine.newest + jump  # bound.jumps, inlined: this runs once per line
        ):
            bound.hold(Held(number, line, event, t))
        elif isinstance(event, Rejection):
            handle(number, line, event)
        elif (problem := ingest(event, t)) is None or refused(number, line, problem):
            events += 1  # handle() and feed(), inlined for the common case: a decoded event
            if book.pending:
                publish()
        if not number & 8191 and on_progress is not None:
            summary.lines, summary.events, summary.blank_lines = number, events, blank
            summary.seconds = time.perf_counter() - started
            on_progress(summary)
    release(True)
    summary.lines, summary.events, summary.blank_lines = number, events, blank
    engine.finish()
    publish()
    summary.seconds = time.perf_counter() - started
    return summary
