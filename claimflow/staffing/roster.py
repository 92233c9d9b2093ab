"""The roster: who works where, with which skills and hours, and who is in today.

A YAML file a manager edits (docs/staffing.md), validated strictly into `Roster` (a typo is
an error that names the field, never a silently ignored key) and watched for changes
(`RosterFile`) by the live worker. The advice built on it is in `claimflow.staffing.advice`.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from claimflow.config import (
    Config,
    ConfigError,
    WatchedFile,
    WorkingHours,
    describe,
    read_yaml,
)
from claimflow.timeutil import Clock

log = logging.getLogger("claimflow.staffing")


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
    """Home team."""
    skills: dict[str, Skill] = Field(default_factory=dict)
    hours: WorkingHours | None = None
    """Own working hours, in the home team's time zone; default: the home team's hours."""
    available: bool = True
    """False for someone off today (leave, sickness): not in any headcount, never suggested."""
    working_for: str | None = None
    """The team this person is lent to right now, when not their home team."""

    @property
    def works_for(self) -> str:
        return self.working_for or self.team

    @property
    def lent(self) -> bool:
        return self.working_for is not None and self.working_for != self.team


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
        """People in today working for `team` (its own and those lent to it)."""
        return sum(1 for e in self.employees if e.available and e.works_for == team)

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
    for i, e in enumerate(roster.employees):
        for key, value in (("team", e.team), ("working_for", e.working_for)):
            if value is not None and value not in known:
                problems.append(
                    f"{source}: employees[{i}].{key}: {value!r} is not a team of the configuration"
                )
    problems += [
        f"{source}: teams: {team} has no entry (which claim types does it handle?)"
        for team in sorted(known - set(roster.teams))
    ]
    if problems:
        raise ConfigError("\n".join(problems))
    return roster


class RosterFile(WatchedFile["Roster"]):
    """The roster file as the live worker sees it: reloaded when it changes on disk (see
    `WatchedFile`); errors count in `claimflow_roster_reload_errors_total`, so a typo never
    stops suggestions."""

    what = "roster"

    def __init__(
        self,
        path: Path,
        config: Config,
        check_every: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        super().__init__(path, check_every, clock)

    @property
    def roster(self) -> Roster:
        return self.value

    def load(self) -> Roster:
        return load_roster(self.path, self.config)

    def accept(self, value: Roster) -> None:
        super().accept(value)
        log.info("roster %s: %d employees", self.path, len(value.employees))
