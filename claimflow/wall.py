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
from claimflow.it_view import break_episodes, routes_overview
from claimflow.staffing import report as staffing_report
from claimflow.timeutil import DAY, iso


def wall_view(engine: Engine) -> dict[str, Any]:
    now = engine.watermark
    if now == float("-inf"):
        return {"as_of": None, "teams": [], "routes": [], "alerts": [], "complaints": []}
    zone = ZoneInfo(engine.config.timezone)
    local = datetime.fromtimestamp(now, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    yesterday_midnight = (
        (local - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    )
    inflow = engine.inflow
    advice = staffing_report(engine, engine.roster) if engine.roster is not None else None
    teams = []
    for team in sorted(engine.teams):
        key = ("team", team)
        today = inflow.counts.window_sum(key, midnight, now)
        # Same clock time yesterday (wall clock, so a DST change day compares like for like).
        same_time = yesterday_midnight + (now - midnight)
        yesterday = inflow.counts.window_sum(key, yesterday_midnight, same_time)
        backlog = engine.backlog.by_class(team, now)
        at_risk = engine.backlog.at_risk(team, now)
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
            }
        )
    alerts = [
        {
            "alert": a.alert,
            "labels": a.labels,
            "summary": a.summary,
            "since": a.details.get("since", iso(a.at)),
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
    }


def _team_state(alerts: list[str], at_risk_today: int, overdue: int) -> str:
    if "SlaAtRisk" in alerts or at_risk_today > 0:
        return "at_risk"
    if alerts or overdue > 0:
        return "watch"
    return "ok"
