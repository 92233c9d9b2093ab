"""Staffing suggestions (issue 7, first part): the roster file, and suggestions computed on a
generated team-capacity-loss scenario at the moment SlaAtRisk fires."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from claimflow.config import Config, ConfigError
from claimflow.engine import Engine
from claimflow.events import decode
from claimflow.rejections import Rejection
from claimflow.staffing import (
    SKILL_FACTOR,
    Roster,
    Skill,
    _outlook,
    load_roster,
    suggest,
)

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "claimflow" / "data" / "staffing.yaml"
TEAMS = {
    "priority-client": {"claim_types": ["priority-client-claim"]},
    "international-settlements": {"claim_types": ["international-settlements-claim"]},
    "motor": {"claim_types": ["motor-claim"]},
    "property": {"claim_types": ["property-claim"]},
}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "staffing.yaml"
    path.write_text(text)
    return path


def test_the_example_roster_loads(config: Config) -> None:
    roster = load_roster(EXAMPLE, config)
    assert roster.headcount("motor") == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "teams: {motor: {claim_types: [m]}}\nemployees: [{id: a, team: motr}]",
            "employees[0].team: 'motr' is not a team of the configuration",
        ),
        (
            "teams: {motor: {claim_types: [m]}}\n"
            "employees: [{id: a, team: motor, skills: {m: expert}}]",
            "employees[0].skills.m: Input should be 'none', 'moderate' or 'deep'",
        ),
        (
            "teams: {motor: {claim_types: [m]}}\n"
            "employees: [{id: a, team: motor}, {id: a, team: motor}]",
            "employee id 'a' appears twice",
        ),
        ("teams: {motor: {claim_types: [m]}}\nemployees: []", "employees: List should have"),
        (
            "teams: {motor: {claim_types: [m]}}\nemployees: [{id: a, team: motor, age: 3}]",
            "employees[0].age: unknown key (check the spelling; see docs/staffing.md)",
        ),
        ("- just a list", "expected a mapping with `teams` and `employees`"),
    ],
)
def test_roster_errors_name_the_file_the_key_and_the_problem(
    tmp_path: Path, config: Config, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_roster(path, config)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_every_configured_team_needs_its_claim_types(tmp_path: Path, config: Config) -> None:
    path = _write(tmp_path, "teams: {motor: {claim_types: [m]}}\nemployees: [{id: a, team: motor}]")
    with pytest.raises(ConfigError, match="property has no entry"):
        load_roster(path, config)


def _at_first_sla_alert(config: Config, scenario: Any) -> tuple[Engine, str]:
    run = scenario("team-capacity-loss", 14, 1)
    first = min((a for a in run.firing("SlaAtRisk")), key=lambda a: a.at)
    engine = Engine(config)
    for line in Path(run.events).read_bytes().splitlines():
        event = decode(line)
        assert not isinstance(event, Rejection)
        if event.time.timestamp() > first.at + engine.lateness:
            break
        engine.ingest(event)
    return engine, first.labels["team"]


def _roster(extra: list[dict[str, Any]] | None = None) -> Roster:
    people: list[dict[str, Any]] = []
    for team in TEAMS:
        for i in range(3):
            people.append({"id": f"{team}-{i}", "team": team, "skills": {f"{team}-claim": "deep"}})
    return Roster.model_validate({"teams": TEAMS, "employees": people + (extra or [])})


def test_suggestion_closes_the_gap_without_breaking_another_teams_deadline(
    config: Config, scenario: Any
) -> None:
    engine, team = _at_first_sla_alert(config, scenario)
    roster = _roster(
        [
            {"id": "helper-deep", "team": "property", "skills": {f"{team}-claim": "deep"}},
            {
                "id": "helper-moderate",
                "team": "priority-client",
                "skills": {f"{team}-claim": "moderate"},
            },
        ]
    )
    suggestions = suggest(engine, roster)
    mine = [s for s in suggestions if s.team == team]
    assert mine, f"no suggestion for {team}, which SlaAtRisk names"
    suggestion = mine[0]
    assert suggestion.moves and suggestion.closes_gap
    assert suggestion.misses_avoided == suggestion.projected_misses
    # Each donor still clears what it has due today with the people who stay.
    now = engine.watermark
    for donor in {m.from_team for m in suggestion.moves}:
        outlook = _outlook(engine, roster, donor, now)
        assert outlook is not None
        leaving = sum(1 for m in suggestion.moves if m.from_team == donor)
        assert (outlook.pace - leaving * outlook.per_person) * outlook.hours_left >= outlook.due
    # As few people as close it: without the last one the gap stays open.
    assert sum(m.claims for m in suggestion.moves[:-1]) < suggestion.projected_misses


def test_skilled_people_come_before_idle_unskilled_ones(config: Config, scenario: Any) -> None:
    engine, team = _at_first_sla_alert(config, scenario)
    roster = _roster(
        [
            {"id": "idle-unskilled", "team": "property", "skills": {}},
            {"id": "skilled", "team": "priority-client", "skills": {f"{team}-claim": "deep"}},
        ]
    )
    first = next(s for s in suggest(engine, roster) if s.team == team).moves[0]
    assert first.skill is Skill.DEEP
    assert SKILL_FACTOR[Skill.DEEP] > SKILL_FACTOR[Skill.MODERATE] > SKILL_FACTOR[Skill.NONE]


def test_staffing_suggest_command(config: Config, scenario: Any) -> None:
    run = scenario("team-capacity-loss", 14, 1)
    first = min((a for a in run.firing("SlaAtRisk")), key=lambda a: a.at)
    at = first.to_dict()["at"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "claimflow.cli",
            "staffing",
            "suggest",
            "--roster",
            str(EXAMPLE),
            "--input",
            str(run.events),
            "--at",
            at,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"{first.labels['team']}:" in done.stdout and "will miss" in done.stdout
    assert "move " in done.stdout or "nobody can be spared" in done.stdout
