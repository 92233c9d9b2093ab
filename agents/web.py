"""The worker's web port: /metrics, health, the wall page, and the IT views of hub links.

Two kinds of route (docs/operations.md, "Security: who may see what"):

* **Public**: `/metrics`, `/healthz`, `/readyz`. Counts and labels bounded by the
  configuration (team, hub, client, reason); never a claim id or a comment. Safe to publish
  to Prometheus and a load balancer.
* **Views**: `/wall`, `/api/wall`, `/it/*`. They show claim ids and survey comments, so they
  answer only (a) a request carrying the configured token (`CLAIMFLOW_VIEW_TOKEN`, as
  `Authorization: Bearer <token>` or the cookie the `/wall?token=` login sets; compared in
  constant time), or (b) without a configured token, when the worker listens on a loopback
  address only, and then only to requests whose `Host` names this machine (a web page that
  re-points its own name at 127.0.0.1, DNS rebinding, is refused).

Faust's own views (`/table/...` with the pickled state, `/router/` with worker addresses,
statistics, the graph) are turned off in agents/app.py. The IT views read the detector state,
which one worker holds; a request to any other worker is checked there and forwarded to it by
Faust's table router (keyed on the snapshot table), which checks it again.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import ClientError
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from claimflow.agents.detect import Detector
from claimflow.engine import Engine
from claimflow.views.hub_links import (
    MAX_PAGE,
    RouteNotFoundError,
    break_episodes,
    routes_overview,
    transit_page,
)
from claimflow.views.wall import clients_view, wall_view

LOADING = {"error": "the detector state is loading on this worker; retry in a few seconds"}
# While workers take over (a rebalance, a worker gone), no worker may hold the detector
# state yet, or the one the router names may not answer: 503 with a body that says so,
# never a 500 (issue 14 item 4).
TAKEOVER = {
    "error": "no worker holds the detector state right now (a take-over is in progress); "
    "retry in a few seconds"
}
UNREACHABLE = (
    "the worker holding the detector state did not answer (it may have just stopped; a "
    "take-over follows); retry in a few seconds"
)
PUBLIC_ROUTES = ("/metrics", "/healthz", "/readyz")
VIEW_ROUTES = ("/wall", "/api/wall", "/api/clients", "/it/routes", "/it/breaks", "/it/transit")
COOKIE = "claimflow_view"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def is_loopback(host: str) -> bool:
    """Whether an address (a bind or a host name) is this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ViewGuard:
    """Who may see the views: the decision for one request, with the reason when refused."""

    def __init__(self, token: str | None, bind: str, port: int) -> None:
        self.token = token.encode() if token else None
        self.loopback = is_loopback(bind)
        self.port = port

    def refusal(self, request: Request) -> tuple[int, str] | None:
        """None to serve the request, else (status, why)."""
        if self.token is not None:
            given = _bearer(request.headers.get("Authorization", ""))
            if given is None:
                given = request.cookies.get(COOKIE, "")
            if given and hmac.compare_digest(given.encode(), self.token):
                return None
            return 401, "this view needs the token (Authorization: Bearer <token>)"
        if not self.loopback:
            return 403, (
                "this view shows claim ids and comments: set CLAIMFLOW_VIEW_TOKEN, or bind "
                "the worker to 127.0.0.1 (CLAIMFLOW_WEB_BIND) and use it on that machine"
            )
        host = request.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.lower() not in LOOPBACK_NAMES:
            return 403, f"Host {host!r} is not this machine (loopback names only)"
        return None

    def login(self, request: Request) -> bool:
        """A `?token=` that matches: the caller may get the cookie."""
        given = request.query.get("token", "")
        return bool(self.token and given and hmac.compare_digest(given.encode(), self.token))


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


Handler = Callable[[Any, Request], Awaitable[Response]]
log = logging.getLogger("claimflow.web")


def owned(handler: Handler) -> Handler:
    """Serve a view that reads the detector state, wherever it is (`handler` is wrapped in
    Faust's table router): 503 with a clear body while no worker holds the state or the one
    named does not answer. Errors of the view itself are not hidden."""

    async def get(view: View, request: Request) -> Response:
        try:
            return await handler(view, request)
        except ServiceUnavailable:
            response = view.json(TAKEOVER, status=503)
        except (TimeoutError, ClientError, OSError) as exc:
            log.warning("%s: the state's worker did not answer: %r", request.url.path, exc)
            response = view.json({"error": UNREACHABLE, "detail": type(exc).__name__}, status=503)
        response.headers["Retry-After"] = "5"
        return response

    return get


def guarded(guard: ViewGuard) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        async def get(view: View, request: Request, **kwargs: Any) -> Response:
            refused = guard.refusal(request)
            if refused is not None:
                status, why = refused
                response = view.json({"error": why}, status=status)
                if status == 401:
                    response.headers["WWW-Authenticate"] = 'Bearer realm="claimflow"'
                return response
            response = await handler(view, request)
            response.headers["Cache-Control"] = "no-store"
            return response

        return get

    return wrap


def register(
    app: Any,
    detector: Detector,
    registry: CollectorRegistry,
    not_ready: Callable[[], str | None],
    table: Any,
    token: str | None = None,
    bind: str = "127.0.0.1",
    port: int = 0,
) -> ViewGuard:
    route = app.table_route(table=table, exact_key="manifest")
    guard = ViewGuard(token, bind, port)
    private = guarded(guard)

    @aiohttp_web.middleware
    async def default_deny(request: Any, handler: Any) -> Any:
        # Every path but the public ones (and the wall's login) is a view: a route added
        # later, or a Faust view turned back on, is guarded without anyone remembering to.
        login = request.path == "/wall" and "token" in request.query
        if request.path not in PUBLIC_ROUTES and not login:
            refused = guard.refusal(request)
            if refused is not None:
                status, why = refused
                headers = {"WWW-Authenticate": 'Bearer realm="claimflow"'} if status == 401 else {}
                return aiohttp_web.json_response({"error": why}, status=status, headers=headers)
        return await handler(request)

    app.web.web_app.middlewares.append(default_deny)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # OpenMetrics when the scraper asks for it (Accept), the text format otherwise.
            encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
            response = self.bytes(encoder(registry), content_type=content_type.split(";")[0])
            response.headers["Content-Type"] = content_type
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
            why = not_ready()  # topics missing, or records waiting and no progress
            if why is not None:
                return self.json({"ready": False, "why": why}, status=503)
            actives = app.assignor.assigned_actives()
            partitions = sorted(f"{tp.topic}/{tp.partition}" for tp in actives)
            return self.json(
                {"ready": True, "detector": detector.live is not None, "partitions": partitions}
            )

    page = (resources.files("claimflow") / "data" / "wall.html").read_bytes()

    @app.page("/wall")
    class Wall(View):
        async def get(self, request: Request) -> Response:
            if "token" in request.query:
                return self._login(request)
            return await self._page(request)

        def _login(self, request: Request) -> Response:
            # A wall display opens /wall?token=...: the token moves into a cookie (HttpOnly,
            # this site only) and out of the address bar and the history.
            if not guard.login(request):
                return self.json({"error": "wrong token"}, status=401)
            response = self.text("", status=303)
            response.headers["Location"] = "/wall"
            response.set_cookie(  # type: ignore[attr-defined]
                COOKIE,
                request.query["token"],
                httponly=True,
                samesite="Strict",
                path="/",
                max_age=400 * 86400,
            )
            return response

        @private
        async def _page(self, request: Request) -> Response:
            return self.bytes(page, content_type="text/html")

    def state_view(
        path: str, name: str, render: Callable[[View, Engine, Request], Response]
    ) -> None:
        """A view that reads the detector state: guarded, routed by Faust to the worker that
        holds it, 503 with a clear body while the state loads there or moves (`owned`)."""

        @app.page(path, name=name)
        class StateView(View):
            @private
            async def get(self, request: Request) -> Response:
                response: Response = await owned(type(self)._routed)(self, request)
                return response

            @route  # type: ignore[untyped-decorator]
            async def _routed(self, request: Request) -> Response:
                live = detector.live
                if live is None:
                    return self.json(LOADING, status=503)
                return render(self, live.engine, request)

    def transit(view: View, engine: Engine, request: Request) -> Response:
        query = request.query
        hub, center = query.get("hub_id"), query.get("center_id")
        if not hub or not center:
            return view.json({"error": "give hub_id and center_id"}, status=400)
        try:
            offset = int(query.get("offset", "0"))
            limit = int(query.get("limit", "100"))
            page = transit_page(engine, hub, center, offset, limit)
        except ValueError as exc:
            return view.json(
                {"error": f"{exc} (offset >= 0, 1 <= limit <= {MAX_PAGE})"}, status=400
            )
        except RouteNotFoundError as exc:
            return view.json({"error": str(exc)}, status=404)
        return view.json(page)

    state_view("/api/wall", "WallData", lambda v, engine, _: v.json(wall_view(engine)))
    state_view("/api/clients", "ClientsData", lambda v, engine, _: v.json(clients_view(engine)))
    state_view(
        "/it/routes", "Routes", lambda v, engine, _: v.json({"routes": routes_overview(engine)})
    )
    state_view(
        "/it/breaks", "Breaks", lambda v, engine, _: v.json({"episodes": break_episodes(engine)})
    )
    state_view("/it/transit", "Transit", transit)

    return guard
