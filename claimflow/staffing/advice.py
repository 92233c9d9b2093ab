"""Who could help a team that will miss a deadline, and when to give them back.

The roster (a YAML file a manager edits, docs/staffing.md) lists employees with their home
team, skill level per claim type, working hours, whether they are in today, and whether they
are lent to another team right now. From it and the engine's state at its event time:

* **At risk** (`suggest`, and the details of every `SlaAtRisk` alert): for a team projected
  to miss a deadline, people from teams that still clear every deadline of their own without
  them, deepest skill first, as few as close the gap. A moderate profile works beside a deep
  one who answers their questions, so a moderate helper is suggested only paired with a deep
  person on the team at risk (a deep helper moved with them first, else one of the team's
  own), one moderate per deep person.
* **Crisis over** (`hand_backs`, and the details of the resolved alert): people lent to a
  team that now clears its deadlines without them go back home.
* **Capacity left** (`next_day`): a team whose claims due today will all be done, with
  working time to spare, could start on the claims due later: about how many (from
  `NEXT_DAY_MIN` claims up).

A person's pace is the measured pace of the team they help divided by the team's skill-
weighted headcount of people in today (deep counts 1, moderate 0.6, none 0.25), times their
own skill factor for that team's claim types, over the working time their own hours and the
team's hours share before the deadline. Everything is computed from engine state, so a
replayed moment and the live worker give the same answer.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from claimflow.config import Team
from claimflow.staffing.roster import SKILL_FACTOR, Employee, Roster, Skill
from claimflow.timeutil import HOUR, iso
from claimflow.workhours import WorkingCalendar

if TYPE_CHECKING:
    from claimflow.engine import Engine
    from claimflow.engine.alerts import Alert

log = logging.getLogger("claimflow.staffing")
# Fewer claims than this left to start on is not worth a line on the wall.
NEXT_DAY_MIN = 5


# --- what to suggest ----------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    employee: str
    from_team: str
    skill: Skill
    claims: float  # expected claims this person completes for the team before the deadline
    paired_with: str | None = None  # the deep colleague a moderate helper works beside


@dataclass
class Suggestion:
    team: str
    deadline: float
    due: int  # claims due by the deadline, earlier deadlines and overdue claims included
    projected_misses: int  # of them, how many the team will not finish by then at its pace
    hours_left: float
    moves: list[Move] = field(default_factory=list)
    remaining: int = 0  # projected misses left with the moves made

    @property
    def added_claims(self) -> float:
        return sum(m.claims for m in self.moves)

    @property
    def misses_avoided(self) -> int:
        return self.projected_misses - self.remaining

    @property
    def closes_gap(self) -> bool:
        return self.remaining == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "deadline": iso(self.deadline),
            "due_claims": self.due,
            "projected_misses": self.projected_misses,
            "misses_avoided": self.misses_avoided,
            "closes_gap": self.closes_gap,
            "moves": [
                {
                    "employee": m.employee,
                    "from_team": m.from_team,
                    "skill": m.skill.value,
                    "expected_claims": round(m.claims, 1),
                    "paired_with": m.paired_with,
                }
                for m in self.moves
            ],
        }

    def render(self) -> str:
        head = (
            f"{self.team}: {self.projected_misses} of {self.due} claims due {iso(self.deadline)} "
            f"will miss at the current pace ({self.hours_left:.1f} working hours left)"
        )
        if not self.moves:
            return head + "\n  nobody can be spared without another team missing its own deadline"
        lines = [head]
        for m in self.moves:
            pair = f", beside {m.paired_with}" if m.paired_with else ""
            lines.append(
                f"  move {m.employee} from {m.from_team} ({m.skill.value} skill{pair}): "
                f"about {m.claims:.0f} claims by the deadline"
            )
        verdict = "closes the gap" if self.closes_gap else "narrows the gap"
        lines.append(f"  {verdict}: about {self.misses_avoided} misses avoided")
        return "\n".join(lines)


@dataclass(frozen=True)
class HandBack:
    employee: str
    home_team: str
    lent_to: str
    home_misses: int  # claims the home team is projected to miss (0: it is fine)

    def to_dict(self) -> dict[str, Any]:
        return {
            "employee": self.employee,
            "home_team": self.home_team,
            "lent_to": self.lent_to,
            "home_projected_misses": self.home_misses,
        }

    def render(self) -> str:
        home = f"; {self.home_team} projects {self.home_misses} misses" if self.home_misses else ""
        return (
            f"hand {self.employee} back from {self.lent_to} to {self.home_team}: "
            f"{self.lent_to} clears its deadlines without them{home}"
        )


@dataclass(frozen=True)
class NextDay:
    team: str
    due_today: int  # claims due by the end of today's shift, overdue ones included
    capacity_left: int  # claims the team can still do today beyond those
    due_later: int  # open claims due after today
    shift_end: float

    @property
    def could_start(self) -> int:
        return min(self.capacity_left, self.due_later)

    def to_dict(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "due_today": self.due_today,
            "capacity_left": self.capacity_left,
            "due_later": self.due_later,
            "could_start": self.could_start,
        }

    def render(self) -> str:
        return (
            f"{self.team}: the {self.due_today} claims due today will be done with capacity "
            f"for about {self.capacity_left} more before {iso(self.shift_end)}; start on "
            f"about {self.could_start} of the {self.due_later} claims due later"
        )


@dataclass
class Report:
    at: float
    at_risk: list[Suggestion]
    hand_backs: list[HandBack]
    next_day: list[NextDay]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "at_risk": [s.to_dict() for s in self.at_risk],
            "hand_backs": [h.to_dict() for h in self.hand_backs],
            "next_day": [n.to_dict() for n in self.next_day],
        }

    def render(self) -> str:
        lines = [f"as of {iso(self.at)}"]
        if not (self.at_risk or self.hand_backs or self.next_day):
            return lines[0] + ": no team is projected to miss a deadline; nothing to move"
        lines += [s.render() for s in self.at_risk]
        lines += [h.render() for h in self.hand_backs]
        lines += [n.render() for n in self.next_day]
        return "\n".join(lines)

    def for_team(self, team: str) -> dict[str, Any]:
        """What the wall page shows beside one team."""
        return {
            "suggestion": next((s.to_dict() for s in self.at_risk if s.team == team), None),
            "hand_backs": [h.to_dict() for h in self.hand_backs if h.lent_to == team],
            "next_day": next((n.to_dict() for n in self.next_day if n.team == team), None),
        }


# --- the floor at one instant -------------------------------------------------------------


class Floor:
    """Each team's pace, queue and people at the engine's event time."""

    def __init__(self, engine: Engine, roster: Roster) -> None:
        self.engine = engine
        self.roster = roster
        self.backlog = engine.backlog
        self.now = engine.watermark
        self.horizon = engine.config.detectors.sla_at_risk.horizon
        self.teams = sorted(engine.teams)
        self.pace = {t: self.backlog.pace_per_hour(t) for t in self.teams}
        self.heads = dict.fromkeys(self.teams, 0.0)
        for e in roster.employees:
            if e.available and e.works_for in self.heads:
                self.heads[e.works_for] += SKILL_FACTOR[roster.skill_for(e, e.works_for)]
        self._own: dict[str, WorkingCalendar] = {}
        self._holidays = frozenset(engine.config.holidays)

    def calendar(self, team: str) -> WorkingCalendar:
        return self.backlog.teams[team].calendar

    def own_calendar(self, e: Employee) -> WorkingCalendar:
        if e.id not in self._own:
            home = self.engine.config.team_settings[e.team]
            spec = Team(
                id=home.id, timezone=home.timezone, working_hours=e.hours or home.working_hours
            )
            self._own[e.id] = WorkingCalendar(spec, self._holidays)
        return self._own[e.id]

    def rate(self, e: Employee, team: str) -> float:
        """Claims per working hour `e` completes on `team`'s claims."""
        pace, heads = self.pace[team], self.heads[team]
        if pace is None or heads <= 0:
            return 0.0
        return pace / heads * SKILL_FACTOR[self.roster.skill_for(e, team)]

    def hours(self, e: Employee, team: str, until: float) -> float:
        """Working hours in [now, until) when both `e` and `team` work."""
        if until <= self.now:
            return 0.0
        mine = self.own_calendar(e).spans(self.now, until)
        theirs = self.calendar(team).spans(self.now, until)
        return _overlap(mine, theirs) / HOUR

    def deadlines(self, team: str) -> list[float]:
        end = self.now + self.horizon
        return sorted(d for d in self.backlog.demand(team) if self.now < d <= end)

    def due_by(self, team: str, deadline: float) -> int:
        """Claims due by `deadline`: the team's queue and the stuck claims it will receive
        (claims dispatched, not arrived: engine/impact.py)."""
        demand = self.backlog.demand(team)
        return round(sum(c for d, c in demand.items() if d <= deadline))

    def shortfall(self, team: str, deadline: float) -> float:
        """Claims due by `deadline` (earlier ones included) the team will not finish by then
        at its pace, working earliest deadline first."""
        working = self.calendar(team).working_seconds(self.now, deadline)
        return self.due_by(team, deadline) - (self.pace[team] or 0.0) * working / HOUR

    def clears(self, team: str, leaving: list[tuple[Employee, float]]) -> bool:
        """Whether `team` still clears every deadline ahead (earliest first) at its pace
        without the people `leaving`, each gone until the instant paired with them."""
        pace = self.pace[team]
        if pace is None:
            return False
        calendar = self.calendar(team)
        for deadline in self.deadlines(team):
            capacity = pace * calendar.working_seconds(self.now, deadline) / HOUR
            for e, until in leaving:
                capacity -= self.rate(e, team) * self.hours(e, team, min(deadline, until))
            if capacity < self.due_by(team, deadline) - 1e-9:
                return False
        return True

    def misses(self, team: str) -> int:
        return sum(
            p.misses for d, p in self.backlog.projections.get(team, {}).items() if d > self.now
        )


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(x1, y1) - max(x0, y0)) for x0, x1 in a for y0, y1 in b)


# --- suggestions --------------------------------------------------------------------------


def report(engine: Engine, roster: Roster) -> Report:
    """Suggestions for every team at risk (worst first, sharing one pool of people), people
    to hand back, and teams with capacity left for the next day's claims."""
    floor = Floor(engine, roster)
    moved: set[str] = set()
    leaving: dict[str, list[tuple[Employee, float]]] = {}
    risks = []
    for team in floor.teams:
        worst: tuple[float, float] | None = None
        for deadline, p in sorted(floor.backlog.projections.get(team, {}).items()):
            if deadline <= floor.now or p.misses <= 0:
                continue
            short = floor.shortfall(team, deadline)
            if worst is None or short > worst[1]:
                worst = (deadline, short)
        if worst is not None:
            risks.append((team, worst[0], worst[1]))
    at_risk = [
        _suggest(floor, team, deadline, moved, leaving)
        for team, deadline, _ in sorted(risks, key=lambda r: (-r[2], r[0]))
    ]
    return Report(floor.now, at_risk, _hand_backs(floor), _next_day(floor))


def suggest(engine: Engine, roster: Roster) -> list[Suggestion]:
    """A suggestion for every team projected to miss a deadline, worst first."""
    return report(engine, roster).at_risk


class RosterAdvisor:
    """The engine's `Advisor` (engine/detector.py) from a roster: SlaAtRisk alerts carry who
    could help when they fire and who can go back when they resolve."""

    def __init__(self, engine: Engine, roster: Roster) -> None:
        self.engine = engine
        self.roster = roster

    def advise(self, alert: Alert, team: str, deadline: float) -> None:
        if alert.state == "firing":
            suggestion = suggest_for(self.engine, self.roster, team, deadline)
            if suggestion is not None:
                alert.details["staffing"] = suggestion.to_dict()
        else:
            backs = hand_backs(self.engine, self.roster, team)
            alert.details["staffing"] = {"hand_backs": [h.to_dict() for h in backs]}

    def headcount(self, team: str) -> float:
        return float(self.roster.headcount(team))


def attach(engine: Engine, roster: Roster | None) -> None:
    """Give the engine staffing advice from this roster (None: no advice)."""
    engine.advisor = RosterAdvisor(engine, roster) if roster is not None else None


def roster_of(engine: Engine) -> Roster | None:
    """The roster the engine's advice comes from, if any."""
    advisor = engine.advisor
    return advisor.roster if isinstance(advisor, RosterAdvisor) else None


def suggest_for(engine: Engine, roster: Roster, team: str, deadline: float) -> Suggestion | None:
    """The suggestion for one team and deadline (what an `SlaAtRisk` alert carries)."""
    floor = Floor(engine, roster)
    if deadline not in floor.backlog.projections.get(team, {}):
        return None
    return _suggest(floor, team, deadline, set(), {})


def hand_backs(engine: Engine, roster: Roster, team: str | None = None) -> list[HandBack]:
    return [h for h in _hand_backs(Floor(engine, roster)) if team is None or h.lent_to == team]


def _suggest(
    floor: Floor,
    team: str,
    deadline: float,
    moved: set[str],
    leaving: dict[str, list[tuple[Employee, float]]],
) -> Suggestion:
    roster = floor.roster
    calendar = floor.calendar(team)
    needs = [  # what the team alone leaves undone by each of its deadlines up to this one
        (d, floor.shortfall(team, d))
        for d in sorted({*floor.deadlines(team), deadline})
        if d <= deadline
    ]
    helpers: list[Employee] = []

    def remaining(people: list[Employee]) -> int:
        worst = max(
            need - sum(floor.rate(e, team) * floor.hours(e, team, d) for e in people)
            for d, need in needs
        )
        return max(0, math.ceil(worst - 1e-9))

    hours_left = calendar.working_seconds(floor.now, deadline) / HOUR
    suggestion = Suggestion(team, deadline, floor.due_by(team, deadline), remaining([]), hours_left)
    suggestion.remaining = suggestion.projected_misses
    tiers: dict[Skill, list[tuple[float, float, str, Employee]]] = {s: [] for s in Skill}
    for e in roster.employees:
        donor = e.works_for
        if not e.available or donor == team or e.id in moved or donor not in floor.pace:
            continue
        claims = floor.rate(e, team) * floor.hours(e, team, deadline)
        if claims <= 0:
            continue
        cost = floor.rate(e, donor) * floor.hours(e, donor, deadline)
        tiers[roster.skill_for(e, team)].append((claims, cost, e.id, e))
    partners = [  # deep people already on the team, who can take a moderate helper beside them
        e.id
        for e in roster.employees
        if e.available and e.works_for == team and roster.skill_for(e, team) is Skill.DEEP
    ]
    for skill in (Skill.DEEP, Skill.MODERATE, Skill.NONE):
        for claims, _, _, e in sorted(tiers[skill], key=lambda c: (-c[0], c[1], c[2])):
            if suggestion.remaining == 0:
                break
            if skill is Skill.MODERATE and not partners:
                break  # no deep colleague left to work beside
            if not floor.clears(e.works_for, [*leaving.get(e.works_for, []), (e, deadline)]):
                continue  # the donor would miss one of its own deadlines
            pair = partners.pop(0) if skill is Skill.MODERATE else None
            leaving.setdefault(e.works_for, []).append((e, deadline))
            moved.add(e.id)
            helpers.append(e)
            suggestion.moves.append(Move(e.id, e.works_for, skill, claims, pair))
            suggestion.remaining = remaining(helpers)
            if skill is Skill.DEEP:
                partners.insert(0, e.id)  # a moved deep helper is the first partner
    # As few people as close it: drop helpers it closes without (smallest first), unless a
    # moderate helper works beside them.
    for move in sorted(suggestion.moves, key=lambda m: m.claims):
        if any(m.paired_with == move.employee for m in suggestion.moves):
            continue
        rest = [e for e in helpers if e.id != move.employee]
        if remaining(rest) > suggestion.remaining:
            continue
        helpers = rest
        suggestion.moves.remove(move)
        moved.discard(move.employee)
        leaving[move.from_team] = [x for x in leaving[move.from_team] if x[0].id != move.employee]
    return suggestion


def _hand_backs(floor: Floor) -> list[HandBack]:
    out = []
    leaving: dict[str, list[tuple[Employee, float]]] = {}
    for e in sorted(floor.roster.employees, key=lambda e: e.id):
        if not (e.available and e.lent and e.working_for in floor.pace):
            continue
        lent_to = e.works_for
        gone = [*leaving.get(lent_to, []), (e, math.inf)]
        if floor.clears(lent_to, gone):
            leaving[lent_to] = gone
            out.append(HandBack(e.id, e.team, lent_to, floor.misses(e.team)))
    return out


def _next_day(floor: Floor) -> list[NextDay]:
    out = []
    for team in floor.teams:
        pace = floor.pace[team]
        calendar = floor.calendar(team)
        shift = calendar.shift(calendar.local_day(floor.now))
        if pace is None or shift is None or floor.now >= shift[1] or floor.misses(team):
            continue
        if not floor.clears(team, []):
            continue
        due_today = floor.due_by(team, shift[1])
        open_claims = round(sum(floor.backlog.demand(team).values()))  # the real queue
        capacity = pace * calendar.working_seconds(floor.now, shift[1]) / HOUR - due_today
        later = open_claims - due_today
        if min(capacity, later) >= NEXT_DAY_MIN:
            out.append(NextDay(team, due_today, math.floor(capacity), later, shift[1]))
    return out
