"""Staffing suggestions (issue 7): the roster file and its reload, and suggestions judged on
a generated team-capacity-loss scenario: at the moment SlaAtRisk fires, the suggestion is
re-run in the simulator with those people moved, and must close the gap there without
making any donor team late."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from claimflow.config import Config, ConfigError
from claimflow.contract.events import decode
from claimflow.contract.rejections import Rejection
from claimflow.engine import Engine
from claimflow.staffing.advice import NEXT_DAY_MIN, attach, hand_backs, report, suggest_for
from claimflow.staffing.roster import SKILL_FACTOR, Roster, RosterFile, Skill, load_roster
from claimflow.timeutil import ManualClock
from claimflow.tools.simulate import Simulator, StaffMove

ROOT = Path(__file__).resolve().parents[2]
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
        (
            "teams: {motor: {claim_types: [m]}}\n"
            "employees: [{id: a, team: motor, working_for: propery}]",
            "employees[0].working_for: 'propery' is not a team of the configuration",
        ),
        (
            "teams: {motor: {claim_types: [m]}}\n"
            "employees: [{id: a, team: motor, hours: {start: '17:00', end: '09:00'}}]",
            "employees[0].hours: start 17:00 must be before end 09:00",
        ),
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


START = date(2026, 11, 2)  # the `scenario` fixture's start: same seed, same events
SCENARIO = "team-capacity-loss"


@dataclass
class AtRisk:
    """The team-capacity-loss scenario replayed with a roster up to its first SlaAtRisk."""

    sim: Simulator
    events: list[bytes]
    roster: Roster
    engine: Engine
    alert: Any  # the first SlaAtRisk firing, with its staffing details
    team: str
    deadline: float
    next_line: int  # events[next_line:] are not in the engine yet


def _replay_to_first_alert(config: Config, seed: int = 1, edit: Any = None) -> AtRisk:
    """Replays the scenario with the simulator's own roster as of the fault (`edit` may
    change it first) and stops at the first SlaAtRisk alert."""
    sim = Simulator(config, SCENARIO, 14, START, seed)
    events = [json.dumps(e).encode() for _, e in sim.events()]
    data = sim.roster(sim.faults[0].start + 3600)
    if edit is not None:
        edit(data)
    roster = Roster.model_validate(data)
    engine = Engine(config)
    attach(engine, roster)
    for n, line in enumerate(events, 1):
        event = decode(line)
        assert not isinstance(event, Rejection)
        engine.ingest(event)
        for alert in engine.drain_alerts():
            if alert.alert == "SlaAtRisk" and alert.state == "firing":
                team, deadline = alert.labels["team"], _epoch(alert.labels["deadline"])
                return AtRisk(sim, events, roster, engine, alert, team, deadline, n)
    raise AssertionError("no SlaAtRisk alert in the scenario")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _late(sim: Simulator, team: str, after: float, until: float) -> int:
    """Claims of `team` due in (after, until] that were done after their due time."""
    return sum(
        1
        for c in sim.claims
        if c.team == team
        and after < c.due <= until
        and (c.completed is None or c.completed > c.due)
    )


@pytest.fixture(scope="module")
def at_risk(config: Config) -> AtRisk:
    return _replay_to_first_alert(config)


@pytest.mark.slow
def test_the_alert_carries_a_suggestion_that_closes_the_gap_in_a_rerun(
    config: Config, at_risk: AtRisk
) -> None:
    engine, team, deadline = at_risk.engine, at_risk.team, at_risk.deadline
    carried = at_risk.alert.details["staffing"]
    assert carried["team"] == team and carried["moves"] and carried["closes_gap"]
    assert carried["projected_misses"] > 0

    suggestion = suggest_for(engine, at_risk.roster, team, deadline)
    assert suggestion is not None and suggestion.closes_gap
    assert all(m.from_team != team for m in suggestion.moves)
    now = engine.watermark

    def rerun(moves: list[StaffMove]) -> Simulator:
        sim = Simulator(config, SCENARIO, 14, START, 1, moves=moves)
        sim.events()
        return sim

    base = rerun([])  # the same re-run randomness, nobody moved
    moved = rerun(
        [
            StaffMove(m.from_team, team, now, deadline, SKILL_FACTOR[m.skill])
            for m in suggestion.moves
        ]
    )
    base_late = _late(base, team, now, deadline)
    moved_late = _late(moved, team, now, deadline)
    assert base_late > 0, "the gap is real: without help the team misses"
    # The moved people add at least the projected gap's claims: what is still late is what
    # the projection did not see coming.
    assert moved_late <= max(0, base_late - suggestion.projected_misses), (base_late, moved_late)
    # No donor is late on anything due for the rest of the day because of the moves.
    end_of_day = deadline + 8 * 3600
    for donor in {m.from_team for m in suggestion.moves}:
        assert _late(moved, donor, now, end_of_day) <= _late(base, donor, now, end_of_day), donor


@pytest.mark.slow
def test_as_few_people_as_close_it_and_moderates_work_beside_deep_ones(at_risk: AtRisk) -> None:
    roster = at_risk.roster
    suggestion = suggest_for(at_risk.engine, roster, at_risk.team, at_risk.deadline)
    assert suggestion is not None
    moves = suggestion.moves
    deep_here = {
        e.id
        for e in roster.employees
        if e.available
        and e.works_for == at_risk.team
        and roster.skill_for(e, at_risk.team) == "deep"
    }
    deep_moved = {m.employee for m in moves if m.skill is Skill.DEEP}
    partners = [m.paired_with for m in moves if m.skill is Skill.MODERATE]
    assert all(p in deep_moved | deep_here for p in partners)
    assert len(partners) == len(set(partners)), "one moderate helper per deep person"
    # Deep helpers first: a moderate one only once no deep one is left to move.
    skills = [m.skill for m in moves]
    assert skills == sorted(skills, key=lambda s: -SKILL_FACTOR[s])
    # Without the smallest helper nobody depends on, the gap would stay open.
    loose = [m for m in moves if m.employee not in partners]
    smallest = min(loose, key=lambda m: m.claims)
    assert suggestion.added_claims - smallest.claims < suggestion.projected_misses


@pytest.mark.slow
def test_without_a_deep_partner_no_moderate_helper_is_sent(config: Config) -> None:
    def only_moderates(data: dict[str, Any]) -> None:
        for person in data["employees"]:
            if person["team"] == "motor":
                person["skills"] = {"motor-claim": "moderate"}  # nobody deep on the team
            elif "motor-claim" in person["skills"]:
                person["skills"]["motor-claim"] = "moderate"
        data["employees"][0]["skills"]["motor-claim"] = "deep"  # one deep helper elsewhere

    case = _replay_to_first_alert(config, edit=only_moderates)
    suggestion = suggest_for(case.engine, case.roster, case.team, case.deadline)
    assert suggestion is not None
    kinds = [m.skill for m in suggestion.moves]
    assert kinds[0] is Skill.DEEP
    assert kinds.count(Skill.MODERATE) <= 1  # only beside the one deep helper
    assert all(
        m.paired_with == suggestion.moves[0].employee
        for m in suggestion.moves[1:]
        if m.skill is Skill.MODERATE
    )


@pytest.mark.slow
def test_skilled_people_come_before_idle_unskilled_ones(config: Config) -> None:
    def add_idle(data: dict[str, Any]) -> None:
        data["employees"].append({"id": "idle-unskilled", "team": "property", "skills": {}})

    case = _replay_to_first_alert(config, edit=add_idle)
    suggestion = suggest_for(case.engine, case.roster, case.team, case.deadline)
    assert suggestion is not None and suggestion.closes_gap
    assert "idle-unskilled" not in {m.employee for m in suggestion.moves}
    assert all(m.skill is not Skill.NONE for m in suggestion.moves)


@pytest.mark.slow
def test_hand_back_when_the_crisis_passes_not_during_it(config: Config) -> None:
    def lend(data: dict[str, Any]) -> None:
        helper = next(
            p
            for p in data["employees"]
            if p["skills"].get("motor-claim") == "deep" and p["team"] != "motor"
        )
        helper["working_for"] = "motor"

    case = _replay_to_first_alert(config, edit=lend)
    lent = next(e for e in case.roster.employees if e.lent)
    assert hand_backs(case.engine, case.roster, "motor") == []  # motor still needs them
    engine = case.engine
    ended: list[Any] = []
    for raw in case.events[case.next_line :]:
        event = decode(raw)
        assert not isinstance(event, Rejection)
        engine.ingest(event)
        ended += [
            a for a in engine.drain_alerts() if a.alert == "SlaAtRisk" and a.state == "resolved"
        ]
    engine.finish()
    ended += [a for a in engine.drain_alerts() if a.alert == "SlaAtRisk" and a.state == "resolved"]
    seen = ended
    assert seen and all("hand_backs" in a.details["staffing"] for a in seen)
    backs = hand_backs(engine, case.roster, "motor")
    assert [b.employee for b in backs] == [lent.id]
    assert backs[0].home_team == lent.team


@pytest.mark.slow
def test_next_day_capacity_for_teams_that_will_clear_today(at_risk: AtRisk) -> None:
    result = report(at_risk.engine, at_risk.roster)
    assert result.next_day, "some team has capacity left at the moment motor is at risk"
    assert at_risk.team not in {n.team for n in result.next_day}
    for n in result.next_day:
        # The real queue: claims queued and those dispatched to the team, not arrived yet.
        demand = at_risk.engine.backlog.demand(n.team)
        later = sum(c for d, c in demand.items() if d > n.shift_end)
        assert abs(n.due_later - later) <= 1  # whole claims from fractional expected demand
        assert n.could_start == min(n.capacity_left, n.due_later) >= NEXT_DAY_MIN
    assert "start on about" in result.render()


def test_roster_file_reloads_on_change_and_keeps_the_last_good_one(
    tmp_path: Path, config: Config
) -> None:
    path = tmp_path / "staffing.yaml"
    path.write_text(EXAMPLE.read_text())
    clock = ManualClock(1000.0)
    source = RosterFile(path, config, check_every=10, clock=clock)
    assert source.current().headcount("motor") == 3
    path.write_text(
        EXAMPLE.read_text().replace(
            "{id: ivo, team: motor,", "{id: ivo, team: motor, available: false,"
        )
    )
    assert source.current().headcount("motor") == 3  # not looked at again yet
    clock._now += 10
    assert source.current().headcount("motor") == 2 and source.reloads == 1
    path.write_text("teams: [not, a, mapping]\n")
    clock._now += 10
    assert source.current().headcount("motor") == 2 and source.errors == 1
    clock._now += 10
    assert source.current().headcount("motor") == 2 and source.errors == 1  # logged once
    path.unlink()
    clock._now += 10
    assert source.current().headcount("motor") == 2 and source.errors == 2
    path.write_text(EXAMPLE.read_text())
    clock._now += 10
    assert source.current().headcount("motor") == 3 and source.reloads == 2


@pytest.mark.slow
def test_staffing_suggest_and_replay_with_a_roster(
    tmp_path: Path, config: Config, scenario: Any, at_risk: AtRisk
) -> None:
    run = scenario(SCENARIO, 14, 1)
    roster = tmp_path / "staffing.yaml"
    roster.write_text(at_risk.roster.model_dump_json(exclude_defaults=True))
    at = at_risk.alert.to_dict()["at"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "claimflow.cli", *args],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    done = cli(
        "staffing", "suggest", "--roster", str(roster), "--input", str(run.events), "--at", at
    )
    assert done.returncode == 0, done.stderr
    assert f"{at_risk.team}:" in done.stdout and "will miss" in done.stdout
    assert "move " in done.stdout and "closes the gap" in done.stdout

    as_json = cli(
        "staffing",
        "suggest",
        "--roster",
        str(roster),
        "--input",
        str(run.events),
        "--at",
        at,
        "--json",
    )
    assert as_json.returncode == 0, as_json.stderr
    assert {"at", "at_risk", "hand_backs", "next_day"} <= set(json.loads(as_json.stdout))

    replayed = cli("replay", "--quiet", "--roster", str(roster), "--input", str(run.events))
    assert replayed.returncode == 0, replayed.stderr
    alerts = [json.loads(line) for line in replayed.stdout.splitlines()]
    sla = [a for a in alerts if a["alert"] == "SlaAtRisk" and a["state"] == "firing"]
    assert sla and all("staffing" in a["details"] for a in sla)
    assert sla[0]["details"]["staffing"] == at_risk.alert.details["staffing"]

    bad = tmp_path / "bad.yaml"
    bad.write_text("teams: {motor: {claim_types: [m]}}\nemployees: [{id: a, team: motr}]\n")
    refused = cli("replay", "--quiet", "--roster", str(bad), "--input", str(run.events))
    assert refused.returncode == 2 and f"{bad}: employees[0].team" in refused.stderr
