"""What the wall page shows, as JSON-ready data read from engine state.

The morning whiteboard, kept current: per team the inflow so far today against the same
time yesterday, the backlog, the claims projected to miss today's deadline; per hub link its
status and, when broken, since when and how many claims are missing; the open alerts; the
latest negative survey comments (for managers: they never go into metrics); with a staffing
roster, who could help a team at risk, who can go back, and capacity for the next day.
Everything is at the engine's event time, so the page tells the same story in a demo played
fast.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from claimflow.engine import Engine
from claimflow.staffing.advice import report as staffing_report
from claimflow.staffing.advice import roster_of
from claimflow.timeutil import DAY, iso
from claimflow.views.hub_links import break_episodes, routes_overview


class _Clock:
    """Instants as the center's local clock time (the day only when not today) and spans as
    durations: the page never shows raw ISO, and names the zone once."""

    def __init__(self, zone: ZoneInfo, now: float) -> None:
        self.zone = zone
        self.today = datetime.fromtimestamp(now, zone).date()
        self.now = now

    def at(self, epoch: float | None) -> str | None:
        if epoch is None:
            return None
        local = datetime.fromtimestamp(epoch, self.zone)
        if local.date() == self.today:
            return local.strftime("%H:%M")
        return local.strftime("%a %H:%M")

    def at_iso(self, text: str | None) -> str | None:
        return self.at(datetime.fromisoformat(text).timestamp()) if text else None

    def since(self, epoch: float | None) -> str | None:
        if epoch is None:
            return None
        minutes = max(0, round((self.now - epoch) / 60))
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def clients_view(engine: Engine) -> dict[str, Any]:
    """Per client, for the account manager: claims delayed by a break, same-day claims due
    today still open (and how many of them stuck), projected to miss, and when they are
    projected to be done at the current pace (engine/impact.py)."""
    now = engine.watermark
    if now == float("-inf"):
        return {"as_of": None, "clients": []}
    clock = _Clock(ZoneInfo(engine.config.timezone), now)
    out = []
    for row in engine.impact.clients_view(now):
        out.append(
            {
                **row,
                "deadline_local": clock.at_iso(row["deadline"]),
                "projected_done_local": clock.at_iso(row["projected_done"]),
            }
        )
    return {"as_of": iso(now), "timezone": engine.config.timezone, "clients": out}


def _alert_text(engine: Engine, alert: Any, clock: _Clock) -> str:
    """The alert with today's figures, not those it fired with."""
    d = alert.details
    if alert.alert == "HubLinkBreak":
        route = (alert.labels["hub_id"], alert.labels["center_id"])
        figures = engine.impact.route_figures(route)
        missing = engine.links.read(route, engine.watermark).missing
        text = f"{route[0]} → {route[1]}: {missing} claims missing"
        if figures["same_day_today"]:
            text += f", {figures['same_day_today']} of them same-day due today"
            text += f" (first due {clock.at_iso(figures['earliest_due'])})"
        return text
    if alert.alert == "SlaAtRisk":
        team = alert.labels["team"]
        due = datetime.fromisoformat(alert.labels["deadline"]).timestamp()
        p = engine.backlog.read(team, engine.watermark).projections.get(due)
        if p is not None:
            return f"{team}: {p.misses} of {p.due} claims due {clock.at(due)} projected to miss"
    if alert.alert == "ClientSameDayAtRisk":
        return (
            f"{d.get('client_id')}: {d.get('same_day_at_risk')} of {d.get('same_day_open')} "
            f"same-day claims projected to miss; done about "
            f"{clock.at_iso(d.get('projected_done')) or '–'}"
        )
    return str(alert.summary)


def wall_view(engine: Engine) -> dict[str, Any]:
    now = engine.watermark
    if now == float("-inf"):
        return {
            "as_of": None,
            "teams": [],
            "routes": [],
            "alerts": [],
            "complaints": [],
            "clients": [],
        }
    zone = ZoneInfo(engine.config.timezone)
    clock = _Clock(zone, now)
    local = datetime.fromtimestamp(now, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    yesterday_midnight = (
        (local - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    )
    inflow = engine.inflow
    roster = roster_of(engine)
    advice = staffing_report(engine, roster) if roster is not None else None
    teams = []
    for team in sorted(engine.teams):
        key = ("team", team)
        today = inflow.counts.window_sum(key, midnight, now)
        # Same clock time yesterday (wall clock, so a DST change day compares like for like).
        same_time = yesterday_midnight + (now - midnight)
        yesterday = inflow.counts.window_sum(key, yesterday_midnight, same_time)
        view = engine.backlog.read(team, now)
        backlog = view.by_class
        at_risk = {k: v[1] for k, v in view.outlook.items()}
        names: list[str] = sorted(
            a.alert for a in engine.book.open.values() if a.labels.get("team") == team
        )
        teams.append(
            {
                "team": team,
                "inflow_today": today,
                "inflow_yesterday_same_time": yesterday,
                "inflow_ratio": round(today / yesterday, 2) if yesterday else None,
                "backlog": sum(backlog.values()),
                "overdue": backlog["overdue"],
                "at_risk_today": at_risk["due_today"],
                "at_risk_later": at_risk["due_later"],
                "alerts": names,
                "state": _team_state(names, at_risk["due_today"], backlog["overdue"]),
                "staffing": advice.for_team(team) if advice is not None else None,
                "stuck_expected": round(view.stuck_expected),
                "if_link_returns": _what_if(engine.impact.scenarios.get(team), clock),
            }
        )
    episodes = {(e["hub_id"], e["center_id"]): e for e in break_episodes(engine) if e["open"]}
    routes = []
    for route in routes_overview(engine):
        episode = episodes.get((route["hub_id"], route["center_id"]))
        routes.append(
            {
                **route,
                "state": "broken" if not route["link_up"] else "ok",
                "broken_since": episode["since"] if episode else None,
                "missing_claims": episode["missing_claims_now"] if episode else route["missing"],
                **_route_impact(engine, route, episode, clock),
            }
        )
    alerts = [
        {
            "alert": a.alert,
            "labels": a.labels,
            "summary": a.summary,
            "since": a.details.get("since", iso(a.at)),
            "text": _alert_text(engine, a, clock),
            "since_local": clock.at_iso(a.details.get("since")) or clock.at(a.at),
        }
        for a in sorted(engine.book.open.values(), key=lambda a: a.at)
    ]
    complaints = [
        {
            "at": iso(c.at),
            "client_id": c.client_id,
            "team": c.team,
            "score": c.score,
            "comment": c.comment,
            "at_local": clock.at(c.at),
        }
        for c in reversed(engine.recent_complaints)
        if now - c.at <= DAY
    ]
    return {
        "as_of": iso(now),
        "as_of_local": local.strftime("%a %d %b %H:%M"),
        "timezone": engine.config.timezone,
        "teams": teams,
        "routes": routes,
        "alerts": alerts,
        "complaints": complaints,
        "clients": clients_view(engine)["clients"],
    }


def _route_impact(
    engine: Engine, route: dict[str, Any], episode: dict[str, Any] | None, clock: _Clock
) -> dict[str, Any]:
    if episode is None:
        return {
            "same_day_claims": 0,
            "broken_since_local": None,
            "broken_for": None,
            "clients": [],
            "last_arrival_local": clock.at_iso(route["last_arrival"]),
        }
    figures = engine.impact.route_figures((route["hub_id"], route["center_id"]))
    since = datetime.fromisoformat(episode["since"]).timestamp()
    return {
        "same_day_claims": figures["same_day_today"],
        "earliest_due_local": clock.at_iso(figures["earliest_due"]),
        "broken_since_local": clock.at(since),
        "broken_for": clock.since(since),
        "clients": [
            {
                "client_id": client,
                "missing": v["missing"],
                "same_day_today": v["same_day_today"],
                "earliest_due_local": clock.at_iso(v["earliest_due"]),
            }
            for client, v in figures["clients"].items()
        ],
        "last_arrival_local": clock.at_iso(route["last_arrival"]),
    }


def _what_if(scenarios: dict[str, Any] | None, clock: _Clock) -> dict[str, Any] | None:
    if not scenarios:
        return None
    return {
        "deadline_local": clock.at_iso(scenarios["deadline"]),
        "due": scenarios["due"],
        "stuck": scenarios["stuck"],
        "latest_return_local": clock.at_iso(scenarios["latest_return"]),
        "scenarios": [{**s, "back_local": clock.at_iso(s["back"])} for s in scenarios["scenarios"]],
    }


def _team_state(alerts: list[str], at_risk_today: int, overdue: int) -> str:
    if "SlaAtRisk" in alerts or at_risk_today > 0:
        return "at_risk"
    if alerts or overdue > 0:
        return "watch"
    return "ok"
