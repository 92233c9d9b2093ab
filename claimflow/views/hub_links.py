"""What IT needs to trace a hub-link break, as JSON-ready data.

Claim ids appear here, behind the worker's web port (issue 3), never in metrics. Everything
is read from engine state at its event time (the watermark), so a replay and the live worker
answer the same.
"""

from __future__ import annotations

from typing import Any

from claimflow.engine import Engine
from claimflow.timeutil import iso

MAX_PAGE = 1000


class RouteNotFoundError(LookupError):
    """No such route."""


def transit_page(
    engine: Engine, hub_id: str, center_id: str, offset: int = 0, limit: int = 100
) -> dict[str, Any]:
    """Claims dispatched on hub -> center and not arrived, oldest dispatch first, one page."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")
    route = (hub_id, center_id)
    if route not in engine.links.routes:
        raise RouteNotFoundError(f"no route {hub_id} -> {center_id}")
    now = engine.watermark
    view = engine.links.read(route, now)
    claims = engine.links.in_transit(route)
    page = claims[offset : offset + limit]
    missing_after = view.missing_after
    return {
        "hub_id": hub_id,
        "center_id": center_id,
        "as_of": iso(now) if now != float("-inf") else None,
        "in_transit": len(claims),
        "missing": view.missing,
        "missing_after_seconds": round(missing_after) if missing_after is not None else None,
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if offset + limit < len(claims) else None,
        "claims": [
            {
                "claim_id": claim_id,
                "client_id": record.client_id,
                "dispatched_at": iso(record.dispatched_at),
                "age_seconds": round(max(0.0, now - record.dispatched_at)),
                "missing": engine.links.is_missing(record, now),
            }
            for claim_id, record in page
        ],
    }


def break_episodes(engine: Engine) -> list[dict[str, Any]]:
    """HubLinkBreak episodes, newest first: start, detection, end, and (while open) the
    current figures, missing claims per client included."""
    out = []
    for episode in reversed(engine.links.episodes):
        hub, center = episode.route
        is_open = episode.end is None
        now = engine.links.read(episode.route, engine.watermark) if is_open else None
        out.append(
            {
                "hub_id": hub,
                "center_id": center,
                "since": iso(episode.since),
                "detected_at": iso(episode.detected),
                "ended_at": iso(episode.end) if episode.end is not None else None,
                "open": is_open,
                "max_missing_claims": episode.max_missing,
                "missing_claims_now": now.missing if now is not None else None,
                "missing_by_client": now.missing_by_client if now is not None else None,
                "written_off": episode.written_off,
                # In the client's terms (engine/impact.py), current while the break is open.
                "impact": engine.impact.route_figures(episode.route) if is_open else None,
                "evidence": list(episode.evidence),
            }
        )
    return out


def routes_overview(engine: Engine) -> list[dict[str, Any]]:
    """Every hub -> center route: claims in transit and missing, link status, last arrival."""
    out = []
    now = engine.watermark
    for route in sorted(engine.links.routes):
        view = engine.links.read(route, now)
        hub, center = route
        out.append(
            {
                "hub_id": hub,
                "center_id": center,
                "link_up": view.link_up,
                "in_transit": view.in_transit,
                "missing": view.missing,
                "last_arrival": iso(view.last_arrival) if view.last_arrival is not None else None,
                "missing_after_seconds": (
                    round(view.missing_after) if view.missing_after is not None else None
                ),
            }
        )
    return out
