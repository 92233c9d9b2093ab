"""Attack: read claim ids, comments or the detector state over the worker's web port.

A real worker on the embedded broker holds a scenario with known claim ids and survey
comments. Every route its web server serves (enumerated from the aiohttp router of the app
the worker builds) and Faust's own view paths are asked without the token, with a wrong
token and with a foreign Host header: none may return a claim id or a comment. With the
token the same views do show them (so the scan can fail).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import date
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from claimflow.agents import web
from claimflow.agents.app import create_app
from claimflow.config import Config
from claimflow.streams.settings import from_env
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import Worker, wait_until

pytestmark = [pytest.mark.attack, pytest.mark.live]
TOKEN = "s3cret-view-token-0123456789"
FAUST_PATHS = (
    "/",
    "/router/",
    "/table/detector-state/",
    "/table/detector-state/manifest/",
    "/table/detector-state/0%2F0/",
    "/graph/",
    "/stats/",
    "/performance/",
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, config: Config) -> list[bytes]:
    """Ten days with a feedback surge (negative comments), and claims left in transit."""
    out = tmp_path_factory.mktemp("web") / "events.jsonl"
    write_scenario(Simulator(config, "feedback-surge", 10, date(2026, 11, 2), 3, 600), out)
    lines = out.read_bytes().splitlines()
    # Claims dispatched late in the scenario that never arrive: in transit at the scan.
    at = len(lines) * 9 // 10
    when = next(
        json.loads(line)["dispatched_at"] for line in lines[at:] if b'"hub_dispatched"' in line
    )
    hub = config.hubs[0]
    extra = [
        json.dumps(
            {
                "type": "hub_dispatched",
                "event_id": f"d-INTRANSIT-{i}",
                "claim_id": f"INTRANSIT-{i}",
                "client_id": "attack-client",
                "hub_id": hub.id,
                "center_id": hub.centers[0],
                "hub_received_at": when,
                "dispatched_at": when,
            }
        ).encode()
        for i in range(5)
    ]
    lines[at:at] = extra
    return lines


def _secrets(lines: list[bytes]) -> tuple[set[str], set[str]]:
    claims: set[str] = set()
    comments: set[str] = set()
    for line in lines:
        event = json.loads(line)
        if event.get("claim_id"):
            claims.add(event["claim_id"])
        if event.get("comment"):
            comments.add(event["comment"])
    return claims, comments


def _routes() -> list[str]:
    """Every path the worker's web server serves, from the router of the app it builds."""
    app = create_app(from_env({}))
    app.web.init_server()
    return sorted({r.resource.canonical for r in app.web.web_app.router.routes()})


def _get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, str, Any]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace"), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), exc.headers


def _leaks(body: str, claims: set[str], comments: set[str]) -> list[str]:
    found = [c for c in comments if c in body]
    # Claim ids are like "c-000123": look for every id-shaped token in the body.
    found += [token for token in _tokens(body) if token in claims]
    return found


def _tokens(body: str) -> set[str]:
    out: set[str] = set()
    word = []
    for ch in body:
        if ch.isalnum() or ch in "-_":
            word.append(ch)
        else:
            if word:
                out.add("".join(word))
            word = []
    if word:
        out.add("".join(word))
    return out


def _transit_queries(worker: Worker, headers: dict[str, str]) -> list[str]:
    status, body, _ = _get(worker.url + "/it/routes", headers)
    assert status == 200, body
    routes = json.loads(body)["routes"]
    return [f"/it/transit?hub_id={r['hub_id']}&center_id={r['center_id']}" for r in routes]


def _scan(worker: Worker, paths: list[str], headers: dict[str, str]) -> dict[str, list[str]]:
    leaks: dict[str, list[str]] = {}
    for path in paths:
        for method in ("GET", "HEAD", "POST"):
            status, body, _ = _get(worker.url + path, headers, method)
            found = _leaks(body, *worker.secrets)  # type: ignore[attr-defined]
            if found:
                leaks[f"{method} {path} ({status})"] = found[:3]
    return leaks


def _fill(broker: EmbeddedBroker, worker: Worker, lines: list[bytes]) -> None:
    producer = make_producer(broker.bootstrap)
    produce(lines, producer, Topics())
    producer.flush()
    producer.close()
    total = len(lines)

    def applied() -> bool:
        series = worker.metrics()
        events = sum(v for (n, _), v in series.items() if n == "claimflow_events_total")
        rejected = sum(v for (n, _), v in series.items() if n == "claimflow_rejected_events_total")
        return events + rejected >= total * 0.99

    wait_until(applied, 180, "the worker to apply the scenario")


def test_no_route_shows_claim_ids_or_comments_without_the_token(
    broker: EmbeddedBroker, tmp_path: Path, seeded: list[bytes]
) -> None:
    claims, comments = _secrets(seeded)
    assert claims and comments
    worker = Worker(broker.bootstrap, tmp_path, env={"CLAIMFLOW_VIEW_TOKEN": TOKEN}).start()
    worker.secrets = (claims, comments)  # type: ignore[attr-defined]
    try:
        _fill(broker, worker, seeded)
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        routes = _routes()
        assert {"/metrics", "/it/transit", "/api/wall"} <= set(routes)
        # A new route is a view (token or loopback) unless it is listed as public.
        assert set(routes) <= {*web.PUBLIC_ROUTES, *web.VIEW_ROUTES, "/"}
        paths = sorted({*routes, *FAUST_PATHS, *_transit_queries(worker, bearer)})

        # Positive control: with the token, the views show claim ids and comments.
        shown = _scan(worker, paths, bearer)
        assert any("/it/transit" in k for k in shown), shown
        assert any("/api/wall" in k for k in shown), shown

        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Cookie": "claimflow_view=wrong"},
        ):
            assert _scan(worker, paths, headers) == {}, headers
        # Faust's own views are gone (even with the token), the public routes still answer.
        for path in ("/router/", "/table/detector-state/manifest/"):
            assert _get(worker.url + path)[0] == 401
            assert _get(worker.url + path, bearer)[0] == 404
        assert _get(worker.url + "/metrics")[0] == 200
        status, _, headers = _get(worker.url + "/api/wall")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")

        # A wall display logs in once: /wall?token= sets a cookie and redirects to /wall.
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(worker.url + f"/wall?token={TOKEN}", timeout=10) as response:
            assert response.status == 200 and response.url.endswith("/wall")
            assert b"<html" in response.read().lower()
        with opener.open(worker.url + "/api/wall", timeout=10) as response:
            assert any(c in response.read().decode() for c in comments)
    finally:
        worker.stop()


def test_without_a_token_views_answer_only_on_loopback_and_to_loopback_names(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    local = Worker(broker.bootstrap, tmp_path, name="local").start()
    try:
        assert _get(local.url + "/it/routes")[0] in (200, 503)  # 503: no state yet
        # DNS rebinding: a page on attacker.example re-pointed at 127.0.0.1.
        status, body, _ = _get(local.url + "/it/routes", {"Host": "attacker.example:80"})
        assert status == 403 and "not this machine" in body
        assert _get(local.url + "/api/wall", {"Host": "attacker.example"})[0] == 403
    finally:
        local.stop()
    exposed = Worker(
        broker.bootstrap, tmp_path, name="exposed", env={"CLAIMFLOW_WEB_BIND": "0.0.0.0"}
    ).start()
    try:
        for path in ("/it/routes", "/api/wall", "/wall", "/it/breaks"):
            status, body, _ = _get(exposed.url + path)
            assert status == 403 and "CLAIMFLOW_VIEW_TOKEN" in body, (path, body)
        assert _get(exposed.url + "/metrics")[0] == 200
    finally:
        exposed.stop()
