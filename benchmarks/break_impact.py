"""Stuck claims as demand: does `SlaAtRisk` warn the receiving team in time, and right? Run by
hand:

    python benchmarks/break_impact.py [--seeds 1 2 3] [--staff-share 0.5] [--json]

For each case and seed it generates a scenario with `claimflow.tools.simulate` (the detection
benchmark's realism: stragglers, duplicates, an overnight-hold hub, holidays), breaks the
hub-1 link on a Tuesday (15% of the claims delivered, the rest re-sent when it is fixed),
replays the events through the engine in-process (`claimflow.tools.replay.replay`) and samples
the receiving team's projection for today's 18:00 deadline every `--every` seconds of event
time. The receiving team is the one most of the stuck claims due at 18:00 go to (from the
simulator's own claims, not the engine's guess).

The truth is what the team actually misses in that run: its claims due at 18:00 completed
after 18:00 (or never). A re-run in which the stuck claims arrive on time is a different
day (the team works them earlier), so it is not the truth of the broken day; it is shown as
`rerun` at the firing moment, as a check of the demand the engine projected (its claims due
at 18:00), apart from the pace.

Also shown at the firing moment: `known-demand misses`, the engine's arithmetic with the
real demand (every claim of the team due by the deadline and not done yet, queued, stuck or
still to reach the hub) against the capacity the engine projected: what a re-run that knew
every arrival would show then, with the pace as measured (the demand side of the
projection). And `oracle at link back`: the same at the link's return with the mean rate of
the people the team has that day (the simulator's staff and handling time): misses beyond
it come from the team's luck after that, which no projection can know.

Cases: the night break (01:00-10:00) and the midday break (11:00-14:00), each with the
receiving team at full staff (the simulator staffs teams for a normal week at 65% busy:
the flood is clearable, and SlaAtRisk must stay silent) and with the receiving team at
`--staff-share` of its people all day (the break day's misses then come from the flood: the
`no break` column is the same run with the link losing nothing, the same random draws).
Progress on stderr; the table on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from claimflow.config import Config, load_config
from claimflow.engine import Alert, Engine
from claimflow.timeutil import HOUR, MINUTE, iso
from claimflow.tools.replay import replay
from claimflow.tools.simulate import _HANDLING_MINUTES, Fault, Realism, Simulator
from claimflow.workhours import WorkingCalendar

START = date(2026, 11, 2)  # a Monday; day 15 is a Tuesday
HUB, CENTER = "hub-1", "center-1"


@dataclass(frozen=True)
class Case:
    name: str
    start_h: float
    end_h: float
    staff_share: float | None  # the receiving team's people present all day; None: all
    expect_alert: bool


@dataclass
class Outcome:
    case: str
    seed: int
    team: str
    deadline: float
    link_back: float
    stuck_due: int  # the team's stuck claims due at the deadline (the simulator's truth)
    fired: float | None = None
    projected_at_fire: int | None = None
    due_at_fire: int | None = None
    rerun_due_at_fire: int | None = None
    known_at_fire: int | None = None  # misses at the firing moment with the real demand
    oracle_at_return: int | None = None  # at the link's return: real demand, people's mean
    truth_misses: int = 0
    truth_due: int = 0
    no_break_misses: int | None = None
    other_firings: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    replay_s: float = 0.0
    events: int = 0


def _at(config: Config, day: date, hour: float) -> float:
    tz = ZoneInfo(config.timezone)
    return datetime.combine(day, datetime.min.time(), tzinfo=tz).timestamp() + hour * HOUR


def _realism() -> Realism:
    return Realism(
        straggler_share=0.001, duplicate_share=0.001, overnight_hold=("hub-2",), transit_median=6.0
    )


def _faults(config: Config, case: Case, day: date, team: str | None, loss: float) -> list[Fault]:
    faults = [
        Fault(
            "hub_link_break",
            _at(config, day, case.start_h),
            _at(config, day, case.end_h),
            {"hub_id": HUB, "center_id": CENTER},
            "HubLinkBreak",
            ["SlaAtRisk"],
            {"loss": loss},
        )
    ]
    if case.staff_share is not None and team is not None:
        faults.append(
            Fault(
                "team_capacity_loss",
                _at(config, day, 0.0),
                _at(config, day, 24.0),
                {"team": team},
                "SlaAtRisk",
                [],
                {"staff_share": case.staff_share},
            )
        )
    return faults


def _simulate(config: Config, case: Case, seed: int, args: Any, team: str | None, loss: float):
    day = START + timedelta(days=args.history_days + 1)
    sim = Simulator(
        config,
        "normal",
        args.history_days + 2,
        START,
        seed,
        args.claims_per_day,
        realism=_realism(),
        faults=[],
    )
    sim.faults = sorted(_faults(config, case, day, team, loss), key=lambda f: f.start)
    lines = [line for _, line in sim.lines()]
    return sim, lines, day


def _team_misses(sim: Simulator, team: str, deadline: float) -> tuple[int, int]:
    """Claims of `team` due at `deadline`, and those completed after it (or never)."""
    c, k = sim.claims, sim.teams.index(team)
    due = late = 0
    for i in range(len(c)):
        if c.team[i] == k and c.due[i] == deadline:
            due += 1
            done = c.completed[i]
            if not done <= deadline:  # NaN (never) counts as late
                late += 1
    return due, late


def _known_demand_misses(sim: Simulator, team: str, deadline: float, at: float, done: int) -> int:
    """The projection at `at` with the real demand: every claim of `team` due by `deadline`
    and not completed by `at` (queued, stuck, or still to reach the hub), against the same
    capacity the engine projected (`done`, its `projected_done`), in the engine's own
    arithmetic. What a re-run that knew every arrival would show at that moment, with the
    pace as measured: the demand side of the projection, apart from the pace."""
    c, k = sim.claims, sim.teams.index(team)
    ahead = at_deadline = 0
    for i in range(len(c)):
        if c.team[i] != k or c.due[i] > deadline or c.completed[i] <= at:
            continue
        if c.due[i] == deadline:
            at_deadline += 1
        else:
            ahead += 1
    return min(at_deadline, max(0, ahead + at_deadline - done))


def _receiving_team(sim: Simulator, deadline: float) -> tuple[str, int]:
    """The team that gets most of the stuck claims due at `deadline`, and how many."""
    c = sim.claims
    counts: dict[str, int] = {}
    for i in range(len(c)):
        if c.flags[i] & 1 and c.due[i] == deadline:
            team = sim.teams[c.team[i]]
            counts[team] = counts.get(team, 0) + 1
    team = max(sorted(counts), key=lambda t: counts[t])
    return team, counts[team]


def _on_time(lines: list[str]) -> list[bytes]:
    """The same events, each stuck claim (arrived more than 30 min after its dispatch)
    arriving 90 s after it: the demand the engine would see had the link not broken."""
    sent: dict[str, float] = {}
    out: list[tuple[float, bytes]] = []
    for line in lines:
        e = json.loads(line)
        if e["type"] == "hub_dispatched":
            sent.setdefault(e["claim_id"], _ts(e["dispatched_at"]))
        if e["type"] == "claim_arrived":
            at = _ts(e["arrived_at"])
            first = sent.get(e["claim_id"])
            if first is not None and at - first > 1800:
                e["arrived_at"] = datetime.fromtimestamp(first + 90, UTC).isoformat()
                out.append((first + 90, json.dumps(e).encode()))
                continue
        out.append((_event_time(e), line.encode()))
    out.sort(key=lambda x: x[0])
    return [b for _, b in out]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _event_time(e: dict[str, Any]) -> float:
    field_of = {
        "hub_dispatched": "dispatched_at",
        "claim_arrived": "arrived_at",
        "claim_completed": "completed_at",
        "survey_response": "responded_at",
    }
    return _ts(e[field_of[e["type"]]])


def _projection_at(config: Config, lines: list[bytes], stop: float, team: str, due: float):
    engine = Engine(config)
    gen = (line for line in lines if _event_time(json.loads(line)) <= stop)
    replay(config, gen, lambda a: None, lambda n, r, raw: None, engine=engine)
    return engine.backlog.projections.get(team, {}).get(due)


def _sampled(
    lines: list[str], engine: Engine, times: list[float], record: Callable[[float], None]
) -> Iterator[bytes]:
    """The lines, recording the engine's state as event time passes each of `times` (the
    generator resumes after the engine has handled every line before)."""
    pending = list(times)
    for line in lines:
        while pending and engine.watermark >= pending[0]:
            record(pending.pop(0))
        yield line.encode()


def run_case(config: Config, case: Case, seed: int, args: Any, say: Callable[[str], None]):
    # The receiving team first (from a run at full loss share, same seed: the claims drawn
    # before the break are the same), then the scenario with its staff cut if asked.
    probe, probe_lines, day = _simulate(
        config, Case(case.name, case.start_h, case.end_h, None, False), seed, args, None, 0.85
    )
    deadline = _at(config, day, 18.0)
    team, _ = _receiving_team(probe, deadline)
    if case.staff_share is None:
        sim, lines = probe, probe_lines
    else:
        sim, lines, day = _simulate(config, case, seed, args, team, 0.85)
    fault = sim.faults[0] if sim.faults[0].kind == "hub_link_break" else sim.faults[1]
    _, stuck_due = _receiving_team(sim, deadline)
    out = Outcome(case.name, seed, team, deadline, fault.end, stuck_due)
    out.truth_due, out.truth_misses = _team_misses(sim, team, deadline)
    # What a projection that knew everything knowable at the link's return would say: the
    # real demand (every claim due by the deadline not done yet) against the mean rate of
    # the people the team has that day (the simulator's staff and mean handling time), in
    # the engine's arithmetic. Misses beyond it come from the team's luck after that.
    people = sim.staff[team]
    if case.staff_share is not None:
        people = max(1, round(people * case.staff_share))
    rate = people * HOUR / (_HANDLING_MINUTES * MINUTE)
    calendar = WorkingCalendar(config.team_settings[team], sim.holidays)
    working = calendar.working_seconds(fault.end, deadline)
    out.oracle_at_return = _known_demand_misses(
        sim, team, deadline, fault.end, int(rate * working / HOUR)
    )
    if case.staff_share is not None:
        calm, _, _ = _simulate(config, case, seed, args, team, 0.0)
        out.no_break_misses = _team_misses(calm, team, deadline)[1]

    engine = Engine(config)
    alerts: list[Alert] = []
    label = iso(deadline)

    def record(t: float) -> None:
        p = engine.backlog.projections.get(team, {}).get(deadline)
        q = engine.backlog.teams[team]
        out.samples.append(
            {
                "t": t,
                "due": p.due if p else None,
                "misses": p.misses if p else None,
                "pace_h": round(q.pace * HOUR, 1) if q.pace else None,
                "queue_due": q.due_counts.get(deadline, 0),
                "stuck": round(engine.backlog.stuck.get(team, {}).get(deadline, 0.0), 1),
                "trusted": team in engine.backlog.trusted,
                "open": len(q.open),
            }
        )

    times = [
        fault.start - HOUR + k * args.every
        for k in range(int((deadline - fault.start + HOUR) // args.every) + 1)
    ]
    began = time.perf_counter()
    replay(
        config,
        _sampled(lines, engine, times, record),
        alerts.append,
        lambda n, r, raw: None,
        engine=engine,
    )
    out.replay_s = time.perf_counter() - began
    out.events = len(lines)
    day_start = _at(config, day, 0.0) - 3 * HOUR
    for a in alerts:
        if a.alert != "SlaAtRisk" or a.state != "firing" or not day_start <= a.at <= deadline:
            continue
        if a.labels["team"] == team and a.labels["deadline"] == label and out.fired is None:
            out.fired = a.at
            out.projected_at_fire = a.details["projected_misses"]
            out.due_at_fire = a.details["due_claims"]
            out.known_at_fire = _known_demand_misses(
                sim, team, deadline, a.at, a.details["projected_done"]
            )
        else:
            local = datetime.fromtimestamp(a.at, ZoneInfo(config.timezone)).strftime("%H:%M")
            other = a.labels["team"]
            due = _ts(a.labels["deadline"])
            _, missed = _team_misses(sim, other, due)
            out.other_firings.append(
                f"{other} due {_clock(config, due)} at {local}: "
                f"{a.details['projected_misses']} projected, {missed} missed"
            )
    if out.fired is not None and args.rerun:
        p = _projection_at(config, _on_time(lines), out.fired, team, deadline)
        out.rerun_due_at_fire = p.due if p else None
    say(
        f"  {case.name} seed {seed}: {team}, fired "
        f"{_clock(config, out.fired)}, projected {out.projected_at_fire}, truth "
        f"{out.truth_misses}/{out.truth_due} ({out.replay_s:.1f} s replay)"
    )
    return out


def _clock(config: Config, t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, ZoneInfo(config.timezone)).strftime("%H:%M")


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / HOUR:+.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--history-days", type=int, default=14)
    parser.add_argument("--claims-per-day", type=int, default=2000)
    parser.add_argument("--staff-share", type=float, default=0.3)
    parser.add_argument("--every", type=float, default=15 * MINUTE, help="sampling (s)")
    parser.add_argument("--cases", nargs="*", help="only cases whose name contains these")
    parser.add_argument("--no-rerun", dest="rerun", action="store_false")
    parser.add_argument("--samples", action="store_true", help="print the sampled projection")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.0f}s] {message}", file=sys.stderr, flush=True)

    config = load_config()
    share = args.staff_share
    cases = [
        Case("night 01-10, full staff", 1.0, 10.0, None, False),
        Case(f"night 01-10, team at {share:.0%}", 1.0, 10.0, share, True),
        Case("midday 11-14, full staff", 11.0, 14.0, None, False),
        Case(f"midday 11-14, team at {share:.0%}", 11.0, 14.0, share, True),
    ]
    cases = [c for c in cases if not args.cases or any(w in c.name for w in args.cases)]
    results: list[Outcome] = []
    for case in cases:
        for seed in args.seeds:
            say(f"{case.name}, seed {seed}")
            results.append(run_case(config, case, seed, args, say))
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2, default=str))
        return
    print(
        f"Break impact, {args.claims_per_day:,} claims/day, {args.history_days} days of "
        f"history, seeds {' '.join(map(str, args.seeds))} (clock times {config.timezone}):\n"
    )
    print(
        "| case | seed | team | stuck due 18:00 | fired | vs link back | vs 18:00 "
        "| projected misses (of due) | rerun due | known-demand misses | vs known "
        "| truth misses (of due) | error | oracle at link back | no break | other SlaAtRisk |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        err = "-"
        if r.projected_at_fire is not None:
            err = (
                f"{(r.projected_at_fire - r.truth_misses) / r.truth_misses:+.0%}"
                if r.truth_misses
                else f"{r.projected_at_fire - r.truth_misses:+d}"
            )
        vs_known = "-"
        if r.projected_at_fire is not None and r.known_at_fire is not None:
            vs_known = (
                f"{(r.projected_at_fire - r.known_at_fire) / r.known_at_fire:+.0%}"
                if r.known_at_fire
                else f"{r.projected_at_fire - r.known_at_fire:+d}"
            )
        print(
            f"| {r.case} | {r.seed} | {r.team} | {r.stuck_due} | {_clock(config, r.fired)} "
            f"| {_hours(None if r.fired is None else r.fired - r.link_back)} "
            f"| {_hours(None if r.fired is None else r.fired - r.deadline)} "
            f"| {r.projected_at_fire if r.projected_at_fire is not None else '-'}"
            f" ({r.due_at_fire if r.due_at_fire is not None else '-'}) "
            f"| {r.rerun_due_at_fire if r.rerun_due_at_fire is not None else '-'} "
            f"| {r.known_at_fire if r.known_at_fire is not None else '-'} | {vs_known} "
            f"| {r.truth_misses} ({r.truth_due}) | {err} | {r.oracle_at_return} "
            f"| {r.no_break_misses if r.no_break_misses is not None else '-'} "
            f"| {', '.join(r.other_firings) or '-'} |"
        )
    rates = [r.events / r.replay_s for r in results if r.replay_s]
    if rates:
        print(
            f"\nReplay with the projection (sampling included): median "
            f"{statistics.median(rates):,.0f} events/s"
        )
    if args.samples:
        for r in results:
            print(f"\n{r.case} seed {r.seed} ({r.team}, deadline 18:00):")
            print("| time | due | misses | pace/h | queued due | stuck due | trusted | open |")
            print("|---|---|---|---|---|---|---|---|")
            for s in r.samples:
                print(
                    f"| {_clock(config, s['t'])} | {s['due']} | {s['misses']} | {s['pace_h']} "
                    f"| {s['queue_due']} | {s['stuck']} | {s['trusted']} | {s['open']} |"
                )
    print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
