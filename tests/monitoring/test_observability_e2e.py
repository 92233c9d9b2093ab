"""End to end, all real: the embedded broker, a worker, Prometheus (Debian package) scraping
it with the project's rules, Alertmanager with the project's routing and inhibition,
delivering to a webhook receiver here. A hub-link break must page on-call; the inflow drop
it causes must be inhibited; every panel query of every board must return data. The worker
runs as a service would: JSON logs, process and build metrics, OpenMetrics when asked, and
`claimflow alerts` reads what it published."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from claimflow.config import Config
from claimflow.dashboards.boards import BOARDS, board_json, panel_queries
from claimflow.tools.broker import EmbeddedBroker, free_port
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live.test_worker import _produce
from tests.live_harness import CLI, Worker, parse_metrics, tool, wait_until

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

ROOT = Path(__file__).resolve().parents[2]
CUT = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)  # mid-break: HubLinkBreak and InflowDrop open
FILL = {
    "team": "international-settlements",
    "client": "victor-agency",
    "hub": "hub-1",
    "job": "claimflow",
    "instance": ".+",
}
# Series that exist only in situations this run does not have: after a refused snapshot,
# with an agreements file of one's own (CLAIMFLOW_CONFIG; this worker runs the bundled one),
# and an open ClientSameDayAtRisk (alert_active has a series only while an alert is open; in
# this break every client's same-day claims can still be done).
ONLY_AFTER_A_FAULT = (
    "claimflow_snapshot_refused_total",
    "claimflow_config_reload_errors_total",
    'alert="ClientSameDayAtRisk"',
)


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append({"path": self.path, **json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", free_port()), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Receiver.received
    server.shutdown()
    server.server_close()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


class _Service:
    def __init__(self, command: list[str], log: Path, ready_url: str) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: self._ready(ready_url), 60, f"{command[0]} ({log})")

    def _ready(self, url: str) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(self.log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _alertmanager(folder: Path, hook: str) -> tuple[_Service, str]:
    config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="2s")
    for receiver in config["receivers"]:
        for webhook in receiver["webhook_configs"]:
            webhook["url"] = hook + urllib.parse.urlparse(webhook["url"]).path
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = _Service(
        [
            tool("prometheus-alertmanager"),
            f"--config.file={path}",
            f"--storage.path={folder / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        folder / "alertmanager.log",
        url + "/-/ready",
    )
    return service, url


def _prometheus(folder: Path, worker: Worker, alertmanager: str) -> tuple[_Service, str]:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy/prometheus/claimflow-rules.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": "claimflow",
                "static_configs": [{"targets": [worker.url.removeprefix("http://")]}],
            }
        ],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = _Service(
        [
            tool("prometheus"),
            f"--config.file={path}",
            f"--storage.tsdb.path={folder / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        folder / "prometheus.log",
        url + "/-/ready",
    )
    return service, url


def _query(prometheus: str, expr: str) -> list[Any]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    answer = _get(url)
    assert answer["status"] == "success", (expr, answer)
    return list(answer["data"]["result"])


def test_hub_break_pages_on_call_inhibits_inflow_drop_and_every_panel_has_data(
    broker: EmbeddedBroker,
    tmp_path: Path,
    config: Config,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    hook, received = receiver
    events = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "hub-break", 10, date(2026, 11, 2), 1, 800), events)
    lines = [
        line
        for line in events.read_bytes().splitlines()
        if _event_time(line) <= CUT  # the feed stops mid-break: the episode stays open
    ]
    worker = Worker(broker.bootstrap, tmp_path, env={"CLAIMFLOW_LOG_FORMAT": "json"}).start()
    services: list[_Service] = []
    try:
        _produce(broker.bootstrap, lines)

        def open_alerts() -> set[str]:
            return {
                dict(labels)["alert"]
                for (name, labels) in worker.metrics()
                if name == "claimflow_alert_active"
            }

        wait_until(
            lambda: {"HubLinkBreak", "InflowDrop"} <= open_alerts(),
            120,
            "the worker to hold HubLinkBreak and InflowDrop open",
        )
        alertmanager, am_url = _alertmanager(tmp_path, hook)
        services.append(alertmanager)
        prometheus, prom_url = _prometheus(tmp_path, worker, am_url)
        services.append(prometheus)

        # On-call gets the hub-link page, with the route in its labels.
        def paged() -> list[dict[str, Any]]:
            return [
                alert
                for message in received
                if message["path"] == "/oncall"
                for alert in message["alerts"]
                if alert["labels"]["alertname"] == "ClaimflowHubLinkBreak"
            ]

        page = wait_until(paged, 90, "the HubLinkBreak page at the receiver")[0]
        assert page["status"] == "firing"
        assert (page["labels"]["hub_id"], page["labels"]["center_id"]) == ("hub-1", "center-1")
        assert page["annotations"]["runbook_url"].endswith("docs/runbooks/hub-link-break.md")

        # The inflow drop fires in Prometheus but Alertmanager holds it back.
        firing = {
            a["labels"]["alertname"]
            for a in _get(prom_url + "/api/v1/alerts")["data"]["alerts"]
            if a["state"] == "firing"
        }
        assert "ClaimflowInflowDrop" in firing
        inhibited = wait_until(
            lambda: [
                a
                for a in _get(am_url + "/api/v2/alerts")
                if a["labels"]["alertname"] == "ClaimflowInflowDrop"
                and a["status"]["state"] == "suppressed"
                and a["status"]["inhibitedBy"]
            ],
            30,
            "Alertmanager to hold ClaimflowInflowDrop as inhibited",
        )
        assert inhibited
        delivered = {
            alert["labels"]["alertname"] for message in received for alert in message["alerts"]
        }
        assert "ClaimflowInflowDrop" not in delivered

        # Every panel query of every board, variables filled in, returns data.
        queries = [
            (name, title, _fill(expr))
            for name, make in BOARDS.items()
            for title, expr in panel_queries(board_json(make()))
        ]
        assert len(queries) >= 20

        def empty() -> list[tuple[str, str, str]]:
            return [
                q
                for q in queries
                if not any(m in q[2] for m in ONLY_AFTER_A_FAULT) and not _query(prom_url, q[2])
            ]

        try:
            wait_until(lambda: not empty(), 60, "every panel to have data")
        except AssertionError:
            pytest.fail(f"panels without data (board, panel, query): {empty()}")

        _check_service_metrics(worker)
        _check_alerts_command(broker.bootstrap)
    finally:
        for service in reversed(services):
            service.stop()
        worker.stop()
    _check_json_logs(worker.log)


def _check_service_metrics(worker: Worker) -> None:
    """Process, Python and build metrics, promtool-clean; OpenMetrics when asked for."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read()
    names = {name for name, _ in parse_metrics(text.decode())}
    assert {
        "claimflow_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "python_info",
        "python_gc_collections_total",
    } <= names
    build = [
        dict(labels)
        for name, labels in parse_metrics(text.decode())
        if name == "claimflow_build_info"
    ]
    assert build[0]["version"] and build[0]["python_version"]
    done = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    request = urllib.request.Request(
        worker.url + "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        body = response.read().decode()
    assert body.endswith("# EOF\n") and "claimflow_build_info{" in body


def _check_alerts_command(bootstrap: str) -> None:
    """`claimflow alerts` shows what the worker published, as JSON lines and as a table."""
    base = [*CLI, "alerts", "--bootstrap", bootstrap]
    done = subprocess.run(
        [*base, "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(
        a["alert"] == "HubLinkBreak" and a["state"] == "firing" and a["labels"]["hub_id"] == "hub-1"
        for a in alerts
    ), alerts
    table = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False)
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("AT") and "HubLinkBreak" in table.stdout
    later = subprocess.run(
        [*base, "--json", "--since", "2999-01-01T00:00:00+00:00"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert later.returncode == 0 and later.stdout == "", later.stderr
    # --since is event time: the break opened at 01:30 on the replayed day.
    since = [*base, "--json", "--since", "2026-11-10T02:00:00+00:00"]
    done = subprocess.run(since, capture_output=True, text=True, timeout=60, check=False)
    after = [json.loads(line) for line in done.stdout.splitlines()]
    assert after and all(a["at"] >= "2026-11-10T02:00:00" for a in after), after
    assert not any(a["alert"] == "HubLinkBreak" and a["state"] == "firing" for a in after)


def _check_json_logs(log: Path) -> None:
    """CLAIMFLOW_LOG_FORMAT=json: every line one JSON object, no terminal escape codes."""
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, f"{log} is empty"
    assert "\x1b" not in log.read_text()
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["message"].startswith("claimflow worker") for e in entries)


def _fill(expr: str) -> str:
    return re.sub(r"\$(\w+)", lambda m: FILL[m.group(1)], expr)


def _event_time(line: bytes) -> datetime:
    event = json.loads(line)
    field = next(k for k in event if k.endswith("_at") and k != "hub_received_at")
    return datetime.fromisoformat(event[field])
