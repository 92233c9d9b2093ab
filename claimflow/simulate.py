"""A realistic day-by-day service center, as contract events, with faults to inject.

What it models, so detectors are tested against the shapes they meet in production:

* Claims reach the hubs at a seasonal rate (quiet nights, a morning peak, a lunch dip,
  quiet weekends), from several clients in several time zones, each client through its hub.
* The hub dispatches each claim within a minute or two; transit to the center takes a
  minute or two more (log-normal), and the claim is routed to the client's team.
* Teams work earliest-deadline-first within their working hours, with enough staff for a
  normal week (Monday's weekend pile included) and exponential handling times.
* About 30% of completed claims get a survey answer hours later; late claims are answered
  negatively far more often.
* Faults: a total or partial hub-link break (lost claims are re-sent when it is fixed), a
  hub that goes silent, a team losing most of its staff for a day, a surge of negative
  survey answers from one client.

The ground truth (each fault's kind, scope, start and end, and the alert it should raise)
is written to `<out>.truth.json` so tests can score detection delay and false alarms.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from claimflow.config import Config
from claimflow.deadlines import DeadlineCalendar
from claimflow.timeutil import DAY, HOUR, MINUTE, iso
from claimflow.workhours import WorkingCalendar

# Relative arrival rate by local hour of day (the center's time zone), weekdays.
_HOURLY = (
    [0.15] * 6 + [0.4, 0.8] + [1.6] * 4 + [0.9] + [1.4] * 4 + [0.8] * 2 + [0.4] * 3 + [0.2] * 2
)
_WEEKEND_FACTOR = 0.2
_CLIENT_WEIGHTS = (0.2, 0.15, 0.25, 0.2, 0.2)
_HANDLING_MINUTES = 20.0
_TARGET_UTILISATION = 0.65
_SURVEY_SHARE = 0.3
_NEGATIVE_COMMENTS = (
    "Still no answer on my claim.",
    "Nobody told me the claim was delayed.",
    "Promised same day, still waiting.",
    "Very slow this time.",
)

SCENARIOS = (
    "normal",
    "hub-break",
    "partial-hub-break",
    "hub-silent",
    "team-capacity-loss",
    "feedback-surge",
    "mixed",
    "demo",
)


@dataclass
class Fault:
    kind: str
    start: float
    end: float
    labels: dict[str, str]
    expect: str
    allow: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["end"] = iso(self.start), iso(self.end)
        return out


@dataclass
class Claim:
    n: int
    client: str
    hub: str
    center: str
    team: str
    received: float
    dispatched: float
    arrived: float | None = None
    due: float = 0.0
    completed: float | None = None


@dataclass(frozen=True)
class StaffMove:
    """One person moved from a team to another for a while: how a staffing suggestion is
    re-run (tests/test_staffing.py). The person works `speed` times as fast as the
    receiving team's own people (their skill factor) while moved."""

    from_team: str
    to_team: str
    start: float
    end: float
    speed: float = 1.0


class SimulationError(ValueError):
    """Options that cannot make the asked-for scenario."""


class Simulator:
    def __init__(
        self,
        config: Config,
        scenario: str,
        days: int,
        start: date,
        seed: int = 1,
        claims_per_day: int = 2000,
        moves: list[StaffMove] | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            raise SimulationError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
        minimum = 14 if scenario == "mixed" else 10 if scenario != "normal" else 1
        if days < minimum:
            raise SimulationError(
                f"scenario {scenario!r} needs --days {minimum} or more: detectors learn their "
                "baselines from the first week before a fault is injected"
            )
        self.config = config
        self.scenario = scenario
        self.days = days
        self.seed = seed
        self.rng = random.Random(seed)
        self.claims_per_day = claims_per_day
        self.tz = ZoneInfo(config.timezone)
        self.t0 = datetime.combine(start, datetime.min.time(), tzinfo=self.tz).timestamp()
        self.t_end = datetime.combine(
            start + timedelta(days=days), datetime.min.time(), tzinfo=self.tz
        ).timestamp()
        self.start_date = start
        self.deadlines = DeadlineCalendar(config)
        self.clients = [c.id for c in config.clients] or ["client-1"]
        weights = [_CLIENT_WEIGHTS[i % len(_CLIENT_WEIGHTS)] for i in range(len(self.clients))]
        self.client_weights = [w / sum(weights) for w in weights]
        self.teams = list(config.team_settings)
        self.hubs = list(config.hub_centers)
        self.client_team = {c: self.teams[i % len(self.teams)] for i, c in enumerate(self.clients)}
        self.client_hub = {
            c: self.hubs[i] if 0 < i < len(self.hubs) else self.hubs[0]
            for i, c in enumerate(self.clients)
        }
        self.faults = self._faults()
        # With `moves` (even none), each team's handling times come from a generator of its
        # own, so two re-runs differ only by the moves; without, the historic single stream.
        self.moves = moves
        self._moves_in: dict[str, list[StaffMove]] = {}
        self._moves_out: dict[str, list[StaffMove]] = {}
        for move in moves or []:
            self._moves_in.setdefault(move.to_team, []).append(move)
            self._moves_out.setdefault(move.from_team, []).append(move)
        self.staff: dict[str, int] = {}  # people per team, known once the teams have worked
        self.claims: list[Claim] = []

    # --- faults ------------------------------------------------------------------------

    def _local(self, day_index: int, hour: float) -> float:
        day = self.start_date + timedelta(days=day_index)
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=self.tz).timestamp()
        return midnight + hour * HOUR

    def _weekday_on_or_before(self, day_index: int) -> int:
        while (self.start_date + timedelta(days=day_index)).weekday() >= 5:
            day_index -= 1
        return day_index

    def _faults(self) -> list[Fault]:
        hub, center = self.hubs[0], self.config.hub_centers[self.hubs[0]][0]
        other_hub = self.hubs[-1]
        other_center = self.config.hub_centers[other_hub][0]
        team = self.teams[min(2, len(self.teams) - 1)]
        client = self.clients[min(3, len(self.clients) - 1)]
        last = self.days - 2
        consequences = ["InflowDrop", "SlaAtRisk", "NegativeFeedbackSurge"]

        def link_break(day: int, start: float, end: float, loss: float) -> Fault:
            return Fault(
                "hub_link_break",
                self._local(day, start),
                self._local(day, end),
                {"hub_id": hub, "center_id": center},
                "HubLinkBreak",
                consequences,
                {"loss": loss},
            )

        makers: dict[str, Callable[[int], Fault]] = {
            # Overnight, like the night the whiteboard showed 15% of the usual inflow.
            "hub-break": lambda d: link_break(d, 1.0, 9.5, loss=1.0),
            "partial-hub-break": lambda d: link_break(d, 10.0, 14.0, loss=0.5),
            "hub-silent": lambda d: Fault(
                "hub_silent",
                self._local(d, 10.0),
                self._local(d, 12.5),
                {"hub_id": other_hub, "center_id": other_center},
                "HubLinkBreak",
                consequences,
            ),
            "team-capacity-loss": lambda d: Fault(
                "team_capacity_loss",
                self._local(d, 8.0),
                self._local(d, 18.0),
                {"team": team},
                "SlaAtRisk",
                ["NegativeFeedbackSurge"],
                {"staff_share": 0.3},
            ),
            "feedback-surge": lambda d: Fault(
                "feedback_surge",
                self._local(d, 9.0),
                self._local(d, 15.0),
                {"client_id": client},
                "NegativeFeedbackSurge",
                [],
                {"answers": 30},
            ),
        }
        if self.scenario == "normal":
            return []
        if self.scenario == "demo":  # `claimflow demo`: a midday hub-link break and a team behind
            day = self._weekday_on_or_before(self.days - 1)
            return [
                link_break(day, 11.0, 17.0, loss=1.0),
                makers["team-capacity-loss"](day),
            ]
        if self.scenario != "mixed":
            return [makers[self.scenario](self._weekday_on_or_before(last))]
        day = self._weekday_on_or_before(last)
        out = []
        for name in (
            "feedback-surge",
            "team-capacity-loss",
            "hub-silent",
            "partial-hub-break",
            "hub-break",
        ):
            out.append(makers[name](day))
            day = self._weekday_on_or_before(day - 1)
        return sorted(out, key=lambda f: f.start)

    def _active(self, kind: str, t: float, **labels: str) -> Fault | None:
        for fault in self.faults:
            if (
                fault.kind == kind
                and fault.start <= t < fault.end
                and all(fault.labels.get(k) == v for k, v in labels.items())
            ):
                return fault
        return None

    # --- the day ----------------------------------------------------------------------

    def _hourly_rate(self, t: float) -> float:
        local = datetime.fromtimestamp(t, self.tz)
        weekend = local.weekday() >= 5 or local.date() in self.config.holidays
        factor = _WEEKEND_FACTOR if weekend else 1.0
        return self.claims_per_day * factor * _HOURLY[local.hour] / sum(_HOURLY)

    def _claims(self) -> list[Claim]:
        rng = self.rng
        claims: list[Claim] = []
        t = self.t0
        n = 0
        while True:
            rate = self._hourly_rate(t)
            t += rng.expovariate(rate / HOUR)
            if t >= self.t_end:
                break
            n += 1
            client = rng.choices(self.clients, self.client_weights)[0]
            team = self.client_team[client] if rng.random() < 0.8 else rng.choice(self.teams)
            hub = self.client_hub[client]
            center = self.config.hub_centers[hub][0]
            dispatched = t + rng.uniform(5, 90)
            claim = Claim(n, client, hub, center, team, t, dispatched)
            claim.arrived = dispatched + min(1800.0, rng.lognormvariate(math.log(90), 0.5))
            silent = self._active("hub_silent", dispatched, hub_id=hub, center_id=center)
            if silent is not None:  # the hub holds everything until it comes back
                claim.dispatched = silent.end + rng.uniform(0, 10 * MINUTE)
                claim.arrived = claim.dispatched + rng.lognormvariate(math.log(90), 0.5)
            broken = self._active("hub_link_break", dispatched, hub_id=hub, center_id=center)
            if broken is not None and rng.random() < broken.params["loss"]:
                claim.arrived = broken.end + rng.uniform(5 * MINUTE, 30 * MINUTE)  # re-sent
            claim.due = self.deadlines.due_epoch(client, datetime.fromtimestamp(t, self.tz))
            claims.append(claim)
        return claims

    def _staff(self, claims: list[Claim]) -> dict[str, int]:
        weeks = max(1.0, (self.t_end - self.t0) / (7 * DAY))
        out = {}
        for team, spec in self.config.team_settings.items():
            assert spec.working_hours is not None
            hours = spec.working_hours
            shift = (
                datetime.combine(date.min, hours.end) - datetime.combine(date.min, hours.start)
            ).seconds / HOUR
            per_week = sum(1 for c in claims if c.team == team) / weeks
            capacity_per_person = len(hours.days) * shift * 60 / _HANDLING_MINUTES
            out[team] = max(1, math.ceil(per_week / capacity_per_person / _TARGET_UTILISATION))
        return out

    def _work(self, claims: list[Claim]) -> None:
        """Each team serves its arrivals earliest-deadline-first within working hours."""
        staff = self.staff = self._staff(claims)
        for team, spec in self.config.team_settings.items():
            calendar = WorkingCalendar(spec, frozenset(self.config.holidays))
            mine = sorted(
                (c for c in claims if c.team == team and c.arrived), key=lambda c: c.arrived or 0
            )
            self._serve(team, mine, staff[team], calendar)

    def _next_working(
        self, team: str, calendar: WorkingCalendar, t: float, server: int, staff: int
    ) -> float:
        """When `server` (person number) can next take a claim. Servers past `staff` are
        people moved in (StaffMove), there only while moved; the team's last servers are
        the ones moved out."""
        incoming, outgoing = self._moves_in.get(team, []), self._moves_out.get(team, [])
        for _ in range(400):
            span = calendar.shift(calendar.local_day(t))
            if span is None or t >= span[1]:
                day = calendar.local_day(t) + timedelta(days=1)
                t = datetime.combine(day, datetime.min.time(), tzinfo=calendar.tz).timestamp()
                continue
            t = max(t, span[0])
            if server >= staff:
                move = incoming[server - staff]
                if t >= move.end:
                    return math.inf
                if t < move.start:
                    t = move.start
                    continue
                return t
            loss = self._active("team_capacity_loss", t, team=team)
            if loss is not None and server >= max(1, round(staff * loss.params["staff_share"])):
                t = loss.end
                continue
            away = staff - 1 - server
            if away < len(outgoing) and outgoing[away].start <= t < outgoing[away].end:
                t = outgoing[away].end
                continue
            return t
        return math.inf

    def _serve(self, team: str, claims: list[Claim], staff: int, calendar: WorkingCalendar) -> None:
        rng = self.rng if self.moves is None else random.Random(f"{self.seed}:serve:{team}")
        speed = [1.0] * staff + [m.speed for m in self._moves_in.get(team, [])]
        servers = [(self.t0, s) for s in range(len(speed))]
        heapq.heapify(servers)
        queue: list[tuple[float, float, int]] = []
        i = 0
        while servers:
            free_at, server = heapq.heappop(servers)
            t = self._next_working(team, calendar, free_at, server, staff)
            if t >= self.t_end:
                continue
            if t > free_at:  # away until t: take a claim then, not before the others' turns
                heapq.heappush(servers, (t, server))
                continue
            while i < len(claims) and (claims[i].arrived or 0) <= t:
                heapq.heappush(queue, (claims[i].due, claims[i].arrived or 0, i))
                i += 1
            if not queue:
                if i < len(claims):
                    heapq.heappush(servers, (claims[i].arrived or 0, server))
                continue
            _, _, index = heapq.heappop(queue)
            finish = t + rng.expovariate(1 / (_HANDLING_MINUTES * MINUTE)) / speed[server]
            claims[index].completed = finish
            heapq.heappush(servers, (finish, server))

    # --- events -----------------------------------------------------------------------

    def events(
        self, progress: Callable[[str], None] | None = None
    ) -> list[tuple[float, dict[str, Any]]]:
        """All events as (emit order key, event), sorted; the key adds up to 20 s of jitter
        to event time, as a real transport would, well within the default lateness."""
        say = progress or (lambda message: None)
        say("claims reaching the hubs...")
        claims = self.claims = self._claims()
        say(f"{len(claims):,} claims; teams working them...")
        self._work(claims)
        say("events, surveys and faults...")
        rng = self.rng
        out: list[tuple[float, dict[str, Any]]] = []

        def emit(t: float, event: dict[str, Any]) -> None:
            if t < self.t_end:
                out.append((t + rng.uniform(0, 20), event))

        for c in claims:
            cid = f"CLM-{c.n:08d}"
            received = iso(c.received)
            emit(
                c.dispatched,
                {
                    "type": "hub_dispatched",
                    "event_id": f"d-{cid}",
                    "claim_id": cid,
                    "client_id": c.client,
                    "hub_id": c.hub,
                    "center_id": c.center,
                    "hub_received_at": received,
                    "dispatched_at": iso(c.dispatched),
                },
            )
            if c.arrived is None:
                continue
            emit(
                c.arrived,
                {
                    "type": "claim_arrived",
                    "event_id": f"a-{cid}",
                    "claim_id": cid,
                    "client_id": c.client,
                    "hub_id": c.hub,
                    "team": c.team,
                    "claim_type": f"{c.team}-claim",
                    "hub_received_at": received,
                    "arrived_at": iso(c.arrived),
                },
            )
            if c.completed is None:
                continue
            emit(
                c.completed,
                {
                    "type": "claim_completed",
                    "event_id": f"c-{cid}",
                    "claim_id": cid,
                    "team": c.team,
                    "completed_at": iso(c.completed),
                    "outcome": rng.choices(["resolved", "rejected", "referred"], [0.85, 0.1, 0.05])[
                        0
                    ],
                    "handled_by": f"emp-{rng.randrange(1, 60):03d}",
                },
            )
            if rng.random() < _SURVEY_SHARE:
                late = c.completed > c.due
                answered = c.completed + min(3 * DAY, rng.lognormvariate(math.log(3 * HOUR), 1.0))
                emit(answered, self._survey(f"s-{cid}", c.client, answered, late, cid))
        for fault in self.faults:
            if fault.kind == "feedback_surge":
                for k in range(fault.params["answers"]):
                    t = rng.uniform(fault.start, fault.end)
                    emit(t, self._survey(f"s-surge-{k}", fault.labels["client_id"], t, True, None))
        out.sort(key=lambda pair: pair[0])
        return out

    def _survey(
        self, sid: str, client: str, t: float, late: bool, claim_id: str | None
    ) -> dict[str, Any]:
        rng = self.rng
        negative = rng.random() < (0.6 if late else 0.07)
        score = rng.choice([1, 2]) if negative else rng.choices([3, 4, 5], [0.2, 0.4, 0.4])[0]
        event: dict[str, Any] = {
            "type": "survey_response",
            "event_id": sid,
            "survey_id": sid,
            "client_id": client,
            "responded_at": iso(t),
            "score": score,
        }
        if claim_id is not None and rng.random() < 0.8:
            event["claim_id"] = claim_id
        if negative and rng.random() < 0.5:
            event["comment"] = rng.choice(_NEGATIVE_COMMENTS)
        return event

    def roster(self, at: float) -> dict[str, Any]:
        """A staffing roster (docs/staffing.md) with the people this simulation has, as of
        `at`: everyone deep in their team's claim type; every fourth person moderate and
        every eighth deep in the next team's as well; those a team-capacity-loss fault keeps
        away at `at` not available. Call after `events()` (staff is known then)."""
        if not self.staff:
            raise SimulationError("roster(): run events() first; staff is known after it")
        teams = list(self.staff)
        people = []
        for k, team in enumerate(teams):
            loss = self._active("team_capacity_loss", at, team=team)
            n = self.staff[team]
            working = max(1, round(n * loss.params["staff_share"])) if loss else n
            other = f"{teams[(k + 1) % len(teams)]}-claim"
            for i in range(n):
                skills = {f"{team}-claim": "deep"}
                if i % 8 == 3:
                    skills[other] = "deep"
                elif i % 4 == 1:
                    skills[other] = "moderate"
                person: dict[str, Any] = {"id": f"{team}-{i + 1:02d}", "team": team}
                person["skills"] = skills
                if i >= working:
                    person["available"] = False
                people.append(person)
        return {"teams": {t: {"claim_types": [f"{t}-claim"]} for t in teams}, "employees": people}

    def truth(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "start": iso(self.t0),
            "end": iso(self.t_end),
            "claims_per_day": self.claims_per_day,
            "faults": [f.to_dict() for f in self.faults],
        }


def write_scenario(
    sim: Simulator,
    out: Path,
    progress: Callable[[int], None] | None = None,
    stage: Callable[[str], None] | None = None,
) -> tuple[int, Path]:
    """Writes events as JSON lines to `out` (`-`: standard output is the caller's) and the
    ground truth beside it. Returns the number of events and the truth file's path."""
    events = sim.events(stage)
    truth_path = out.with_name(out.name + ".truth.json")
    with out.open("w", encoding="utf-8") as fh:
        _write_lines(fh, (e for _, e in events), progress)
    truth_path.write_text(json.dumps(sim.truth(), indent=2) + "\n", encoding="utf-8")
    return len(events), truth_path


def _write_lines(
    fh: TextIO, events: Iterator[dict[str, Any]], progress: Callable[[int], None] | None
) -> None:
    for n, event in enumerate(events, 1):
        fh.write(json.dumps(event, separators=(",", ":")))
        fh.write("\n")
        if progress is not None and n % 10000 == 0:
            progress(n)
