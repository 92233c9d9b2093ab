"""Who could help a team that will miss a deadline: suggestions from the skills matrix.

The roster (a YAML file a manager edits, docs/staffing.md) lists employees with their home
team and a skill level per claim type, and which claim types each team handles. When a team
is projected to miss a deadline today, `suggest` looks for people in teams whose own queues
will clear in time, and picks as few as close the gap:

* a person's pace is their home team's measured pace shared by its headcount; helping a
  team whose claims they know deeply they work at that pace, moderately at 60% of it, and
  without the skill at 25% (they can do simple cases);
* a donor team gives people only while the pace of those who stay still clears everything
  it has due by its own deadlines today ("never below what its own deadlines need");
* the deepest skill and the largest contribution go first, so the fewest people move.

Everything is read from engine state at its event time: a replayed moment and the live
state give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from claimflow.config import Config, ConfigError, describe, read_yaml
from claimflow.engine import Engine
from claimflow.timeutil import HOUR, iso


class Skill(StrEnum):
    NONE = "none"
    MODERATE = "moderate"
    DEEP = "deep"


# Share of a skilled person's pace someone works at on claims of that type.
SKILL_FACTOR = {Skill.DEEP: 1.0, Skill.MODERATE: 0.6, Skill.NONE: 0.25}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Employee(_Strict):
    id: str = Field(min_length=1)
    team: str = Field(min_length=1)
    skills: dict[str, Skill] = Field(default_factory=dict)


class TeamWork(_Strict):
    claim_types: list[str] = Field(min_length=1)


class Roster(_Strict):
    teams: dict[str, TeamWork]
    employees: list[Employee] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Roster:
        seen: set[str] = set()
        for employee in self.employees:
            if employee.id in seen:
                raise ValueError(f"employee id {employee.id!r} appears twice")
            seen.add(employee.id)
        return self

    def headcount(self, team: str) -> int:
        return sum(1 for e in self.employees if e.team == team)

    def skill_for(self, employee: Employee, team: str) -> Skill:
        """The best of the employee's skills over the claim types `team` handles."""
        levels = [employee.skills.get(t, Skill.NONE) for t in self.teams[team].claim_types]
        return max(levels, key=lambda level: SKILL_FACTOR[level])


def load_roster(path: str | Path, config: Config) -> Roster:
    source = str(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with `teams` and `employees`")
    try:
        roster = Roster.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, source, "docs/staffing.md")) from None
    known = set(config.team_settings)
    problems = [
        f"{source}: teams.{team}: not a team of the configuration"
        for team in roster.teams
        if team not in known
    ]
    problems += [
        f"{source}: employees[{i}].team: {e.team!r} is not a team of the configuration"
        for i, e in enumerate(roster.employees)
        if e.team not in known
    ]
    problems += [
        f"{source}: teams: {team} has no entry (which claim types does it handle?)"
        for team in sorted(known - set(roster.teams))
    ]
    if problems:
        raise ConfigError("\n".join(problems))
    return roster


@dataclass(frozen=True)
class Move:
    employee: str
    from_team: str
    skill: Skill
    claims: float  # expected claims this person completes for the team before the deadline


@dataclass
class Suggestion:
    team: str
    deadline: float
    due: int  # claims due by the deadline, those queued ahead included
    projected_misses: int
    hours_left: float
    moves: list[Move] = field(default_factory=list)

    @property
    def added_claims(self) -> float:
        return sum(m.claims for m in self.moves)

    @property
    def misses_avoided(self) -> int:
        return min(self.projected_misses, int(self.added_claims))

    @property
    def closes_gap(self) -> bool:
        return self.added_claims >= self.projected_misses

    def to_dict(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "deadline": iso(self.deadline),
            "projected_misses": self.projected_misses,
            "misses_avoided": self.misses_avoided,
            "closes_gap": self.closes_gap,
            "moves": [
                {
                    "employee": m.employee,
                    "from_team": m.from_team,
                    "skill": m.skill.value,
                    "expected_claims": round(m.claims, 1),
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
            lines.append(
                f"  move {m.employee} from {m.from_team} ({m.skill.value} skill): "
                f"about {m.claims:.0f} claims by the deadline"
            )
        verdict = "closes the gap" if self.closes_gap else "narrows the gap"
        lines.append(f"  {verdict}: about {self.misses_avoided} misses avoided")
        return "\n".join(lines)


@dataclass
class _TeamOutlook:
    pace: float  # claims per working hour, whole team
    due: int  # claims due today (its deadlines still ahead), queued ahead included
    hours_left: float  # working hours until its last deadline today
    headcount: int

    @property
    def per_person(self) -> float:
        return self.pace / self.headcount if self.headcount else 0.0

    @property
    def spare_claims(self) -> float:
        return self.pace * self.hours_left - self.due


def suggest(engine: Engine, roster: Roster) -> list[Suggestion]:
    """A suggestion for every team projected to miss a deadline today, worst first."""
    now = engine.watermark
    outlooks = {team: _outlook(engine, roster, team, now) for team in sorted(engine.teams)}
    spare = {t: o.spare_claims for t, o in outlooks.items() if o is not None}
    moved: set[str] = set()
    out = []
    for team, deadline, due, misses, hours in sorted(_at_risk(engine, now), key=lambda r: -r[3]):
        outlook = outlooks.get(team)
        suggestion = Suggestion(team, deadline, due, misses, hours)
        if outlook is None or outlook.per_person <= 0:
            out.append(suggestion)
            continue
        candidates = []
        for employee in roster.employees:
            donor = outlooks.get(employee.team)
            if employee.team == team or employee.id in moved or donor is None:
                continue
            skill = roster.skill_for(employee, team)
            claims = outlook.per_person * SKILL_FACTOR[skill] * hours
            cost = donor.per_person * donor.hours_left  # what the donor team loses
            candidates.append((SKILL_FACTOR[skill], claims, -cost, employee, skill, cost))
        candidates.sort(key=lambda c: (c[0], c[1], c[2]), reverse=True)
        for _, claims, _, employee, skill, cost in candidates:
            if suggestion.closes_gap:
                break
            if spare.get(employee.team, 0.0) - cost < 0:
                continue  # the donor would miss its own deadline
            spare[employee.team] -= cost
            moved.add(employee.id)
            suggestion.moves.append(Move(employee.id, employee.team, skill, claims))
        out.append(suggestion)
    return out


def _at_risk(engine: Engine, now: float) -> list[tuple[str, float, int, int, float]]:
    """(team, deadline, due incl. ahead, misses, working hours left) for today's worst
    deadline of each team with projected misses."""
    out = []
    for team in sorted(engine.teams):
        calendar = engine.backlog.teams[team].calendar
        today = calendar.local_day(now)
        worst = None
        for deadline, p in engine.backlog.projections.get(team, {}).items():
            if deadline <= now or calendar.local_day(deadline - 1e-6) != today or p.misses <= 0:
                continue
            if worst is None or p.misses > worst[1].misses:
                worst = (deadline, p)
        if worst is not None:
            deadline, p = worst
            hours = calendar.working_seconds(now, deadline) / HOUR
            needed = p.needed if p.needed is not None else 0.0
            out.append((team, deadline, round(needed * hours), p.misses, hours))
    return out


def _outlook(engine: Engine, roster: Roster, team: str, now: float) -> _TeamOutlook | None:
    pace = engine.backlog.pace_per_hour(team)
    if pace is None:
        return None
    calendar = engine.backlog.teams[team].calendar
    today = calendar.local_day(now)
    due, last = 0, now
    for deadline, p in engine.backlog.projections.get(team, {}).items():
        if deadline > now and calendar.local_day(deadline - 1e-6) == today and deadline > last:
            # Everything queued up to its last deadline today, overdue claims included.
            hours_to = calendar.working_seconds(now, deadline) / HOUR
            due = round((p.needed or 0.0) * hours_to)
            last = deadline
    if last == now:  # no deadline left today: free until the end of today's shift
        shift = calendar.shift(today)
        last = shift[1] if shift is not None else now
    hours = calendar.working_seconds(now, last) / HOUR
    return _TeamOutlook(pace, due, hours, roster.headcount(team))
