"""Open claims per team, throughput, and the SLA projection (`SlaAtRisk`).

Each open claim costs one dict entry and one small record (its due instant and arrival
time); benchmarks/replay_throughput.py measures the bytes.

The projection assumes a team works its queue earliest-deadline-first at its recent pace.
Pace is completions per second of *busy working time* over `throughput_window`: time inside
the team's working hours with a non-empty queue, so an idle morning does not make the team
look slow when the noon batch lands. With less than `min_busy` of such time in the window
(early morning), the last trusted pace is carried over: it can keep or resolve an episode,
but only a fresh pace opens one (Friday's pace says little about Monday's staffing).

On a hub-link break day (engine/impact.py sets `behind_break`), completions of a team
starved by the break follow its broken inflow, not its people: there, and for a throughput
window after the team last expected stuck claims, the pace is at least the team's working
pace (measured over a window in which it always had a waiting line), and a pace carried
over while it idles opens an episode only if it was measured in the current shift.

For every upcoming deadline D within `horizon`, the team can still finish
pace × (working time until D) claims; claims due by D beyond that, in deadline order, miss.
`SlaAtRisk` fires for (team, D) when at least `min_misses` and `min_miss_share` of the
claims due at D are projected to miss for `hold` in a row, and resolves when fewer than
half that are for `keep_firing_for`, or when D passes (the details then say how many
did miss).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import msgspec
from mypy_extensions import mypyc_attr

from claimflow.config import SlaAtRiskSettings
from claimflow.engine.alerts import Alert, AlertBook
from claimflow.engine.detector import Advisor, Detector
from claimflow.engine.windows import BucketCounts
from claimflow.timeutil import HOUR, iso
from claimflow.workhours import WorkingCalendar


class Projection(NamedTuple):
    due: int  # claims due at the deadline
    misses: int  # of them, projected to miss at the current pace
    needed: float | None  # claims per working hour needed to clear everything due by then


# Adds advice (staffing suggestions) to an SlaAtRisk alert as it opens or resolves; called
# with the alert, its team and deadline after every team has been projected at that tick.


class OpenClaim(msgspec.Struct, gc=False):
    """One open claim. A struct built in C: one is made for every arrival, and there are
    tens of thousands alive at once (gc=False: two floats cannot form a cycle)."""

    due: float
    arrived_at: float


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class TeamQueue:
    __slots__ = ("calendar", "due_counts", "open", "pace")

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self.open: dict[str, OpenClaim] = {}
        self.due_counts: dict[float, int] = {}
        self.pace: float | None = None  # claims per busy working second, last trusted value


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(frozen=True, slots=True)
class TeamBacklog:
    """One team's queue and projection as the views show it, current as of `now`."""

    open: int
    by_class: dict[str, int]  # overdue / due_today / due_later
    outlook: dict[str, tuple[int, int, float | None]]  # class -> (due, misses, pace needed)
    projections: dict[float, Projection]  # deadline -> the last projection
    stuck_expected: float  # claims behind a broken link expected to reach the team
    oldest_arrival: float | None
    pace_per_hour: float | None
    completed_total: int
    completions_without_arrival: int


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class Backlog(Detector[str, TeamBacklog]):
    """The claim registry the engine consults to place facts (which team holds an open
    claim, whether an arrival or completion repeats one) and the SlaAtRisk detector over
    the teams' queues."""

    def __init__(
        self,
        settings: SlaAtRiskSettings,
        window: float,
        memory: float,
        calendars: dict[str, WorkingCalendar],
        book: AlertBook,
    ) -> None:
        self.settings = settings
        self.window = window
        self.memory = memory
        self.book = book
        # Called before each projection: adds the stuck claims as demand (engine/impact.py).
        self.before_projection: Callable[[float], None] | None = None
        self.teams = {team: TeamQueue(cal) for team, cal in calendars.items()}
        self.completions = BucketCounts(window, max(settings.throughput_window, 86400.0) + window)
        self.busy = BucketCounts(window, settings.throughput_window + window)
        # Recently completed claims -> team, in two generations (see dedupe.SeenIds).
        self._done: dict[str, str] = {}
        self._done_before: dict[str, str] = {}
        self._rotate_at: float | None = None
        self.ignored_arrivals = 0
        self.ignored_completions = 0
        # team -> completions of claims never seen arriving: counted, not in the pace
        self.completions_without_arrival: dict[str, int] = {}
        self._at_risk: set[tuple[str, float]] = set()  # open SlaAtRisk episodes (team, due)
        self._open_team: dict[str, str] = {}  # open claim -> its team, for O(1) look-ups
        self.completed_total: dict[str, int] = {}  # team -> completions ever (a counter)
        # The last projection per team: deadline -> (claims due, projected misses).
        self.projections: dict[str, dict[float, Projection]] = {t: {} for t in self.teams}
        self.advisor: Advisor | None = None
        self._changed: list[tuple[Alert, str, float]] = []  # episodes opened/ended this tick
        # Claims dispatched and not arrived, as expected demand: team -> due -> claims
        # (fractional: split by the client's routing). Set by engine.impact every window.
        self.stuck: dict[str, dict[float, float]] = {}
        self.behind_break: set[str] = set()  # teams expecting claims from a broken route
        # Same-day claims still to reach the hub today, for teams a break touched today:
        # team -> due -> claims (a low quantile of the last days', set by engine.impact).
        self.upcoming: dict[str, dict[float, float]] = {}
        self.trusted: set[str] = set()  # teams whose last projection may open an episode
        # team -> the pace measured over a window in which it always had a waiting line,
        # and when (see _evaluate_team)
        self.working_pace: dict[str, float] = {}
        self.working_pace_at: dict[str, float] = {}
        self.paced_at: dict[str, float] = {}  # team -> when its pace was last measured fresh
        self.starved_at: dict[str, float] = {}  # team -> last working tick it was starved
        self.break_until: dict[str, float] = {}  # team -> end of its break's pace shadow

    # --- facts -------------------------------------------------------------------------

    def team_of(self, claim_id: str) -> str | None:
        return (
            self._open_team.get(claim_id)
            or self._done.get(claim_id)
            or self._done_before.get(claim_id)
        )

    def knows(self, claim_id: str) -> bool:
        """Arrived already (open, or done within the memory)."""
        return (
            claim_id in self._open_team or claim_id in self._done or claim_id in self._done_before
        )

    def open_claim(self, claim_id: str, team: str, due: float, t: float) -> bool:
        """Opens the claim; False when it is already open or done (a repeated fact)."""
        queue = self.teams[team]
        if claim_id in queue.open or claim_id in self._done or claim_id in self._done_before:
            self.ignored_arrivals += 1
            return False
        queue.open[claim_id] = OpenClaim(due, t)
        queue.due_counts[due] = queue.due_counts.get(due, 0) + 1
        self._open_team[claim_id] = team
        return True

    def close_claim(self, claim_id: str, team: str, t: float, count: bool = True) -> bool:
        """Closes the claim; False when it was already completed."""
        opened_in = self._open_team.pop(claim_id, None)  # may differ from the completing team
        queue = self.teams[opened_in or team]
        claim = queue.open.pop(claim_id, None)
        if claim is None:
            if claim_id in self._done or claim_id in self._done_before:
                self.ignored_completions += 1
                return False
            missing = self.completions_without_arrival
            missing[team] = missing.get(team, 0) + 1
        else:
            left = queue.due_counts[claim.due] - 1
            if left:
                queue.due_counts[claim.due] = left
            else:
                del queue.due_counts[claim.due]
        # Remember it as done, in two generations of `memory` each (see dedupe.SeenIds).
        if self._rotate_at is None:
            self._rotate_at = t + self.memory
        elif t >= self._rotate_at:
            self._done_before, self._done = self._done, {}
            self._rotate_at = t + self.memory
        self._done[claim_id] = team
        self.completed_total[team] = self.completed_total.get(team, 0) + 1
        if count and claim is not None:  # no arrival seen: no queue it shortened, no pace
            self.completions.add(team, t)
        return True

    def demand(self, team: str) -> dict[float, float]:
        """Claims due per deadline that the team will have to work: its queue, the stuck
        claims expected to reach it, and on a break day the same-day claims still to reach
        the hub before the cutoff (engine/impact.py)."""
        queue = self.teams[team].due_counts
        stuck = self.stuck.get(team)
        upcoming = self.upcoming.get(team)
        if not stuck and not upcoming:
            return queue  # type: ignore[return-value]
        out: dict[float, float] = dict(queue)
        for extra in (stuck, upcoming):
            if extra:
                for due, n in extra.items():
                    out[due] = out.get(due, 0) + n
        return out

    # --- evaluation --------------------------------------------------------------------

    def account_busy(self, now: float, span: float) -> None:
        """Count the `span` that just ended as busy time for teams working with a queue
        (sampled at its middle: pace is judged over hours, so minutes do not matter)."""
        middle = now - span / 2
        for team, queue in self.teams.items():
            if queue.open and queue.calendar.is_working(middle):
                self.busy.add(team, now - span, span)

    def pace(self, team: str, now: float) -> tuple[float | None, bool]:
        """Claims per busy working second, and whether it was measured just now (fresh) or
        carried over from the last time there was enough busy time."""
        queue = self.teams[team]
        start = now - self.settings.throughput_window
        busy = self.busy.window_sum(team, start, now)
        if busy >= self.settings.min_busy:
            queue.pace = self.completions.window_sum(team, start, now) / busy
            self.paced_at[team] = now
            return queue.pace, True
        return queue.pace, False

    def evaluate(self, now: float, history_start: float) -> None:
        if now % self.window:
            return  # projected once a window
        self.account_busy(now, self.window)
        if self.before_projection is not None:
            self.before_projection(now)
        for team in sorted(self.teams):
            self._evaluate_team(team, now)
        if self._changed:
            changed, self._changed = self._changed, []
            if self.advisor is not None:
                for alert, team, due in changed:
                    self.advisor.advise(alert, team, due)

    def _today_shift_start(self, team: str, now: float) -> float | None:
        calendar = self.teams[team].calendar
        span = calendar.shift(calendar.local_day(now))
        return span[0] if span is not None and span[0] <= now else None

    def _evaluate_team(self, team: str, now: float) -> None:  # noqa: PLR0912, PLR0915 - one team's judgement read top to bottom; compiled hot path
        queue = self.teams[team]
        pace, fresh = self.pace(team, now)
        demand = self.demand(team)
        if team in self.behind_break:
            self.break_until[team] = now + self.settings.throughput_window
        shift_start = self._today_shift_start(team, now)
        if pace is not None and shift_start is not None and queue.calendar.is_working(now):
            # Starved: fewer open claims than an hour of work at the pace the team showed
            # with a waiting line today (or its current pace, if higher). Each claim is then
            # done soon after it lands: completions follow the inflow, not the people.
            # Judged against today's working pace, not only the current one: a pace that
            # falls with a dried-up inflow would make any short queue look like a line.
            known = self.working_pace.get(team)
            if known is None or self.working_pace_at.get(team, -math.inf) < shift_start:
                known = 0.0
            if len(queue.open) < max(pace, known) * HOUR:
                self.starved_at[team] = now
            # A pace measured over a window in which the team was never starved (this
            # shift) is its working pace; one measured over starved time is a lower bound.
            clean = now - self.starved_at.get(team, -math.inf) >= self.settings.throughput_window
            if fresh and clean:
                self.working_pace[team] = pace
                self.working_pace_at[team] = now
        if team in self.behind_break or now < self.break_until.get(team, -math.inf):
            if team in self.behind_break and not fresh and pace is not None:
                # Idle for want of claims, not of people: the pace measured earlier in this
                # shift is the best estimate of what the team will do when the stuck
                # claims land. A pace carried over from an earlier shift is not (yesterday
                # evening's says nothing of today's staffing): it keeps an episode, never
                # opens one.
                paced = self.paced_at.get(team, -math.inf)
                fresh = shift_start is not None and paced >= shift_start
            if pace is not None and team in self.working_pace:
                # During a break and for a throughput window after it, completions follow
                # the broken inflow, and the measured pace falls with it: it is a lower
                # bound, and the last working pace (measured with a waiting line) is kept.
                # (benchmarks/break_impact.py, midday break, 3 seeds, the receiving team
                # at full and at half staff: teams starved this way raised 12 SlaAtRisk
                # for claims they then cleared on time before, none after.)
                pace = max(pace, self.working_pace[team])
        if fresh:
            self.trusted.add(team)
        else:
            self.trusted.discard(team)
        ahead = 0.0  # claims due before the deadline being looked at, overdue ones included
        projected: dict[float, tuple[int, int, float, float]] = {}
        for due in sorted(demand):
            count = round(ahead + demand[due]) - round(ahead)
            if due > now and due - now <= self.settings.horizon and pace is not None:
                working = queue.calendar.working_seconds(now, due)
                capacity = pace * working
                misses = min(count, max(0, math.ceil(round(ahead) + count - capacity - 1e-9)))
                projected[due] = (count, misses, capacity, working)
            ahead += demand[due]
        self.projections[team] = {}
        queued = 0
        for due in sorted(demand):
            if due in projected:
                count, misses, _, working = projected[due]
                needed = (queued + count) / (working / HOUR) if working > 0 else None
                self.projections[team][due] = Projection(count, misses, needed)
            queued = round(queued + demand[due])
        # Episodes whose deadline passed: resolve, saying how many missed.
        for due in sorted(d for (t, d) in self._at_risk if t == team and d <= now):
            self._at_risk.discard((team, due))
            missed = queue.due_counts.get(due, 0)
            ended = self.book.resolve(
                "SlaAtRisk",
                {"team": team, "deadline": iso(due)},
                now,
                f"{team}: deadline {iso(due)} passed with {missed} of its claims not done",
                {"deadline": iso(due), "missed": missed},
            )
            if ended is not None:
                self._changed.append((ended, team, due))
        queued = 0
        for due in sorted(demand):
            if due not in projected:
                queued = round(queued + demand[due])
                continue
            count, misses, capacity, working = projected[due]
            labels = {"team": team, "deadline": iso(due)}
            hours_left = working / HOUR
            details = {
                "deadline": iso(due),
                "due_claims": count,
                "ahead_in_queue": queued,
                "projected_misses": misses,
                "throughput_per_hour": round((pace or 0) * HOUR, 1),
                "needed_per_hour": round((queued + count) / hours_left, 1) if hours_left else None,
                "working_hours_left": round(hours_left, 2),
                "projected_done": math.floor(capacity),
            }
            if not self.book.is_open("SlaAtRisk", labels):
                if (
                    fresh
                    and misses >= self.settings.min_misses
                    and misses >= self.settings.min_miss_share * count
                ):
                    summary = (
                        f"{team}: {misses} of {count} claims due {iso(due)} will miss at the "
                        f"current pace ({details['throughput_per_hour']}/h, "
                        f"{details['needed_per_hour']}/h needed)"
                    )
                    fired = self.book.fire(
                        "SlaAtRisk", labels, now, summary, details, self.settings.hold
                    )
                    if fired is not None:
                        self._at_risk.add((team, due))
                        self._changed.append((fired, team, due))
                else:
                    self.book.calm("SlaAtRisk", labels)
            elif misses * 2 < self.settings.min_misses:
                summary = f"{team}: the queue due {iso(due)} will now clear at the current pace"
                ended = self.book.resolve(
                    "SlaAtRisk", labels, now, summary, details, self.settings.keep_firing_for
                )
                if ended is not None:
                    self._at_risk.discard((team, due))
                    self._changed.append((ended, team, due))
            else:
                self.book.calm("SlaAtRisk", labels)  # still at risk: no resolution under way
            queued += count

    def expire(self, now: float) -> None:
        self.completions.expire(now)
        self.busy.expire(now)

    # --- state for metrics and the wall page ------------------------------------------

    def scopes(self) -> list[str]:
        return sorted(self.teams)

    def read(self, scope: str, now: float) -> TeamBacklog:
        return TeamBacklog(
            open=self.open_count(scope),
            by_class=self.by_class(scope, now),
            outlook=self.outlook(scope, now),
            projections=dict(self.projections.get(scope, {})),
            stuck_expected=sum(self.stuck.get(scope, {}).values()),
            oldest_arrival=self.oldest_arrival(scope),
            pace_per_hour=self.pace_per_hour(scope),
            completed_total=self.completed_total.get(scope, 0),
            completions_without_arrival=self.completions_without_arrival.get(scope, 0),
        )

    def open_count(self, team: str) -> int:
        return len(self.teams[team].open)

    def oldest_arrival(self, team: str) -> float | None:
        queue = self.teams[team].open
        return next(iter(queue.values())).arrived_at if queue else None

    def at_risk(self, team: str, now: float) -> dict[str, int]:
        """Claims projected to miss deadlines still ahead, by whether the deadline is today
        (in the team's time zone) or later."""
        return {k: v[1] for k, v in self.outlook(team, now).items()}

    def outlook(self, team: str, now: float) -> dict[str, tuple[int, int, float | None]]:
        """For deadlines still ahead, by class (due today in the team's time zone, or later):
        claims due, projected misses, and the most demanding pace needed (claims per working
        hour, None before the team's pace is known)."""
        calendar = self.teams[team].calendar
        today = calendar.local_day(now)
        out: dict[str, tuple[int, int, float | None]] = {
            "due_today": (0, 0, None),
            "due_later": (0, 0, None),
        }
        for due, p in self.projections.get(team, {}).items():
            if due <= now:
                continue
            key = "due_today" if calendar.local_day(due - 1e-6) == today else "due_later"
            count, misses, needed = out[key]
            if p.needed is not None:
                needed = p.needed if needed is None else max(needed, p.needed)
            out[key] = (count + p.due, misses + p.misses, needed)
        return out

    def pace_per_hour(self, team: str) -> float | None:
        """The team's last measured pace, claims per busy working hour."""
        pace = self.teams[team].pace
        return pace * HOUR if pace is not None else None

    def by_class(self, team: str, now: float) -> dict[str, int]:
        """Open claims by SLA class: overdue, due today (team's local day), due later."""
        queue = self.teams[team]
        today = queue.calendar.local_day(now)
        out = {"overdue": 0, "due_today": 0, "due_later": 0}
        for due, count in queue.due_counts.items():
            if due <= now:
                out["overdue"] += count
            elif queue.calendar.local_day(due - 1e-6) == today:
                out["due_today"] += count
            else:
                out["due_later"] += count
        return out
