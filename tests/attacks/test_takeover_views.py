"""Item 4's view half: during a take-over `/it/routes` answered 500 (the docs promise 503).

Two real workers on the embedded broker; the one holding the detector state is SIGKILLed.
Until the survivor has taken over, its table router still names the dead worker: every view
that reads the detector state must answer 503 with a body that says to retry, never a 500.
"""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from claimflow.config import Config
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import Worker, wait_until

pytestmark = [pytest.mark.attack, pytest.mark.live]
TOKEN = "takeover-view-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _get(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=AUTH)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _active(worker: Worker) -> bool:
    return worker.metrics().get(("claimflow_detector_active", ()), 0) == 1


def test_views_answer_503_not_500_while_the_detector_state_moves(
    broker: EmbeddedBroker, tmp_path: Path, config: Config
) -> None:
    out = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 2, date(2026, 11, 2), 2, 300), out)
    lines = out.read_bytes().splitlines()
    hub = config.hubs[0]
    paths = (
        "/it/routes",
        "/it/breaks",
        f"/it/transit?hub_id={hub.id}&center_id={hub.centers[0]}",
        "/api/wall",
        "/api/clients",
    )
    env = {"CLAIMFLOW_VIEW_TOKEN": TOKEN}
    workers = [Worker(broker.bootstrap, tmp_path, n, env) for n in ("first", "second")]
    try:
        for worker in workers:
            worker.start()
        producer = make_producer(broker.bootstrap)
        produce(lines, producer, Topics())
        producer.flush()
        producer.close()
        owner = wait_until(
            lambda: next((w for w in workers if _active(w)), None), 120, "a detector worker"
        )
        survivor = workers[1] if owner is workers[0] else workers[0]
        wait_until(
            lambda: all(_get(survivor.url + p)[0] == 200 for p in paths),
            120,
            "the views to answer through the survivor (forwarded to the owner)",
        )

        owner.stop(signal.SIGKILL)
        seen: list[tuple[str, int, str]] = []

        def served() -> bool:
            answers = [(p, *_get(survivor.url + p)) for p in paths]
            seen.extend(answers)
            return all(status == 200 for _, status, _ in answers)

        wait_until(served, 180, "the survivor to take over the views", every=0.2)
        statuses = {status for _, status, _ in seen}
        assert statuses <= {200, 503}, [a for a in seen if a[1] not in (200, 503)][:3]
        refused = [json.loads(body) for _, status, body in seen if status == 503]
        assert refused, "no answer came while the state moved: the test saw no take-over"
        assert all("retry in a few seconds" in r["error"] for r in refused), refused[:3]
        status, body = _get(survivor.url + "/it/routes")
        assert status == 200 and json.loads(body)["routes"]
    finally:
        for worker in workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.stop()
