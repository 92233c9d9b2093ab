"""The engine: validated events in, event-time state and alerts out.

Events are applied in event-time order. An accepted event waits in a small reorder buffer
until the watermark (newest event time seen, minus `allowed_lateness`) passes it, and
detectors are evaluated at fixed event-time ticks as the watermark passes them, between the
events before and after each tick. So the state a detector sees at tick T is exactly "all
accepted events up to T", whatever order they came in within the lateness: the same input
gives the same alerts at any replay speed and any interleaving of partitions.

An event older than the watermark is late. Its claim-level fact (an arrival, a completion)
is still applied, so the claim does not linger as missing or open, but it is not added to
event-time windows that have already been judged, and it is reported as late.

Wall time enters only through `advance_to`, which the live worker calls from its clock so
that ticks go on (and a silent route is noticed) when no events arrive at all.

The detectors share one contract (engine/detector.py): the engine turns each event into a
fact (placed with the claim registry: is the claim new, was it open, which team holds it),
hands it to every detector that handles that kind of fact, evaluates them all at each tick in
a fixed order, and lets each expire its own state. Staffing advice comes in through the
`Advisor` protocol, so the engine never imports the staffing module.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime
from heapq import heappop, heappush
from operator import attrgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from claimflow.config import WEEKDAYS, Config
from claimflow.contract.events import (
    EVENT_CLASSES,
    ClaimArrived,
    ClaimCompleted,
    Event,
    HubDispatched,
    SurveyResponse,
)
from claimflow.contract.rejections import Reason, Rejection
from claimflow.deadlines import DeadlineCalendar
from claimflow.engine.alerts import Alert, AlertBook
from claimflow.engine.baseline import SeasonalBaseline
from claimflow.engine.dedupe import SeenIds
from claimflow.engine.detector import (
    Advisor,
    Answered,
    Arrived,
    Completed,
    Detector,
    Dispatched,
    overrides,
)
from claimflow.engine.feedback import Feedback
from claimflow.engine.hublink import HubLinks
from claimflow.engine.impact import Impact
from claimflow.engine.inflow import Inflow
from claimflow.engine.sla_risk import Backlog
from claimflow.timeutil import HOUR
from claimflow.workhours import WorkingCalendar

_NEVER = float("inf")
RECENT_COMPLAINTS = 20


class Complaint(NamedTuple):
    """A negative survey answer with a comment, kept (the latest few) for the wall page."""

    at: float
    client_id: str
    team: str | None
    score: int
    comment: str


Applier = Callable[[Any, float, bool], None]
# Per event type: the reference check made on ingest, its event time, how it changes state.
Handler = tuple[Callable[[Any], Rejection | None] | None, Callable[[Any], datetime], Applier]


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class Engine:
    def __init__(self, config: Config) -> None:
        self.config = config
        settings = config.engine
        self.window = settings.window
        self.lateness = settings.allowed_lateness
        self.tick = settings.evaluate_every
        self.max_jump = settings.max_jump
        self.catch_up = settings.claim_memory  # at most this much event time is ticked through
        self.deadlines = DeadlineCalendar(config)
        self.book = AlertBook()
        self.teams = frozenset(config.team_settings)
        self.hub_centers = config.hub_centers
        holidays = frozenset(config.holidays)
        detectors = config.detectors

        def baseline(weeks: int, min_refs: int) -> SeasonalBaseline:
            return SeasonalBaseline(
                ZoneInfo(config.timezone),
                frozenset(WEEKDAYS.index(d) for d in config.defaults.business_days),
                holidays,
                weeks,
                min_refs,
            )

        inflow_baseline = baseline(
            detectors.inflow_drop.reference_weeks, detectors.inflow_drop.min_references
        )
        self.inflow = Inflow(
            detectors.inflow_drop,
            self.window,
            inflow_baseline,
            self.book,
            sorted(self.teams),
            sorted(self.hub_centers),
        )
        self.links = HubLinks(
            detectors.hub_link_break,
            self.window,
            settings.claim_memory,
            self.hub_centers,
            inflow_baseline,
            self.book,
        )
        calendars = {
            team: WorkingCalendar(spec, holidays) for team, spec in config.team_settings.items()
        }
        self.backlog = Backlog(
            detectors.sla_at_risk, self.window, settings.claim_memory, calendars, self.book
        )
        self.impact = Impact(
            detectors.sla_at_risk,
            self.window,
            self.deadlines,
            self.links,
            self.backlog,
            self.book,
            [c.id for c in config.clients],
            config.timezone,
        )
        self.feedback = Feedback(
            detectors.negative_feedback,
            self.window,
            self.book,
            ZoneInfo(config.timezone),
            frozenset(WEEKDAYS.index(d) for d in config.defaults.business_days),
        )
        self.backlog.before_projection = self.impact.stuck_demand  # stuck claims are demand
        # Evaluated in this order at every tick: the links first (a break this tick is
        # demand for the projection), the backlog before the client view that reads it.
        self.detectors: list[Detector[Any, Any]] = [
            self.links,
            self.inflow,
            self.backlog,
            self.impact,
            self.feedback,
        ]
        self._on_dispatched = self._handlers_for("on_dispatched")
        self._on_arrived = self._handlers_for("on_arrived")
        self._on_completed = self._handlers_for("on_completed")
        self._on_answered = self._handlers_for("on_answered")
        self._advisor: Advisor | None = None
        self.seen = SeenIds(settings.dedupe_horizon)
        self._first_time = self.seen.first_time

        self._buffer: list[tuple[float, int, Applier, Event, bool]] = []
        self._seq = itertools.count()
        self.newest = -_NEVER  # newest event time accepted
        self.watermark = -_NEVER  # everything up to here has been applied and judged
        self.history_start = _NEVER  # event time of the first applied event
        self._next_tick = _NEVER
        self._next_expiry = _NEVER
        # A plain dict, not a Counter: incremented for every event, and CPython's fast path
        # for that is for exact dicts. Every type is there from the start (zeros exported).
        self.accepted: dict[str, int] = dict.fromkeys(EVENT_CLASSES, 0)
        self.rejected: Counter[str] = Counter()
        self.skipped_gaps = 0
        self._negative_max = detectors.negative_feedback.negative_max_score
        self.recent_complaints: deque[Complaint] = deque(maxlen=RECENT_COMPLAINTS)
        # (An attrgetter reads the event time without a Python-level call: the hot path.)
        self._handlers: dict[type, Handler] = {
            cls: (check, attrgetter(cls.time_field), apply)
            for cls, check, apply in (
                (HubDispatched, self._check_dispatch, self._apply_dispatch),
                (ClaimArrived, self._check_arrival, self._apply_arrival),
                (ClaimCompleted, self._check_completion, self._apply_completion),
                # Unknown clients get the default agreement: nothing to check.
                (SurveyResponse, None, self._apply_survey),
            )
        }

    def _handlers_for(self, name: str) -> list[Callable[[Any], None]]:
        return [getattr(d, name) for d in self.detectors if overrides(d, name)]

    @property
    def advisor(self) -> Advisor | None:
        """Staffing advice (claimflow/staffing/advice.py), when a roster is known: SlaAtRisk alerts
        then carry who could help, their resolutions who can go back. Swappable at any time
        (the live worker reloads the roster file)."""
        return self._advisor

    @advisor.setter
    def advisor(self, advisor: Advisor | None) -> None:
        self._advisor = self.backlog.advisor = self.impact.advisor = advisor

    # --- input ---------------------------------------------------------------------------

    def ingest(self, event: Event, t: float | None = None) -> Rejection | None:
        """Take one validated event. Returns a Rejection for input that does not count as a
        new event (unknown team or hub, duplicate, late); the caller dead-letters it. `t` is
        the event time in epoch seconds when the caller has it already (the replay loop)."""
        # The hot path: every event passes here, so it reads locals and skips calls it can.
        check, event_time, apply = self._handlers[event.__class__]
        if check is not None:
            problem = check(event)
            if problem is not None:
                return self._reject(problem)
        if t is None:
            t = event_time(event).timestamp()
        newest = self.newest
        if t > newest + self.max_jump and newest != -_NEVER:
            return self._reject(
                Rejection(
                    Reason.FUTURE_TIMESTAMP,
                    f"{(t - newest) / 86400:.0f} days ahead of every event seen so far "
                    f"(engine.max_jump is {self.max_jump / 86400:.0f} days)",
                )
            )
        if not self._first_time(event.event_id, t if t > newest else newest):
            return self._reject(
                Rejection(Reason.DUPLICATE, f"event_id {event.event_id!r} seen before")
            )
        self.accepted[event.type] += 1
        watermark = self.watermark
        if t < watermark:
            heappush(self._buffer, (watermark, next(self._seq), apply, event, False))
            return self._reject(
                Rejection(
                    Reason.LATE,
                    f"{newest - t:.0f}s behind the newest event, over the {self.lateness:.0f}s "
                    "allowed lateness: claim state updated, windows not",
                    applied=True,
                )
            )
        buffer = self._buffer
        heappush(buffer, (t, next(self._seq), apply, event, True))
        if t > newest:
            self.newest = t
            watermark = t - self.lateness
            # Only call into the event-time machinery when the watermark releases something.
            if buffer[0][0] <= watermark or self._next_tick <= watermark:
                self._advance(watermark)
            elif watermark > self.watermark:
                self.watermark = watermark
        return None

    def advance_to(self, t: float) -> None:
        """Move event time on without events (the live worker's clock; end of a replay)."""
        self.newest = max(self.newest, t)
        self._advance(min(t, self.newest))

    def finish(self) -> None:
        """End of input: apply everything buffered and judge up to the newest event time."""
        if self.newest > -_NEVER:
            self._advance(self.newest)

    def drain_alerts(self) -> list[Alert]:
        return self.book.drain()

    def refuse(self, rejection: Rejection) -> None:
        """Count input refused before it reached the engine (it did not decode), so that the
        rejected-by-reason counter covers every dead letter."""
        self._reject(rejection)

    def _reject(self, rejection: Rejection) -> Rejection:
        self.rejected[rejection.reason.value] += 1
        return rejection

    def _check_dispatch(self, event: HubDispatched) -> Rejection | None:
        centers = self.hub_centers.get(event.hub_id)
        if centers is None:
            return Rejection(Reason.UNKNOWN_HUB, f"hub {event.hub_id!r} is not configured")
        if event.center_id not in centers:
            return Rejection(
                Reason.UNKNOWN_CENTER,
                f"center {event.center_id!r} is not configured for hub {event.hub_id!r}",
            )
        return None

    def _check_arrival(self, event: ClaimArrived) -> Rejection | None:
        if event.team not in self.teams:
            return Rejection(Reason.UNKNOWN_TEAM, f"team {event.team!r} is not configured")
        if event.hub_id not in self.hub_centers:
            return Rejection(Reason.UNKNOWN_HUB, f"hub {event.hub_id!r} is not configured")
        return None

    def _check_completion(self, event: ClaimCompleted) -> Rejection | None:
        if event.team not in self.teams:
            return Rejection(Reason.UNKNOWN_TEAM, f"team {event.team!r} is not configured")
        return None

    # --- event time ----------------------------------------------------------------------

    def _advance(self, watermark: float) -> None:
        buffer = self._buffer
        while True:
            next_tick = self._next_tick
            # Apply the buffered events the watermark has passed, up to the next tick.
            while buffer:
                t, _, apply, event, count = buffer[0]
                if t > watermark or t >= next_tick:
                    break
                heappop(buffer)
                if t < self.history_start:
                    self._start_history(t)
                    next_tick = self._next_tick
                apply(event, t, count)  # count is False for late facts: judged windows stay
            if next_tick > watermark:
                break
            self._skip_long_gap(watermark)
            self._evaluate(self._next_tick)
            self._next_tick += self.tick
        self.watermark = max(self.watermark, watermark)

    def _skip_long_gap(self, watermark: float) -> None:
        """Across a gap in the data longer than the claim memory, tick only through its last
        `claim_memory`: whatever happened before that has expired from every window and
        memory anyway, and ticking minute by minute through months would stall the worker."""
        until = min(watermark, self._buffer[0][0]) if self._buffer else watermark
        resume = (until - self.catch_up) // self.window * self.window
        if resume > self._next_tick:
            self._next_tick = resume
            self.skipped_gaps += 1

    def _start_history(self, t: float) -> None:
        self.history_start = t
        self._next_tick = (t // self.tick + 1) * self.tick
        self._next_expiry = t + HOUR

    def _apply_arrival(self, event: ClaimArrived, t: float, count: bool) -> None:
        received = event.hub_received_at.timestamp()
        due, same_day = self.deadlines.due_at(event.client_id, received)
        claim, team = event.claim_id, event.team
        first = self.backlog.open_claim(claim, team, due, t)  # the claim registry
        fact = Arrived(
            claim, team, event.hub_id, event.client_id, t, received, due, same_day, count, first
        )
        for handle in self._on_arrived:
            handle(fact)

    def _apply_completion(self, event: ClaimCompleted, t: float, count: bool) -> None:
        closed = self.backlog.close_claim(event.claim_id, event.team, t, count)
        fact = Completed(event.claim_id, event.team, t, count, closed)
        for handle in self._on_completed:
            handle(fact)

    def _apply_dispatch(self, event: HubDispatched, t: float, count: bool) -> None:
        if count and not self.backlog.knows(event.claim_id):  # not arrived already
            fact = Dispatched(
                event.claim_id,
                (event.hub_id, event.center_id),
                t,
                event.client_id,
                event.hub_received_at.timestamp(),
            )
            for handle in self._on_dispatched:
                handle(fact)

    def _apply_survey(self, event: SurveyResponse, t: float, count: bool) -> None:
        claim = event.claim_id
        team = (self.backlog.team_of(claim) or self.feedback.team_of(claim)) if claim else None
        fact = Answered(event.client_id, team, event.score, t, count, claim)
        for handle in self._on_answered:
            handle(fact)
        if event.comment and event.score <= self._negative_max:
            # For the managers' wall page only: personal data, never a metric.
            self.recent_complaints.append(
                Complaint(t, event.client_id, team, event.score, event.comment[:500])
            )

    def _evaluate(self, now: float) -> None:
        history_start = self.history_start
        for detector in self.detectors:
            detector.evaluate(now, history_start)
        if self.book.pending:
            self.book.seal()  # published as of this tick, however late it is drained
        if now >= self._next_expiry:
            self._next_expiry = now + HOUR
            for detector in self.detectors:
                detector.expire(now)
