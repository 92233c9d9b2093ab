"""Stuck claims as demand, and what a hub-link break means in the client's terms.

A claim dispatched by a hub and not arrived (in transit, or missing behind a broken link) is
in no team's queue, yet it is due under the client's agreement from the moment it reached
the hub. Left out, the SLA projection looks fine all through a break and the risk appears
only when the flood lands. So, once per evaluation window (never per event):

* Each claim stuck behind a broken route (a claim in normal transit lands within minutes and
  is left out, which keeps this cheap) becomes expected demand for the teams that will
  receive it, split by the client's recent routing (the share of each team among the
  client's last arrivals; the dispatch does not say the claim type), at its due instant
  under the client's agreement
  (`DeadlineCalendar.due_at` from `hub_received_at`). `Backlog` projects on that demand.
* On a day a break touches a team, the same-day claims still to reach the hub before the
  cutoff are demand for it too (`SameDayInflow`, a low quantile of the last business
  days'), from the break until the cutoff, after the link's return included: they are due
  at the same deadline as the stuck ones, and on a break morning they are much of what
  decides whether the team makes it. Measured (benchmarks/break_impact.py): on a night
  break with the receiving team short-staffed, the projection at 10:00 counted the 146
  claims due at 18:00 that had reached the hub and said "no misses"; the team missed 31,
  because some 80 more same-day claims reached the hub between 10:00 and the noon cutoff.
  On other days this is left out: the queue is fed as the claims come and the projection
  is re-judged at every window (SlaAtRisk's benchmarked behaviour stays as it was).
* While a route is broken, the projection is repeated for several return times (now, +1 h,
  +2 h) with the stuck claims workable only from the return, and the latest return after
  which the deadline can no longer be met at the current pace is searched.
* Per route and client: claims missing, how many are entitled to same-day service today
  (reached the hub by the cutoff on a business day, due today), the earliest due instant.
  The open `HubLinkBreak` alert's details are kept current with it.
* Per client: same-day claims due today still open (queued or stuck), stuck, projected to
  miss (each team's projected misses at a deadline shared out by the client's part of the
  demand there), and when they are projected to be done at the current pace;
  `ClientSameDayAtRisk` fires per client on the projected misses.

Labels are bounded by the configuration: clients not configured fold into `other`.
Plain Python: no Faust or Kafka.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from claimflow.engine.detector import Advisor, Arrived, Completed, Detector
from claimflow.timeutil import HOUR, iso

CLIENT_EVERY = 900.0  # seconds of event time between client-view evaluations

if TYPE_CHECKING:
    from claimflow.config import SlaAtRiskSettings
    from claimflow.deadlines import DeadlineCalendar
    from claimflow.engine.alerts import AlertBook
    from claimflow.engine.hublink import HubLinks
    from claimflow.engine.sla_risk import Backlog
    from claimflow.workhours import WorkingCalendar

OTHER = "other"
ROUTING_MEMORY = 200  # a client's last arrivals its routing shares are taken from
RETURN_STEP = 300.0  # grid of the latest-return search


INFLOW_DAYS = 10  # business days a team's same-day inflow is learned from (two weeks)
INFLOW_QUANTILE = 0.25  # of those days' counts still to come: a low one (see SameDayInflow)
INFLOW_MIN_DAYS = 3  # fewer days than this: no expectation
QUARTER = 900.0  # the inflow profile's resolution (seconds)
QUARTERS = 100  # quarter hours a local day can have (25 h on the autumn clock change)


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class SameDayInflow:
    """When each team's same-day claims reach the hub, on the last business days: to expect
    the ones still to come today before the cutoff.

    Per team, due time of day and the due's local day: how many of its same-day claims
    reached the hub in each quarter hour of that day (a claim counts on its first arrival,
    keyed by `hub_received_at`, so claims stuck behind a break count on their day when they
    land, and a break day's profile is as complete as any other). For today, each
    of the last `INFLOW_DAYS` days with such claims (days with none, weekends and holidays,
    are not days of this agreement) gives how many reached the hub later in its day than
    now; the expectation is a low quantile (`INFLOW_QUANTILE`, the third lowest of ten) of
    those counts, not their mean: SlaAtRisk is a warning with a false-alarm budget, and a
    projection that counts a quiet day's arrivals is wrong on the safe side three days in
    four. (The mean is what the first version used; it was not the cause of its false
    alarms, see docs/detectors.md, but a quiet day is as real as a busy one.)"""

    def __init__(self, zone: ZoneInfo, days: int = INFLOW_DAYS) -> None:
        self.zone = zone
        self.days = days
        # team -> due seconds after local midnight -> local day -> claims per quarter hour
        # of that day in which they reached the hub (a fixed 100 counts a day: 25 hours)
        self._seen: dict[str, dict[int, dict[date, list[int]]]] = {}
        self._due_key: dict[float, tuple[date, float, int]] = {}  # due -> (day, midnight, tod)

    def _place(self, due: float) -> tuple[date, float, int]:
        entry = self._due_key.get(due)
        if entry is None:
            if len(self._due_key) > 10_000:
                self._due_key.clear()
            local = datetime.fromtimestamp(due, self.zone)
            midnight = datetime.combine(local.date(), datetime.min.time(), self.zone)
            tod = local.hour * 3600 + local.minute * 60 + local.second
            entry = self._due_key[due] = (local.date(), midnight.timestamp(), tod)
        return entry

    def add(self, team: str, due: float, received: float) -> None:
        """A same-day claim's first arrival (cheap: per arrival, a few look-ups and a count
        in the quarter hour it reached the hub)."""
        day, midnight, tod = self._place(due)
        per_tod = self._seen.get(team)
        if per_tod is None:
            per_tod = self._seen[team] = {}
        per = per_tod.get(tod)
        if per is None:
            per = per_tod[tod] = {}
        bins = per.get(day)
        if bins is None:
            bins = per[day] = [0] * QUARTERS
            if len(per) > self.days + 7:  # the days needed, and a few that may be today's
                del per[min(per)]
        bins[min(QUARTERS - 1, max(0, int((received - midnight) // QUARTER)))] += 1

    def expected(self, team: str, now: float) -> dict[float, float]:
        """Due instant today -> same-day claims expected to reach the hub after `now` and
        be due then (today's deadlines still ahead only). Per evaluation, for the teams a
        break touched today: a hundred additions per day and due time at most."""
        local = datetime.fromtimestamp(now, self.zone)
        today = local.date()
        midnight = datetime.combine(today, datetime.min.time(), self.zone).timestamp()
        position = (now - midnight) / QUARTER
        current = min(QUARTERS - 1, max(0, int(position)))
        rest = 1.0 - (position - current)  # of the current quarter hour, still to come
        out: dict[float, float] = {}
        for tod, per in self._seen.get(team, {}).items():
            due = midnight + tod  # (a daylight-saving day shifts it by the hour: rare)
            if due <= now:
                continue
            days = sorted((d for d in per if d < today), reverse=True)[: self.days]
            if len(days) < INFLOW_MIN_DAYS:
                continue
            counts = sorted(sum(per[d][current + 1 :]) + rest * per[d][current] for d in days)
            later = counts[int(INFLOW_QUANTILE * (len(counts) - 1))]
            if later > 0:
                out[due] = later
        return out


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class Routing:
    """Where each client's claims went lately: team shares over its last arrivals."""

    def __init__(self, keep: int = ROUTING_MEMORY) -> None:
        self.keep = keep
        self._recent: dict[str, deque[str]] = {}
        self._counts: dict[str, dict[str, int]] = {}

    def on_arrival(self, client: str, team: str) -> None:
        recent = self._recent.get(client)
        if recent is None:
            recent = self._recent[client] = deque()
            self._counts[client] = {}
        counts = self._counts[client]
        recent.append(team)
        counts[team] = counts.get(team, 0) + 1
        if len(recent) > self.keep:
            old = recent.popleft()
            counts[old] -= 1

    def shares(self, client: str) -> dict[str, float]:
        """Team -> share of the client's recent claims; all clients together when this one
        has no history yet; empty when nothing has arrived at all."""
        counts = self._counts.get(client)
        if not counts or not sum(counts.values()):
            counts = {}
            for per in self._counts.values():
                for team, n in per.items():
                    counts[team] = counts.get(team, 0) + n
        total = sum(counts.values())
        return {t: n / total for t, n in sorted(counts.items()) if n} if total else {}


def done_by(
    present: float,
    stuck: float,
    pace: float,
    calendar: WorkingCalendar,
    now: float,
    back: float,
    deadline: float,
) -> float:
    """Claims (of `present` queued and `stuck` arriving at `back`, all due by `deadline`) the
    team can finish by `deadline` at `pace` per working second, earliest deadline first:
    before `back` only the queued ones can be worked."""
    if deadline <= now:
        return 0.0
    c1 = pace * calendar.working_seconds(now, min(back, deadline))
    c2 = pace * calendar.working_seconds(max(back, now), deadline) if deadline > back else 0.0
    return min(present + stuck, c1 + c2, present + c2)


def finish_time(calendar: WorkingCalendar, start: float, work: float) -> float | None:
    """The instant `work` working seconds after `start` (None beyond two weeks)."""
    if work <= 0:
        return start
    day = start
    for _ in range(14):  # a day at a time: the work is nearly always done today
        for begin, end in calendar.spans(day, day + 86400):
            if end - begin >= work:
                return begin + work
            work -= end - begin
        day += 86400
    return None


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(slots=True)
class RouteImpact:
    """A broken route's stuck claims for one client."""

    in_transit: int = 0
    missing: int = 0
    same_day_today: int = 0  # missing, entitled to same-day service, due today
    earliest_due: float | None = None  # among those

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_transit": self.in_transit,
            "missing": self.missing,
            "same_day_today": self.same_day_today,
            "earliest_due": iso(self.earliest_due) if self.earliest_due is not None else None,
        }


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(slots=True)
class ClientDay:
    """One client's same-day claims due today."""

    open: int = 0  # queued or stuck, not done
    stuck: int = 0  # dispatched, not arrived
    at_risk: int = 0  # projected to miss today's same-day deadline
    delayed: int = 0  # all of its claims stuck on a broken route
    deadline: float | None = None
    projected_done: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "same_day_open": self.open,
            "same_day_stuck": self.stuck,
            "same_day_at_risk": self.at_risk,
            "delayed_by_break": self.delayed,
            "deadline": iso(self.deadline) if self.deadline is not None else None,
            "projected_done": iso(self.projected_done) if self.projected_done is not None else None,
        }


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(slots=True)
class Scenario:
    """If the link comes back at `back`: misses at `deadline` and people needed from then."""

    back: float
    misses: int
    due: int
    people: int | None
    by_client: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "back": iso(self.back),
            "misses": self.misses,
            "due": self.due,
            "people_needed": self.people,
            "misses_by_client": self.by_client,
        }


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class Impact(Detector[str, dict[str, Any]]):
    """Stuck claims as demand, break impact per client and route, ClientSameDayAtRisk."""

    def __init__(
        self,
        settings: SlaAtRiskSettings,
        window: float,
        deadlines: DeadlineCalendar,
        links: HubLinks,
        backlog: Backlog,
        book: AlertBook,
        clients: list[str],
        timezone: str,
    ) -> None:
        self.settings = settings
        self.window = window
        self.advisor: Advisor | None = None  # the roster's headcounts for the what-if
        self.deadlines = deadlines
        self.links = links
        self.backlog = backlog
        self.book = book
        self.clients = sorted(clients)
        self._known = frozenset(clients)
        self.zone = ZoneInfo(timezone)
        self.routing = Routing()
        self.inflow = SameDayInflow(self.zone)
        # Same-day claims in a team's queue: claim -> (client folded, team, due).
        self.same_day_open: dict[str, tuple[str, str, float]] = {}
        self._open_counts: dict[tuple[str, str, float], int] = {}  # the same, counted
        self._day_of: dict[float, Any] = {}  # due instant -> the center's local day
        self.routes: dict[tuple[str, str], dict[str, RouteImpact]] = {}
        self.client_days: dict[str, ClientDay] = {c: ClientDay() for c in self.client_labels}
        self.scenarios: dict[str, dict[str, Any]] = {}  # team -> what-if per return time
        self.heads: dict[str, float] = {}  # people per team (the engine sets it from a roster)
        # (team, due) -> client -> expected claims (queued and stuck), for sharing out misses
        self._demand: dict[tuple[str, float], dict[str, float]] = {}
        self._stuck_client: dict[tuple[str, float], dict[str, float]] = {}
        self._stuck_same_day: dict[str, int] = {}
        self._delayed: dict[str, int] = {}
        # team -> due -> same-day claims expected to reach the hub later today (a break day)
        self.upcoming: dict[str, dict[float, float]] = {}
        self._break_day: dict[str, date] = {}  # team -> the last day a break touched it

    @property
    def client_labels(self) -> list[str]:
        return [*self.clients, OTHER]

    def fold(self, client: str) -> str:
        return client if client in self._known else OTHER

    # --- facts (cheap: called per arrival and completion) ----------------------------------

    def on_arrived(self, fact: Arrived) -> None:
        if not fact.first:
            return
        client = fact.client_id
        folded = client if client in self._known else OTHER
        self.routing.on_arrival(folded, fact.team)
        if fact.same_day:
            self.inflow.add(fact.team, fact.due, fact.received)
            key = (folded, fact.team, fact.due)
            self.same_day_open[fact.claim_id] = key
            self._open_counts[key] = self._open_counts.get(key, 0) + 1

    def on_completed(self, fact: Completed) -> None:
        if fact.closed and self.same_day_open:
            key = self.same_day_open.pop(fact.claim_id, None)
            if key is not None and key in self._open_counts:
                left = self._open_counts[key] - 1
                if left > 0:
                    self._open_counts[key] = left
                else:
                    del self._open_counts[key]

    # --- per evaluation window ------------------------------------------------------------

    def evaluate(self, now: float, history_start: float) -> None:
        """A break that fired at this tick gets its figures at once (whose claims, how many
        same-day); the client view and the what-if per return time every CLIENT_EVERY of
        event time (their cost is per evaluation; a quarter hour is fresh enough). The
        stuck demand itself is computed before each backlog projection
        (`Backlog.before_projection`)."""
        # Fired at this very tick: `pending` holds the changes not drained yet, and how many
        # ticks pass before a drain depends on how the input was batched (replay drains
        # after every event, the live worker after each released batch).
        if now % self.window and any(
            a.alert == "HubLinkBreak" and a.state == "firing" and a.at == now
            for a in self.book.pending
        ):
            self.stuck_demand(now)
        if now % self.window == 0 and now % CLIENT_EVERY == 0:
            if self.advisor is not None:
                self.heads = {t: self.advisor.headcount(t) for t in self.backlog.teams}
            self.after_projection(now)

    def _today(self, now: float) -> Any:
        return datetime.fromtimestamp(now, self.zone).date()

    def _is_today(self, due: float, today: Any) -> bool:
        day = self._day_of.get(due)
        if day is None:
            if len(self._day_of) > 10_000:
                self._day_of.clear()
            day = self._day_of[due] = datetime.fromtimestamp(due - 1e-6, self.zone).date()
        return bool(day == today)

    def stuck_demand(self, now: float) -> None:
        """Stuck claims as expected demand per team and deadline (into `backlog.stuck`), and
        the per-route, per-client impact. Run before the backlog is projected."""
        today = self._today(now)
        links = self.links
        broken = {route for route in links.routes if links.status(route)}
        stuck: dict[str, dict[float, float]] = {}
        stuck_client: dict[tuple[str, float], dict[str, float]] = {}
        stuck_same_day: dict[str, int] = {}
        delayed: dict[str, int] = {}
        routes: dict[tuple[str, str], dict[str, RouteImpact]] = {r: {} for r in sorted(broken)}
        shares_of: dict[str, dict[str, float]] = {}
        behind: set[str] = set()
        # Only claims behind a broken route: elsewhere a claim in transit lands in minutes,
        # and walking every transit each window would cost the replay its speed. Claims are
        # first counted by what the figures depend on (route, client, deadline, missing or
        # not), so the per-team sharing below runs per group, not per claim.
        groups: dict[tuple[tuple[str, str], str, float, bool, bool], int] = {}
        due_at, fold = self.deadlines.due_at, self.fold
        for route in sorted(broken):
            after = links.missing_after(route)
            edge = now - after if after is not None else -math.inf
            for rec in links.routes[route].pending.values():
                due, same_day = due_at(rec.client_id, rec.hub_received_at)
                key = (route, fold(rec.client_id), due, same_day, rec.dispatched_at <= edge)
                groups[key] = groups.get(key, 0) + 1
        for (route, client, due, same_day, missing), n in groups.items():
            shares = shares_of.get(client)
            if shares is None:
                shares = shares_of[client] = self.routing.shares(client)
            for team, share in shares.items():
                per = stuck.setdefault(team, {})
                per[due] = per.get(due, 0.0) + share * n
                by = stuck_client.setdefault((team, due), {})
                by[client] = by.get(client, 0.0) + share * n
            due_today = same_day and self._is_today(due, today)
            if due_today:
                stuck_same_day[client] = stuck_same_day.get(client, 0) + n
            behind.update(shares)
            delayed[client] = delayed.get(client, 0) + n
            impact = routes[route].get(client)
            if impact is None:
                impact = routes[route][client] = RouteImpact()
            impact.in_transit += n
            if missing:
                impact.missing += n
                if due_today:
                    impact.same_day_today += n
                    if impact.earliest_due is None or due < impact.earliest_due:
                        impact.earliest_due = due
        # The same-day claims still to reach the hub before today's cutoff, for the teams a
        # break touched today: due with the stuck ones, and in no queue yet either. Kept
        # after the link returns, until the cutoff: the flood lands then, and without them
        # the projection would drop back to the known queue just as the day's
        # outcome is decided (a night break's alert came 1.5 h after the return).
        for team in behind:
            self._break_day[team] = today
        upcoming: dict[str, dict[float, float]] = {}
        for team, day in sorted(self._break_day.items()):
            if day != today:
                continue
            ahead = self.inflow.expected(team, now)
            if ahead:
                upcoming[team] = ahead
        self.upcoming = self.backlog.upcoming = upcoming
        self.backlog.stuck = stuck
        self.backlog.behind_break = behind
        self.routes = routes
        self._stuck_client = stuck_client
        self._stuck_same_day = stuck_same_day
        self._delayed = delayed
        self._enrich_breaks()

    def _enrich_breaks(self) -> None:
        """Keep the open HubLinkBreak alerts' figures current (the wall shows them)."""
        for route, per in self.routes.items():
            alert = self.book.opened("HubLinkBreak", {"hub_id": route[0], "center_id": route[1]})
            if alert is None:
                continue
            figures = self.route_figures(route)
            alert.details["missing_claims"] = figures["missing"]
            alert.details["same_day_claims"] = figures["same_day_today"]
            alert.details["earliest_due"] = figures["earliest_due"]
            alert.details["clients"] = {c: i.to_dict() for c, i in sorted(per.items())}

    def route_figures(self, route: tuple[str, str]) -> dict[str, Any]:
        per = self.routes.get(route, {})
        dues = [i.earliest_due for i in per.values() if i.earliest_due is not None]
        return {
            "in_transit": sum(i.in_transit for i in per.values()),
            "missing": sum(i.missing for i in per.values()),
            "same_day_today": sum(i.same_day_today for i in per.values()),
            "earliest_due": iso(min(dues)) if dues else None,
            "clients": {c: i.to_dict() for c, i in sorted(per.items())},
        }

    def after_projection(self, now: float) -> None:
        """Per client figures and `ClientSameDayAtRisk`, and the what-if per return time, from
        the projection the backlog just made. Run after `backlog.evaluate`."""
        today = self._today(now)
        backlog = self.backlog
        demand: dict[tuple[str, float], dict[str, float]] = {}
        days = {c: ClientDay() for c in self.client_labels}
        for (client, team, due), n in list(self._open_counts.items()):
            if due < now - 7 * 86400:
                del self._open_counts[(client, team, due)]  # never completed: let it go
                continue
            if not self._is_today(due, today):
                continue
            days[client].open += n
            by = demand.setdefault((team, due), {})
            by[client] = by.get(client, 0.0) + n
        for key, per in self._stuck_client.items():
            if not self._is_today(key[1], today):
                continue
            by = demand.setdefault(key, {})
            for client, share in per.items():
                by[client] = by.get(client, 0.0) + share
        for client, stuck in self._stuck_same_day.items():
            days[client].stuck += stuck
            days[client].open += stuck
        for client, delayed in self._delayed.items():
            days[client].delayed = delayed
        risk: dict[str, float] = {}
        for (team, due), per in sorted(demand.items()):
            projection = backlog.projections.get(team, {}).get(due)
            total = sum(per.values())
            finish = self._finish(team, due, now)
            for client, expected in per.items():
                day = days[client]
                # Stuck claims due today need not be same-day ones (a weekend's, a
                # holiday's): a client with no same-day claim open has no same-day deadline.
                if day.open:
                    day.deadline = due if day.deadline is None else min(day.deadline, due)
                    if finish is not None:
                        done = day.projected_done
                        day.projected_done = finish if done is None else max(done, finish)
                trusted = team in backlog.trusted  # as SlaAtRisk: a pace fit to open on
                if projection is not None and projection.misses and total and trusted:
                    risk[client] = risk.get(client, 0.0) + projection.misses * expected / total
        for client, value in risk.items():
            days[client].at_risk = min(days[client].open, round(value))
        self.client_days = days
        self._demand = demand
        self._judge_clients(now)
        self._what_if(now)

    def _finish(self, team: str, due: float, now: float) -> float | None:
        """When the team is done with everything due by `due` (stuck claims as if here)."""
        pace = self.backlog.teams[team].pace
        if not pace:
            return None
        work = sum(c for d, c in self.backlog.demand(team).items() if d <= due)
        return finish_time(self.backlog.teams[team].calendar, now, work / pace)

    def _judge_clients(self, now: float) -> None:
        s = self.settings
        for client, day in sorted(self.client_days.items()):
            labels = {"client_id": client}
            details = {"client_id": client, **day.to_dict()}
            alert = self.book.opened("ClientSameDayAtRisk", labels)
            if alert is None:
                if day.at_risk >= s.min_misses and day.at_risk >= s.min_miss_share * day.open:
                    done = day.to_dict()["projected_done"]
                    summary = (
                        f"{client}: {day.at_risk} of {day.open} same-day claims due today are "
                        f"projected to miss ({day.stuck} not arrived yet); done about {done}"
                    )
                    self.book.fire("ClientSameDayAtRisk", labels, now, summary, details, s.hold)
                else:
                    self.book.calm("ClientSameDayAtRisk", labels)
            else:
                alert.details.update(details)  # current figures, not those at firing
                if day.at_risk * 2 < s.min_misses:
                    summary = f"{client}: today's same-day claims will now be done in time"
                    self.book.resolve(
                        "ClientSameDayAtRisk", labels, now, summary, details, s.keep_firing_for
                    )
                else:
                    self.book.calm("ClientSameDayAtRisk", labels)

    def _what_if(self, now: float) -> None:
        """For each team expecting stuck claims from a broken route: misses at its most
        loaded deadline today if the link comes back now, in 1 h, in 2 h, and the latest
        return that still makes it; kept in the team's open SlaAtRisk alert too."""
        self.scenarios = {}
        if not self.routes:
            return
        today = self._today(now)
        backlog = self.backlog
        for team in sorted(backlog.teams):
            queue = backlog.teams[team]
            pace = queue.pace
            stuck = backlog.stuck.get(team, {})
            today_stuck = {d: n for d, n in stuck.items() if d > now and self._is_today(d, today)}
            if not pace or not today_stuck:
                continue
            deadline = max(today_stuck, key=lambda d: (today_stuck[d], -d))
            # the queue, and the same-day claims still to reach the hub (they come as usual)
            present = float(sum(c for d, c in queue.due_counts.items() if d <= deadline))
            present += sum(n for d, n in backlog.upcoming.get(team, {}).items() if d <= deadline)
            late = sum(n for d, n in stuck.items() if d <= deadline)
            share = self._stuck_client.get((team, deadline), {})

            args = (team, deadline, present, late, share)
            backs = [now, now + HOUR, now + 2 * HOUR]
            # Misses only grow with a later return: bisect on a RETURN_STEP grid.
            latest: float | None = None
            if self._scenario(now, now, *args).misses == 0:
                low, high = 0, max(0, math.ceil((deadline - now) / RETURN_STEP))
                while low < high:  # the last step whose return still makes it
                    mid = (low + high + 1) // 2
                    if self._scenario(now, now + mid * RETURN_STEP, *args).misses == 0:
                        low = mid
                    else:
                        high = mid - 1
                latest = now + low * RETURN_STEP
            out = {
                "deadline": iso(deadline),
                "due": round(present + late),
                "stuck": round(late),
                "scenarios": [
                    self._scenario(now, b, *args).to_dict() for b in backs if b < deadline
                ],
                "latest_return": iso(latest) if latest is not None else None,
            }
            self.scenarios[team] = out
            alert = self.book.opened("SlaAtRisk", {"team": team, "deadline": iso(deadline)})
            if alert is not None:
                alert.details["if_link_returns"] = out

    def _scenario(
        self,
        now: float,
        back: float,
        team: str,
        deadline: float,
        present: float,
        late: float,
        share: dict[str, float],
    ) -> Scenario:
        queue = self.backlog.teams[team]
        pace = queue.pace or 0.0
        calendar = queue.calendar
        total = present + late
        done = done_by(present, late, pace, calendar, now, back, deadline)
        misses = max(0, math.ceil(total - done - 1e-9))
        hours = calendar.working_seconds(max(back, now), deadline) / HOUR
        heads = self.heads.get(team)
        people = None
        if heads and hours > 0 and pace > 0:
            per_person = pace * HOUR / heads * hours
            people = math.ceil(misses / per_person - 1e-9) if misses else 0
        share_total = sum(share.values())
        by_client = (
            {c: round(misses * n / share_total) for c, n in sorted(share.items())}
            if share_total
            else {}
        )
        return Scenario(back, misses, round(total), people, by_client)

    # --- views ---------------------------------------------------------------------------

    def scopes(self) -> list[str]:
        return sorted(self.client_days)

    def read(self, scope: str, now: float) -> dict[str, Any]:
        """The client's day as of the last client evaluation (every CLIENT_EVERY)."""
        return {
            "client_id": scope,
            **self.client_days[scope].to_dict(),
            "alert": self.book.opened("ClientSameDayAtRisk", {"client_id": scope}) is not None,
        }

    def clients_view(self, now: float = 0.0) -> list[dict[str, Any]]:
        return [self.read(client, now) for client in self.scopes()]
