"""The worker's web port: /metrics, health, the wall page, and the IT views of hub links.

The IT views read the detector state, which one worker holds; a request to any other worker
is forwarded to it by Faust's table router (keyed on the snapshot table), so IT can ask any
worker. Claim ids appear here and nowhere in /metrics.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from claimflow.agents.detect import Detector
from claimflow.it_view import (
    MAX_PAGE,
    RouteNotFoundError,
    break_episodes,
    routes_overview,
    transit_page,
)
from claimflow.wall import clients_view, wall_view

LOADING = {"error": "the detector state is loading on this worker; retry in a few seconds"}


def register(app: Any, detector: Detector, registry: CollectorRegistry, table: Any) -> None:
    route = app.table_route(table=table, exact_key="manifest")

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            content_type = CONTENT_TYPE_LATEST.split(";")[0]
            response = self.bytes(generate_latest(registry), content_type=content_type)
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            if app.rebalancing or not app.consumer.assignment():
                return self.json({"ready": False, "why": "joining the consumer group"}, status=503)
            actives = app.assignor.assigned_actives()
            owned = sorted(f"{tp.topic}/{tp.partition}" for tp in actives)
            return self.json(
                {"ready": True, "detector": detector.live is not None, "partitions": owned}
            )

    page = (resources.files("claimflow") / "data" / "wall.html").read_bytes()

    @app.page("/wall")
    class Wall(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(page, content_type="text/html")

    @app.page("/api/wall")
    class WallData(View):
        @route  # type: ignore[untyped-decorator]
        async def get(self, request: Request) -> Response:
            if detector.live is None:
                return self.json(LOADING, status=503)
            return self.json(wall_view(detector.live.engine))

    @app.page("/api/clients")
    class ClientsData(View):
        @route  # type: ignore[untyped-decorator]
        async def get(self, request: Request) -> Response:
            if detector.live is None:
                return self.json(LOADING, status=503)
            return self.json(clients_view(detector.live.engine))

    @app.page("/it/routes")
    class Routes(View):
        @route  # type: ignore[untyped-decorator]
        async def get(self, request: Request) -> Response:
            if detector.live is None:
                return self.json(LOADING, status=503)
            return self.json({"routes": routes_overview(detector.live.engine)})

    @app.page("/it/breaks")
    class Breaks(View):
        @route  # type: ignore[untyped-decorator]
        async def get(self, request: Request) -> Response:
            if detector.live is None:
                return self.json(LOADING, status=503)
            return self.json({"episodes": break_episodes(detector.live.engine)})

    @app.page("/it/transit")
    class Transit(View):
        @route  # type: ignore[untyped-decorator]
        async def get(self, request: Request) -> Response:
            if detector.live is None:
                return self.json(LOADING, status=503)
            query = request.query
            hub, center = query.get("hub_id"), query.get("center_id")
            if not hub or not center:
                return self.json({"error": "give hub_id and center_id"}, status=400)
            try:
                offset = int(query.get("offset", "0"))
                limit = int(query.get("limit", "100"))
                page = transit_page(detector.live.engine, hub, center, offset, limit)
            except ValueError as exc:
                return self.json(
                    {"error": f"{exc} (offset >= 0, 1 <= limit <= {MAX_PAGE})"}, status=400
                )
            except RouteNotFoundError as exc:
                return self.json({"error": str(exc)}, status=404)
            return self.json(page)
