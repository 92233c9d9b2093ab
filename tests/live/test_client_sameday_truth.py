"""Same-day counts per client against a truth computed here from the generated events alone.

Issue 13's acceptance: "Same-day counts per client equal the truth computed independently from
the generated events, in replay and in the live worker". The truth below is its own small
code over the wire fields (CONTRACT.md) and the agreement configuration: it does not call
claimflow/deadlines.py nor claimflow/engine/impact.py. Two inputs come from the engine's
judgement and are taken from it on purpose, because they are what the figures are relative
to and are tested elsewhere (tests/engine/test_hublink.py): which routes are broken at the moment,
and the age after which a claim on a route counts as missing (learned from its transit
times). The test asserts that the route claimflow holds broken is the injected one while the
break is on, so the comparison cannot pass on empty figures.

The scenario: the bundled configuration plus a client on the other side of the date line
(Tokyo, cutoff 09:30, due 15:00, business days Tuesday to Saturday) and a public holiday of
the configuration's own on a Wednesday; a night break of hub-1 (01:00-10:00 on a Monday,
15% delivered). Clients with four different agreements send over the broken hub. Moments:
the holiday and the day after it (claims received on a holiday are due the next business
day and are not same-day), a Saturday (a business day for the Tokyo client only, with the
teams off), and the Monday before, during and after the break.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from claimflow.config import Config, load_config
from claimflow.contract.events import decode
from claimflow.contract.rejections import Rejection
from claimflow.engine import Engine
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.simulate import Fault, Simulator
from claimflow.views.hub_links import break_episodes
from claimflow.views.wall import clients_view, wall_view
from tests.live.test_worker import _caught_up, _produce, _published
from tests.live_harness import Worker, engine_series, reference, reference_series, wait_until

ROOT = Path(__file__).resolve().parents[2]
START = date(2026, 11, 2)  # a Monday
DAYS = 9
HOLIDAY = date(2026, 11, 4)  # a Wednesday, the configuration's own holiday
ROUTE = ("hub-1", "center-1")
LONDON = ZoneInfo("Europe/London")
TIME_FIELD = {
    "hub_dispatched": "dispatched_at",
    "claim_arrived": "arrived_at",
    "claim_completed": "completed_at",
    "survey_response": "responded_at",
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _at(day: date, hour: float) -> float:
    """Epoch seconds of a London wall-clock time (the center's zone)."""
    midnight = datetime.combine(day, time(0), LONDON)
    return (midnight + timedelta(hours=hour)).timestamp()


BREAK = (_at(date(2026, 11, 9), 1.0), _at(date(2026, 11, 9), 10.0))
# Moments on the quarter hour (the client view is evaluated every 15 min of event time).
MOMENTS = [
    _at(HOLIDAY, 14.0),
    _at(date(2026, 11, 5), 10.0),
    _at(date(2026, 11, 6), 17.0),
    _at(date(2026, 11, 7), 7.0),
    _at(date(2026, 11, 9), 0.5),
    _at(date(2026, 11, 9), 3.0),
    _at(date(2026, 11, 9), 7.0),
    _at(date(2026, 11, 9), 9.75),
    _at(date(2026, 11, 9), 11.0),
    _at(date(2026, 11, 9), 14.0),
]


def _config_text() -> str:
    data = yaml.safe_load((ROOT / "claimflow/data/claimflow.yaml").read_text())
    data["holidays"]["dates"] = [HOLIDAY.isoformat()]
    data["clients"].append(
        {
            "id": "tokyo-desk",
            "timezone": "Asia/Tokyo",
            "same_day_cutoff": "09:30",
            "due": "15:00",
            "business_days": ["tue", "wed", "thu", "fri", "sat"],
        }
    )
    return yaml.safe_dump(data)


@dataclass
class Scenario:
    config: Config
    config_path: Path
    lines: list[bytes]  # in emit order, as a transport would deliver them
    events: list[tuple[float, dict[str, Any]]]  # (event time, event), in event-time order


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    folder = tmp_path_factory.mktemp("sameday")
    path = folder / "claimflow.yaml"
    path.write_text(_config_text())
    config = load_config(path)
    fault = Fault(
        "hub_link_break",
        BREAK[0],
        BREAK[1],
        {"hub_id": ROUTE[0], "center_id": ROUTE[1]},
        "HubLinkBreak",
        ["InflowDrop", "SlaAtRisk", "NegativeFeedbackSurge", "ClientSameDayAtRisk"],
        {"loss": 0.85},
    )
    sim = Simulator(config, "hub-break", DAYS, START, seed=5, claims_per_day=1500, faults=[fault])
    lines = [line.encode() for _, line in sim.lines()]
    events = sorted(((_event_time(e), e) for e in map(json.loads, lines)), key=lambda pair: pair[0])
    return Scenario(config, path, lines, events)


def _event_time(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event[TIME_FIELD[event["type"]]]).timestamp()


# --- the truth, from the events and the agreements -----------------------------------------


@dataclass(frozen=True)
class Agreement:
    zone: ZoneInfo
    cutoff: time
    due: time
    days: frozenset[int]
    holidays: frozenset[date]

    def business(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def due_at(self, received: float) -> tuple[float, bool]:
        """(due instant, same-day entitled) per CONTRACT.md: reached the hub by the cutoff
        (local time) on a business day: due at `due` that day; else at `due` on the next
        business day."""
        local = datetime.fromtimestamp(received, self.zone)
        if self.business(local.date()) and local.time() <= self.cutoff:
            return datetime.combine(local.date(), self.due, self.zone).timestamp(), True
        day = local.date() + timedelta(days=1)
        while not self.business(day):
            day += timedelta(days=1)
        return datetime.combine(day, self.due, self.zone).timestamp(), False


def _agreements(path: Path, config: Config) -> dict[str, Agreement]:
    """Each configured client's agreement, read from the YAML text (defaults filled in)."""
    raw = yaml.safe_load(path.read_text())
    defaults = raw["defaults"]
    holidays = frozenset(config.holidays)  # the package's public holidays + own dates
    assert HOLIDAY in holidays

    def clock(text: str) -> time:
        return time.fromisoformat(text)

    out = {}
    for client in raw["clients"]:
        days = client.get("business_days", defaults["business_days"])
        out[client["id"]] = Agreement(
            ZoneInfo(client.get("timezone", raw["timezone"])),
            clock(client.get("same_day_cutoff", defaults["same_day_cutoff"])),
            clock(client.get("due", defaults["due"])),
            frozenset(WEEKDAYS.index(d) for d in days),
            holidays,
        )
    return out


@dataclass
class Truth:
    """Per client: same-day claims due today that are open (arrived and not completed, or
    stuck), stuck (behind a broken route, not arrived), all claims stuck (delayed); per
    broken route and client: stuck, missing, missing same-day due today, earliest due."""

    open: dict[str, int] = field(default_factory=dict)
    stuck: dict[str, int] = field(default_factory=dict)
    delayed: dict[str, int] = field(default_factory=dict)
    deadline: dict[str, float] = field(default_factory=dict)
    routes: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)


def truth_at(
    events: list[tuple[float, dict[str, Any]]],
    agreements: dict[str, Agreement],
    now: float,
    broken: dict[tuple[str, str], float],
) -> Truth:
    """The figures at evaluation tick `now` (it sees every event before `now`). `broken`:
    route -> the age after which a claim on it counts as missing."""
    dispatched: dict[str, dict[str, Any]] = {}
    arrived: dict[str, dict[str, Any]] = {}
    completed: set[str] = set()
    for t, e in events:
        if t >= now:
            break
        kind = e["type"]
        if kind == "hub_dispatched":
            dispatched.setdefault(e["claim_id"], e)
        elif kind == "claim_arrived":
            arrived.setdefault(e["claim_id"], e)
        elif kind == "claim_completed":
            completed.add(e["claim_id"])
    today = datetime.fromtimestamp(now, LONDON).date()
    out = Truth()

    def client_of(e: dict[str, Any]) -> str:
        return e["client_id"] if e["client_id"] in agreements else "other"

    def same_day_today(e: dict[str, Any]) -> tuple[bool, float]:
        agreement = agreements.get(e["client_id"])
        assert agreement is not None, e  # the simulator sends configured clients only
        due, same_day = agreement.due_at(datetime.fromisoformat(e["hub_received_at"]).timestamp())
        return same_day and datetime.fromtimestamp(due, LONDON).date() == today, due

    def add(table: dict[str, int], client: str) -> None:
        table[client] = table.get(client, 0) + 1

    for claim, e in arrived.items():
        if claim in completed:
            continue
        counts, due = same_day_today(e)
        if counts:
            client = client_of(e)
            add(out.open, client)
            out.deadline[client] = min(out.deadline.get(client, due), due)
    for route, missing_after in broken.items():
        per: dict[str, dict[str, Any]] = {}
        for claim, e in dispatched.items():
            if (e["hub_id"], e["center_id"]) != route or claim in arrived or claim in completed:
                continue
            client = client_of(e)
            figures = per.setdefault(
                client, {"in_transit": 0, "missing": 0, "same_day_today": 0, "earliest_due": None}
            )
            figures["in_transit"] += 1
            add(out.delayed, client)
            counts, due = same_day_today(e)
            if counts:
                add(out.stuck, client)
                add(out.open, client)
                out.deadline[client] = min(out.deadline.get(client, due), due)
            if datetime.fromisoformat(e["dispatched_at"]).timestamp() <= now - missing_after:
                figures["missing"] += 1
                if counts:
                    figures["same_day_today"] += 1
                    first = figures["earliest_due"]
                    figures["earliest_due"] = due if first is None else min(first, due)
        for figures in per.values():
            due = figures["earliest_due"]
            figures["earliest_due"] = iso(due) if due is not None else None
        out.routes[route] = per
    return out


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


# --- claimflow's figures ------------------------------------------------------------------


def clients_table(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """client -> (same-day open, same-day stuck, delayed by a break), non-zero rows only."""
    table = {
        r["client_id"]: (r["same_day_open"], r["same_day_stuck"], r["delayed_by_break"])
        for r in rows
    }
    return {c: v for c, v in table.items() if any(v)}


def truth_table(truth: Truth) -> dict[str, tuple[int, int, int]]:
    clients = set(truth.open) | set(truth.stuck) | set(truth.delayed)
    return {
        c: (truth.open.get(c, 0), truth.stuck.get(c, 0), truth.delayed.get(c, 0))
        for c in sorted(clients)
    }


def routes_table(
    routes: dict[tuple[str, str], dict[str, dict[str, Any]]],
) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    return {
        route: {
            c: {k: v[k] for k in ("in_transit", "missing", "same_day_today", "earliest_due")}
            for c, v in per.items()
        }
        for route, per in routes.items()
    }


def _metric_figures(series: dict[Any, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(client -> (open, stuck)), ((client, hub, center) -> delayed / same-day missing),
    non-zero values only, from the exposition."""
    same_day: dict[str, dict[str, int]] = {}
    routes: dict[str, dict[str, int]] = {}
    for (name, labels), value in series.items():
        lab = dict(labels)
        if not value:
            continue
        if name == "claimflow_client_same_day_claims" and lab["state"] in ("open", "stuck"):
            same_day.setdefault(lab["client_id"], {})[lab["state"]] = int(value)
        elif name == "claimflow_client_delayed_claims":
            key = f"{lab['client_id']}@{lab['hub_id']}/{lab['center_id']}"
            routes.setdefault(key, {})["in_transit"] = int(value)
        elif name == "claimflow_break_same_day_claims":
            key = f"{lab['client_id']}@{lab['hub_id']}/{lab['center_id']}"
            routes.setdefault(key, {})["same_day_today"] = int(value)
    return same_day, routes


def _truth_metrics(truth: Truth) -> tuple[dict[str, Any], dict[str, Any]]:
    same_day: dict[str, dict[str, int]] = {}
    for client, n in truth.open.items():
        same_day.setdefault(client, {})["open"] = n
    for client, n in truth.stuck.items():
        same_day.setdefault(client, {})["stuck"] = n
    routes: dict[str, dict[str, int]] = {}
    for (hub, center), per in truth.routes.items():
        for client, v in per.items():
            got = {k: v[k] for k in ("in_transit", "same_day_today") if v[k]}
            if got:
                routes[f"{client}@{hub}/{center}"] = got
    return same_day, routes


def _replay_to(engine: Engine, events: Iterator[tuple[float, dict[str, Any]]], now: float) -> None:
    """Feed the events before `now`, then move event time to `now` (the tick is judged)."""
    for t, e in events:
        if t >= now:
            raise AssertionError("the caller slices the events")
        decoded = decode(json.dumps(e))
        assert not isinstance(decoded, Rejection), decoded
        engine.ingest(decoded)
    engine.advance_to(now)


def _broken(engine: Engine) -> dict[tuple[str, str], float]:
    out = {}
    for route in sorted(engine.links.routes):
        if engine.links.status(route):
            age = engine.links.missing_after(route)
            assert age is not None, route
            out[route] = age
    return out


def _in_break(now: float) -> bool:
    return BREAK[0] + 1800 <= now <= BREAK[1]


def check_views(
    truth: Truth,
    clients: list[dict[str, Any]],
    episodes: list[dict[str, Any]],
    wall: dict[str, Any],
    series: dict[Any, float],
    at: str,
) -> None:
    """Every place claimflow shows the figures (what /api/clients, /it/breaks, /api/wall and
    /metrics serve) against the truth."""
    assert clients_table(clients) == truth_table(truth), at
    deadlines = {r["client_id"]: r["deadline"] for r in clients if r["deadline"]}
    assert deadlines == {c: iso(d) for c, d in truth.deadline.items()}, at
    assert clients_table(wall["clients"]) == truth_table(truth), at
    impact = {(e["hub_id"], e["center_id"]): e["impact"] for e in episodes if e["open"]}
    assert set(impact) == set(truth.routes), at
    assert routes_table({r: v["clients"] for r, v in impact.items()}) == truth.routes, at
    for route, per in truth.routes.items():
        figures = impact[route]
        assert figures["missing"] == sum(v["missing"] for v in per.values()), at
        assert figures["same_day_today"] == sum(v["same_day_today"] for v in per.values()), at
        dues = [v["earliest_due"] for v in per.values() if v["earliest_due"]]
        assert figures["earliest_due"] == (min(dues) if dues else None), at
    for row in wall["routes"]:
        per = truth.routes.get((row["hub_id"], row["center_id"]), {})
        assert row["same_day_claims"] == sum(v["same_day_today"] for v in per.values()), at
        shown = {c["client_id"]: (c["missing"], c["same_day_today"]) for c in row["clients"]}
        assert shown == {c: (v["missing"], v["same_day_today"]) for c, v in per.items()}, at
    assert _metric_figures(series) == _truth_metrics(truth), at


@pytest.mark.slow
def test_same_day_counts_per_client_equal_the_truth_in_replay(scenario: Scenario) -> None:
    """One engine over the events in event-time order, stopped at each moment."""
    agreements = _agreements(scenario.config_path, scenario.config)
    engine = Engine(scenario.config)
    events = scenario.events
    i = 0
    seen_clients: set[str] = set()
    seen_stuck = 0
    for now in MOMENTS:
        j = i
        while j < len(events) and events[j][0] < now:
            j += 1
        _replay_to(engine, iter(events[i:j]), now)
        i = j
        broken = _broken(engine)
        if _in_break(now):
            assert list(broken) == [ROUTE], (iso(now), broken)
        truth = truth_at(events, agreements, now, broken)
        at = datetime.fromtimestamp(now, LONDON).strftime("%a %d %H:%M")
        check_views(
            truth,
            clients_view(engine)["clients"],
            break_episodes(engine),
            wall_view(engine),
            reference_series(engine),
            at,
        )
        seen_clients |= {c for c, n in truth.open.items() if n}
        seen_stuck += sum(truth.stuck.values())
        print(at, truth_table(truth))
    # The comparison covered what it is about: several agreements with same-day claims,
    # claims stuck behind the break.
    assert {"victor-agency", "northwind-mutual", "tokyo-desk"} <= seen_clients
    assert seen_stuck > 100


# Fewer moments live (each waits for the worker): the holiday's next day, the Saturday, and
# the Monday before, during and after the break.
LIVE_MOMENTS = [MOMENTS[1], MOMENTS[3], MOMENTS[5], MOMENTS[6], MOMENTS[7], MOMENTS[8]]


def _carried(times: list[float], wanted: float, lateness: float, window: float) -> float:
    """The first quarter hour from `wanted` on past which an event carries event time without
    reaching the next projection: at night and at weekends minutes pass without events."""
    now = wanted
    while now < wanted + 6 * 3600:
        if any(now + lateness <= t < now + lateness + window - 1 for t in times):
            return now
        now += 900
    raise AssertionError(f"no event after {iso(wanted)} within 6 h")


@pytest.mark.live
def test_same_day_counts_per_client_equal_the_truth_in_the_live_worker(
    broker: EmbeddedBroker, tmp_path: Path, scenario: Scenario
) -> None:
    """A real worker on the embedded broker, fed the scenario up to just past each moment;
    the figures are read from its web port. Event time reaches a moment's tick only once an
    event `allowed_lateness` later has arrived, so each step sends the events up to just
    short of the next projection (every `window`): the worker has then judged the moment
    and nothing after it."""
    config = scenario.config
    agreements = _agreements(scenario.config_path, config)
    lateness, window = config.engine.allowed_lateness, config.engine.window
    timed = [(_event_time(json.loads(line)), line) for line in scenario.lines]
    times = [t for t, _ in scenario.events]
    worker = Worker(
        broker.bootstrap, tmp_path, env={"CLAIMFLOW_CONFIG": str(scenario.config_path)}
    ).start()
    sent = 0.0  # every event before this event time has been sent, in emit order
    try:
        for wanted in LIVE_MOMENTS:
            now = _carried(times, wanted, lateness, window)
            cut = now + lateness + window - 1
            _produce(broker.bootstrap, [line for t, line in timed if sent <= t < cut])
            sent = cut
            engine, alerts = reference(config, [line for t, line in timed if t < cut])
            assert now <= engine.watermark < now + window, "no event to carry time past it"
            expected = reference_series(engine)
            wait_until(
                lambda expected=expected: _caught_up(worker.metrics(), expected),
                120,
                "the worker to apply the events",
            )
            at = datetime.fromtimestamp(now, LONDON).strftime("%a %d %H:%M")
            # The same state as the in-process run of the same events (the route figures of a
            # break used to depend on how the worker batched its input).
            assert engine_series(worker.metrics()) == expected, at
            # Which routes are broken at the moment, and after what age a claim counts
            # missing: claimflow's judgement at the tick, from an engine stopped there.
            at_tick = Engine(config)
            _replay_to(at_tick, iter([e for e in scenario.events if e[0] < now]), now)
            broken = _broken(at_tick)
            if _in_break(now):
                assert list(broken) == [ROUTE]
            truth = truth_at(scenario.events, agreements, now, broken)
            check_views(
                truth,
                worker.get("/api/clients")[1]["clients"],
                worker.get("/it/breaks")[1]["episodes"],
                worker.get("/api/wall")[1],
                worker.metrics(),
                at,
            )
            print(at, truth_table(truth))
        # Published as replay publishes them, figures at firing included.
        assert _published(broker.bootstrap, alerts) == [a.to_dict() for a in alerts]
        assert any(a.alert == "HubLinkBreak" for a in alerts)
    finally:
        worker.stop()
