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
* Faults: a total or partial hub-link break (lost claims are re-sent when it is fixed), two
  breaks back to back, a hub that goes silent, a team losing most of its staff for a day, a
  surge of negative survey answers from one client, a drop of a hub's inflow.
* What healthy production data also holds (`Realism`): stragglers (a share of claims, 0.1% by
  default, delayed by minutes to hours on top of the transit time: a heavy tail), batching
  hubs (one file every 15 minutes: the file's claims share their dispatch and arrival time),
  duplicate dispatches (a record delivered twice, or re-dispatched under a new event id),
  hubs that hold their overnight claims and send them at 06:00 (a morning backlog, on top of
  the teams' own overnight pile), and public holidays (weekend-like inflow, teams off).

The ground truth (each fault's kind, scope, start and end, the alert it should raise and its
`physical_limit`, the earliest moment the data could tell; docs/detection-benchmark.md) is
written to `<out>.truth.json` so tests can score detection delay and false alarms.

Events are streamed: claims are kept as compact columns, events are spilled into one
temporary file per simulated day by their emit time and each day is sorted alone, so memory
grows with claims (about 60 bytes each), not with events.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from statistics import NormalDist
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
    "back-to-back-break",
    "hub-silent",
    "team-capacity-loss",
    "feedback-surge",
    "inflow-drop",
    "mixed",
    "demo",
)

# Healthy transit, hub to center: log-normal around 90 s (what `_claims` draws).
_TRANSIT_MEDIAN = 90.0
_TRANSIT_SIGMA = 0.5
_TRANSIT_CAP = 1800.0
_TAIL_QUANTILE = 0.999


def transit_tail(
    quantile: float = _TAIL_QUANTILE, median: float = _TRANSIT_MEDIAN, sigma: float = _TRANSIT_SIGMA
) -> float:
    """The healthy transit time that only `1 - quantile` of claims exceed (stragglers apart)."""
    z = NormalDist().inv_cdf(quantile)
    return min(_TRANSIT_CAP, median * math.exp(sigma * z))


@dataclass(frozen=True)
class Realism:
    """What healthy production data holds besides the faults. The defaults keep the older
    scenarios' events (and the tests built on them) but for 0.1% stragglers; the detection
    benchmark turns the rest on."""

    straggler_share: float = 0.001
    """Share of healthy claims delayed on top of their transit time."""
    straggler_delay: tuple[float, float] = (2 * MINUTE, 4 * HOUR)
    """Delay range of a straggler, drawn log-uniformly (a heavy tail)."""
    duplicate_share: float = 0.0
    """Share of dispatches sent twice (half redelivered as is, half under a new event id)."""
    batching: dict[str, float] = field(default_factory=dict)
    """Hub -> period (s): the hub dispatches one file per period with every claim it holds."""
    overnight_hold: tuple[str, ...] = ()
    """Hubs that hold claims received 22:00-06:00 (local) and send them from 06:00."""
    holidays: tuple[date, ...] = ()
    """Public holidays besides the configuration's: weekend inflow, teams off."""
    transit_median: float = _TRANSIT_MEDIAN
    """Median healthy transit, hub to center (s); log-normal with `transit_sigma`."""
    transit_sigma: float = _TRANSIT_SIGMA
    false_alarm_budget: float = 1.0
    """False alarms a year per route (hub links) or a quarter per scope (others) that the
    physical limits in the truth file assume a detector may spend."""

    def __post_init__(self) -> None:
        if not 0 <= self.straggler_share < 1 or not 0 <= self.duplicate_share < 1:
            raise SimulationError("straggler and duplicate shares must be in [0, 1)")
        low, high = self.straggler_delay
        if not 0 < low <= high:
            raise SimulationError("straggler delay range must be positive and ordered")
        if self.transit_median <= 0 or self.transit_sigma < 0:
            raise SimulationError("transit median must be positive and sigma not negative")
        if any(p <= 0 for p in self.batching.values()):
            raise SimulationError("batching periods must be positive")


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
    """One claim, as read back from the compact columns (`ClaimStore`)."""

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
    re-run (tests/staffing/test_staffing.py). The person works `speed` times as fast as the
    receiving team's own people (their skill factor) while moved."""

    from_team: str
    to_team: str
    start: float
    end: float
    speed: float = 1.0


class SimulationError(ValueError):
    """Options that cannot make the asked-for scenario."""


_NAN = math.nan


class ClaimStore:
    """Claims as columns of machine numbers: 90 days at 20,000 claims a day is 1.8 million
    claims, ~100 MB here against ~500 MB as objects. Iterating yields `Claim` views."""

    def __init__(self, clients: list[str], hubs: list[str], centers: list[str], teams: list[str]):
        self.names = (clients, hubs, centers, teams)
        self.client, self.hub, self.center, self.team = (array("H") for _ in range(4))
        self.received, self.dispatched, self.arrived = array("d"), array("d"), array("d")
        self.due, self.completed = array("d"), array("d")
        self.flags = array("B")  # 1 lost in a break, 2 straggler, 4 duplicated

    def __len__(self) -> int:
        return len(self.received)

    def append(self, c: Claim, flags: int = 0) -> None:
        clients, hubs, centers, teams = self.names
        self.client.append(clients.index(c.client))
        self.hub.append(hubs.index(c.hub))
        self.center.append(centers.index(c.center))
        self.team.append(teams.index(c.team))
        self.received.append(c.received)
        self.dispatched.append(c.dispatched)
        self.arrived.append(_NAN if c.arrived is None else c.arrived)
        self.due.append(c.due)
        self.completed.append(_NAN if c.completed is None else c.completed)
        self.flags.append(flags)

    def get(self, i: int) -> Claim:
        clients, hubs, centers, teams = self.names
        arrived, completed = self.arrived[i], self.completed[i]
        return Claim(
            i + 1,
            clients[self.client[i]],
            hubs[self.hub[i]],
            centers[self.center[i]],
            teams[self.team[i]],
            self.received[i],
            self.dispatched[i],
            None if math.isnan(arrived) else arrived,
            self.due[i],
            None if math.isnan(completed) else completed,
        )

    def __iter__(self) -> Iterator[Claim]:
        return (self.get(i) for i in range(len(self)))


class Simulator:
    def __init__(  # noqa: PLR0913 - the scenario's knobs, each a CLI option
        self,
        config: Config,
        scenario: str,
        days: int,
        start: date,
        seed: int = 1,
        claims_per_day: int = 2000,
        moves: list[StaffMove] | None = None,
        realism: Realism | None = None,
        faults: list[Fault] | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            raise SimulationError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
        minimum = 14 if scenario == "mixed" else 10 if scenario != "normal" else 1
        if faults is not None:
            minimum = 1
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
        self.realism = realism or Realism()
        self.holidays = frozenset(config.holidays) | frozenset(self.realism.holidays)
        self._extra = random.Random(f"{seed}:realism")  # keeps the main stream as it was
        self.centers = sorted({c for cs in config.hub_centers.values() for c in cs})
        self.faults = self._faults() if faults is None else sorted(faults, key=lambda f: f.start)
        self.negatives: dict[str, int] = {}  # negative survey answers per client (no surges)
        self._surge_negatives: dict[int, list[float]] = {}
        # With `moves` (even none), each team's handling times come from a generator of its
        # own, so two re-runs differ only by the moves; without, the historic single stream.
        self.moves = moves
        self._moves_in: dict[str, list[StaffMove]] = {}
        self._moves_out: dict[str, list[StaffMove]] = {}
        for move in moves or []:
            self._moves_in.setdefault(move.to_team, []).append(move)
            self._moves_out.setdefault(move.from_team, []).append(move)
        self.staff: dict[str, int] = {}  # people per team, known once the teams have worked
        self.claims = ClaimStore(self.clients, self.hubs, self.centers, self.teams)

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
            "inflow-drop": lambda d: Fault(
                "inflow_drop",
                self._local(d, 10.0),
                self._local(d, 16.0),
                {"hub_id": hub},
                "InflowDrop",
                ["InflowDrop", "SlaAtRisk"],
                {"remaining": 0.3},
            ),
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
        if self.scenario == "back-to-back-break":  # the second right after the first resolves
            day = self._weekday_on_or_before(last)
            return [
                link_break(day, 12.0, 12.5, loss=1.0),
                link_break(day, 12.75, 13.5, loss=1.0),
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
        weekend = local.weekday() >= 5 or local.date() in self.holidays
        factor = _WEEKEND_FACTOR if weekend else 1.0
        return self.claims_per_day * factor * _HOURLY[local.hour] / sum(_HOURLY)

    def _claims(self) -> ClaimStore:  # noqa: PLR0915 - one claim's life (dispatch, transit, arrival, work) in order
        rng, extra, real = self.rng, self._extra, self.realism
        store = self.claims = ClaimStore(self.clients, self.hubs, self.centers, self.teams)
        client_i = {c: i for i, c in enumerate(self.clients)}
        hub_i = {h: i for i, h in enumerate(self.hubs)}
        center_i = {c: i for i, c in enumerate(self.centers)}
        team_i = {t: i for i, t in enumerate(self.teams)}
        low, high = (math.log(x) for x in real.straggler_delay)
        mu, sigma = math.log(real.transit_median), real.transit_sigma
        batch_transit: dict[tuple[str, int], float] = {}
        drops = [f for f in self.faults if f.kind == "inflow_drop"]
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
            arrived = dispatched + min(_TRANSIT_CAP, rng.lognormvariate(mu, sigma))
            flags = 0
            if drops and any(
                f.start <= t < f.end
                and f.labels.get("hub_id") == hub
                and extra.random() >= f.params["remaining"]
                for f in drops
            ):
                continue  # never sent by the client: the hub's inflow falls
            if hub in real.overnight_hold:
                local = datetime.fromtimestamp(dispatched, self.tz)
                if local.hour >= 22 or local.hour < 6:
                    day = local.date() + timedelta(days=1 if local.hour >= 22 else 0)
                    six = datetime.combine(day, datetime.min.time(), tzinfo=self.tz)
                    opening = six.timestamp() + 6 * HOUR + extra.uniform(0, 20 * MINUTE)
                    arrived += opening - dispatched
                    dispatched = opening
            period = real.batching.get(hub)
            if period:  # the file leaves at the next boundary; its claims travel together
                k = math.ceil((dispatched - self.t0) / period)
                dispatched = self.t0 + k * period
                if (hub, k) not in batch_transit:
                    batch_transit.clear()  # only the newest file's transit is ever needed
                    draw = random.Random(f"{self.seed}:file:{hub}:{k}")
                    batch_transit[(hub, k)] = min(_TRANSIT_CAP, draw.lognormvariate(mu, sigma))
                arrived = dispatched + batch_transit[(hub, k)]
            if real.straggler_share and extra.random() < real.straggler_share:
                arrived += math.exp(extra.uniform(low, high))
                flags |= 2
            if real.duplicate_share and extra.random() < real.duplicate_share:
                flags |= 4
            sent = dispatched
            silent = self._active("hub_silent", dispatched, hub_id=hub, center_id=center)
            if silent is not None:  # the hub holds everything until it comes back
                sent = silent.end + rng.uniform(0, 10 * MINUTE)
                arrived = sent + rng.lognormvariate(mu, sigma)
            broken = self._active("hub_link_break", dispatched, hub_id=hub, center_id=center)
            if broken is not None and rng.random() < broken.params["loss"]:
                arrived = broken.end + rng.uniform(5 * MINUTE, 30 * MINUTE)  # re-sent
                flags |= 1
            due = self.deadlines.due_epoch(client, datetime.fromtimestamp(t, self.tz))
            store.client.append(client_i[client])
            store.hub.append(hub_i[hub])
            store.center.append(center_i[center])
            store.team.append(team_i[team])
            store.received.append(t)
            store.dispatched.append(sent)
            store.arrived.append(arrived)
            store.due.append(due)
            store.completed.append(_NAN)
            store.flags.append(flags)
        return store

    def _staff(self, claims: ClaimStore) -> dict[str, int]:
        weeks = max(1.0, (self.t_end - self.t0) / (7 * DAY))
        out = {}
        for team, spec in self.config.team_settings.items():
            assert spec.working_hours is not None
            hours = spec.working_hours
            shift = (
                datetime.combine(date.min, hours.end) - datetime.combine(date.min, hours.start)
            ).seconds / HOUR
            k = self.teams.index(team)
            per_week = sum(1 for x in claims.team if x == k) / weeks
            capacity_per_person = len(hours.days) * shift * 60 / _HANDLING_MINUTES
            out[team] = max(1, math.ceil(per_week / capacity_per_person / _TARGET_UTILISATION))
        return out

    def _work(self, claims: ClaimStore) -> None:
        """Each team serves its arrivals earliest-deadline-first within working hours."""
        staff = self.staff = self._staff(claims)
        arrived, teams = claims.arrived, claims.team
        for team, spec in self.config.team_settings.items():
            calendar = WorkingCalendar(spec, self.holidays)
            k = self.teams.index(team)
            mine = sorted(
                (i for i in range(len(claims)) if teams[i] == k and not math.isnan(arrived[i])),
                key=arrived.__getitem__,
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

    def _serve(self, team: str, mine: list[int], staff: int, calendar: WorkingCalendar) -> None:
        rng = self.rng if self.moves is None else random.Random(f"{self.seed}:serve:{team}")
        speed = [1.0] * staff + [m.speed for m in self._moves_in.get(team, [])]
        servers = [(self.t0, s) for s in range(len(speed))]
        heapq.heapify(servers)
        # Servers waiting for the next arrival all wait for the same one: they are kept as
        # one group (`idle`, by person number) with one wake time, moved as a whole when the
        # next arrival changes, instead of each being woken and re-queued at every arrival
        # (which cost claims x staff). The order of events is the same as one heap's.
        idle: list[int] = []
        idle_at = math.inf
        queue: list[tuple[float, float, int]] = []
        arrived, due, completed = self.claims.arrived, self.claims.due, self.claims.completed
        i = 0
        while servers or idle:
            if idle and (not servers or (idle_at, idle[0]) < servers[0]):
                free_at, server = idle_at, heapq.heappop(idle)
            else:
                free_at, server = heapq.heappop(servers)
            t = self._next_working(team, calendar, free_at, server, staff)
            if t >= self.t_end:
                continue
            if t > free_at:  # away until t: take a claim then, not before the others' turns
                heapq.heappush(servers, (t, server))
                continue
            while i < len(mine) and arrived[mine[i]] <= t:
                heapq.heappush(queue, (due[mine[i]], arrived[mine[i]], i))
                i += 1
            if not queue:
                if i < len(mine):
                    idle_at = arrived[mine[i]]
                    heapq.heappush(idle, server)
                continue
            _, _, index = heapq.heappop(queue)
            finish = t + rng.expovariate(1 / (_HANDLING_MINUTES * MINUTE)) / speed[server]
            completed[mine[index]] = finish
            heapq.heappush(servers, (finish, server))

    # --- events -----------------------------------------------------------------------

    def events(
        self, progress: Callable[[str], None] | None = None
    ) -> list[tuple[float, dict[str, Any]]]:
        """All events as (emit order key, event), sorted; the key adds up to 20 s of jitter
        to event time, as a real transport would, well within the default lateness. Holds
        every event: for long runs use `lines()`, which streams."""
        return [(key, json.loads(line)) for key, line in self.lines(progress)]

    def lines(
        self,
        progress: Callable[[str], None] | None = None,
        tick: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[float, str]]:
        """Every event as (emit order key, JSON text), in emit order, streamed: events are
        spilled by emit day into temporary files and each day is sorted alone (the same order
        as sorting all of them, in the memory of one day). `tick(n)` is called with the
        number of claims turned into events since the last call."""
        say = progress or (lambda message: None)
        say("claims reaching the hubs...")
        claims = self._claims()
        say(f"{len(claims):,} claims; teams working them...")
        self._work(claims)
        say("events, surveys and faults...")
        with tempfile.TemporaryDirectory(prefix="claimflow-simulate-") as tmp:
            spill = _Spill(Path(tmp), self.t0)
            try:
                self._spill_events(spill, tick)
            finally:
                spill.close()
            yield from spill.sorted_lines()

    def _spill_events(self, spill: _Spill, tick: Callable[[int], None] | None) -> None:
        rng, extra = self.rng, self._extra
        claims, t_end = self.claims, self.t_end
        dumps = json.JSONEncoder(separators=(",", ":")).encode

        def emit(t: float, event: dict[str, Any]) -> None:
            if t < t_end:
                spill.add(t + rng.uniform(0, 20), dumps(event))

        for i in range(len(claims)):
            if tick is not None and i and not i % 5000:
                tick(5000)
            c = claims.get(i)
            cid = f"CLM-{c.n:08d}"
            received = iso(c.received)
            dispatch = {
                "type": "hub_dispatched",
                "event_id": f"d-{cid}",
                "claim_id": cid,
                "client_id": c.client,
                "hub_id": c.hub,
                "center_id": c.center,
                "hub_received_at": received,
                "dispatched_at": iso(c.dispatched),
            }
            emit(c.dispatched, dispatch)
            if claims.flags[i] & 4:  # sent twice: redelivered as is, or re-dispatched
                again = c.dispatched + extra.uniform(30, 10 * MINUTE)
                if extra.random() < 0.5:
                    dispatch = dict(dispatch, event_id=f"d2-{cid}", dispatched_at=iso(again))
                if again < t_end:
                    spill.add(again + extra.uniform(0, 20), dumps(dispatch))
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
                survey = self._survey(f"s-{cid}", c.client, answered, late, cid)
                if survey["score"] <= 2 and answered < t_end:
                    self.negatives[c.client] = self.negatives.get(c.client, 0) + 1
                emit(answered, survey)
        if tick is not None and len(claims):
            tick((len(claims) - 1) % 5000 + 1)
        for fault in self.faults:
            if fault.kind == "feedback_surge":
                negative_only = bool(fault.params.get("negative_only"))
                times = []
                for k in range(fault.params["answers"]):
                    t = rng.uniform(fault.start, fault.end)
                    client = fault.labels["client_id"]
                    survey = self._survey(f"s-surge-{k}", client, t, True, None, negative_only)
                    if survey["score"] <= 2:
                        times.append(t)
                    emit(t, survey)
                self._surge_negatives[id(fault)] = sorted(times)

    def _survey(
        self,
        sid: str,
        client: str,
        t: float,
        late: bool,
        claim_id: str | None,
        negative_only: bool = False,
    ) -> dict[str, Any]:
        rng = self.rng
        negative = negative_only or rng.random() < (0.6 if late else 0.07)
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
        """The ground truth; after `events()`/`lines()`, each fault carries its
        `physical_limit` (see `physical_limit`)."""
        faults = []
        for f in self.faults:
            out = f.to_dict()
            if len(self.claims):
                limit, basis = self.physical_limit(f)
                out["physical_limit"] = iso(limit)
                out["physical_limit_basis"] = basis
            faults.append(out)
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "start": iso(self.t0),
            "end": iso(self.t_end),
            "claims_per_day": self.claims_per_day,
            "realism": {
                "straggler_share": self.realism.straggler_share,
                "duplicate_share": self.realism.duplicate_share,
                "batching": self.realism.batching,
                "overnight_hold": list(self.realism.overnight_hold),
                "holidays": sorted(d.isoformat() for d in self.holidays),
                "false_alarm_budget": self.realism.false_alarm_budget,
            },
            "faults": faults,
        }

    # --- physical limits (docs/detection-benchmark.md); independent of claimflow.engine ---

    def _per_year(self, count: int) -> float:
        return count / ((self.t_end - self.t0) / (365 * DAY))

    def _route_claims(self, hub: str) -> int:
        k = self.hubs.index(hub)
        return sum(1 for x in self.claims.hub if x == k)

    def physical_limit(self, fault: Fault) -> tuple[float, str]:
        """The earliest moment an ideal detector spending the false-alarm budget could know
        the fault from this run's events, and how it was found."""
        budget = self.realism.false_alarm_budget
        if fault.kind == "hub_link_break":
            hub = fault.labels["hub_id"]
            volume = self._per_year(self._route_claims(hub))
            if hub in self.realism.batching:  # the evidence is files, not claims
                volume = 365 * DAY / self.realism.batching[hub]
            tail = transit_tail(
                median=self.realism.transit_median, sigma=self.realism.transit_sigma
            )
            # k overdue claims in a row happen by chance with probability (1-q)^k per claim:
            # k is the smallest count that keeps that below the budget at the route's volume.
            k = max(1, math.ceil(math.log(volume / budget) / -math.log(1 - _TAIL_QUANTILE)))
            h = self.hubs.index(hub)
            c = self.claims
            lost = sorted(
                {
                    c.dispatched[i]
                    for i in range(len(c))
                    if c.flags[i] & 1 and c.hub[i] == h and fault.start <= c.dispatched[i]
                }
                if hub in self.realism.batching  # one file is one piece of evidence
                else [
                    c.dispatched[i]
                    for i in range(len(c))
                    if c.flags[i] & 1 and c.hub[i] == h and fault.start <= c.dispatched[i]
                ]
            )
            unit = "file" if hub in self.realism.batching else "claim"
            if len(lost) < k:
                return fault.end, f"fewer than {k} lost claims: not knowable before the end"
            return lost[k - 1] + tail, (
                f"dispatch of lost {unit} {k} (k from a budget of {budget:g}/route-year at "
                f"{volume:,.0f} claims/year) + healthy transit q{_TAIL_QUANTILE} {tail:.0f} s"
            )
        if fault.kind in ("hub_silent", "team_capacity_loss"):
            if fault.kind == "hub_silent":
                share = self._route_claims(fault.labels["hub_id"]) / len(self.claims)
                volume, what = self._per_year(self._route_claims(fault.labels["hub_id"])), "route"
                shift = self.realism.transit_median  # arrivals lag the dispatches that stopped
            else:
                team = fault.labels["team"]
                k = self.teams.index(team)
                mine = sum(1 for x in self.claims.team if x == k)
                volume, what = self._per_year(mine), "team"
                shift = 0.0
            threshold = -math.log(budget / volume)
            expected, t = 0.0, fault.start
            while expected < threshold and t < fault.end:
                if fault.kind == "hub_silent":
                    expected += self._hourly_rate(t) * share / 60
                else:  # completions missing: the staff away, at the handling rate
                    away = self.staff.get(fault.labels["team"], 1) * (
                        1 - fault.params["staff_share"]
                    )
                    expected += away / _HANDLING_MINUTES
                t += MINUTE
            return t + shift, (
                f"expected {what} events in the gap reach -ln(budget/volume) = {threshold:.1f}"
            )
        if fault.kind == "feedback_surge":
            # A scan over windows of 1, 2, 3 and 6 h from the start: in each, the Poisson tail
            # of the client's own negatives (its mean rate in this run) must fall below the
            # budget split over every such window in a quarter; the earliest wins.
            client = fault.labels["client_id"]
            per_second = self.negatives.get(client, 0) / (self.t_end - self.t0)
            times = self._surge_negatives.get(id(fault), [])
            best: tuple[float, str] | None = None
            for window in (HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR):
                mu = per_second * window
                p = budget / (91 * DAY / window) / 4  # and over the four window lengths
                count = math.ceil(mu)
                while _poisson_tail(mu, count) > p:
                    count += 1
                k = max(1, count - math.ceil(mu))
                found = len(times) >= k and times[k - 1] <= fault.start + window
                if found and (best is None or times[k - 1] < best[0]):
                    best = (
                        times[k - 1],
                        (
                            f"extra negative {k} lands within {window / HOUR:.0f} h "
                            f"(Poisson({mu:.1f}) per window, tail {p:.1e})"
                        ),
                    )
            return best or (fault.end, "not enough extra negatives in any window")
        if fault.kind == "inflow_drop":
            window = self.config.detectors.inflow_drop.window
            return fault.start + window, "one inflow window after the start"
        return fault.start, "start (no model)"


def _poisson_tail(mu: float, k: int) -> float:
    """P(X >= k) for X ~ Poisson(mu)."""
    term = math.exp(-mu)
    below = 0.0
    for i in range(k):
        below += term
        term *= mu / (i + 1)
    return max(0.0, 1.0 - below)


class _Spill:
    """Events spilled into one file per simulated day of emit time, then read back one day
    at a time: the external sort that keeps `simulate` flat in memory."""

    def __init__(self, folder: Path, t0: float) -> None:
        self.folder, self.t0 = folder, t0
        self.files: dict[int, TextIO] = {}

    def add(self, key: float, line: str) -> None:
        day = int((key - self.t0) // DAY)
        fh = self.files.get(day)
        if fh is None:
            fh = self.files[day] = (self.folder / f"{day:06d}").open("w", encoding="utf-8")
        fh.write(f"{key!r}\t{line}\n")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()

    def sorted_lines(self) -> Iterator[tuple[float, str]]:
        for day in sorted(self.files):
            path = self.folder / f"{day:06d}"
            rows = []
            with path.open(encoding="utf-8") as fh:
                for row in fh:
                    key, _, line = row.rstrip("\n").partition("\t")
                    rows.append((float(key), line))
            path.unlink()
            rows.sort(key=lambda pair: pair[0])
            yield from rows


def write_scenario(
    sim: Simulator,
    out: Path,
    progress: Callable[[int], None] | None = None,
    stage: Callable[[str], None] | None = None,
    tick: Callable[[int], None] | None = None,
) -> tuple[int, Path]:
    """Streams events as JSON lines to `out` and writes the ground truth beside it. Returns
    the number of events and the truth file's path. `progress(n)` every 10,000 events
    written; `tick(n)` as claims are turned into events."""
    truth_path = out.with_name(out.name + ".truth.json")
    with out.open("w", encoding="utf-8") as fh:
        count = _write_lines(fh, (line for _, line in sim.lines(stage, tick)), progress)
    truth_path.write_text(json.dumps(sim.truth(), indent=2) + "\n", encoding="utf-8")
    return count, truth_path


def _write_lines(fh: TextIO, lines: Iterable[str], progress: Callable[[int], None] | None) -> int:
    n = 0
    for n, line in enumerate(lines, 1):
        fh.write(line)
        fh.write("\n")
        if progress is not None and n % 10000 == 0:
            progress(n)
    return n
