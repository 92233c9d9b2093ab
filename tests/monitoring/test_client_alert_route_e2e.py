"""The Alertmanager route by client, end to end and all real, as the hub-break page is in
tests/monitoring/test_observability_e2e.py (whose Prometheus, Alertmanager and webhook receiver this
reuses): a worker on the embedded broker holds `ClientSameDayAtRisk` open for two clients,
Prometheus scrapes it and evaluates the shipped rules, Alertmanager routes with the shipped
configuration (receiver URLs pointed at the receiver here).

The situation: a team at a fraction of its staff (the simulator's `team-capacity-loss`) puts
two clients' same-day claims at risk, while a hub-link break of the other hub is open. The
shipped routing must give each client's account manager a notification of its own (grouped
by `client_id`), tell neither on-call nor operations about it, page on-call for the break,
and leave the team's SlaAtRisk (a warning) to operations.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from claimflow.config import Config
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.simulate import Fault, Simulator, write_scenario
from tests.live.test_worker import _produce
from tests.live_harness import Worker, wait_until
from tests.monitoring.test_observability_e2e import (  # noqa: F401 (receiver: a fixture)
    _alertmanager,
    _event_time,
    _get,
    _prometheus,
    _Service,
    receiver,
)

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

CUT = datetime(2026, 11, 10, 16, 0, tzinfo=UTC)  # the feed stops with the alerts open
AT_RISK = {"victor-agency", "northwind-mutual"}


def _scenario(config: Config, out: Path) -> None:
    """`team-capacity-loss` (motor at a fraction of its staff from 08:00 on the 9th day),
    plus hub-2 broken from 13:00 to 17:00 that day."""
    plain = Simulator(config, "team-capacity-loss", 10, date(2026, 11, 2), 2, 2000)
    loss = plain.faults[0]
    hub_break = Fault(
        "hub_link_break",
        loss.start + 5 * 3600,
        loss.start + 9 * 3600,
        {"hub_id": "hub-2", "center_id": "center-1"},
        "HubLinkBreak",
        [],
        {"loss": 1.0},
    )
    faults = [loss, hub_break]
    write_scenario(
        Simulator(config, "team-capacity-loss", 10, date(2026, 11, 2), 2, 2000, faults=faults),
        out,
    )


def _delivered(received: list[dict[str, Any]], path: str, alertname: str) -> list[dict[str, Any]]:
    """(notification, alert) pairs delivered to `path` for `alertname`, firing ones."""
    return [
        {"group": message["groupLabels"], **alert}
        for message in received
        if message["path"] == path
        for alert in message["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["status"] == "firing"
    ]


def test_client_same_day_at_risk_reaches_each_clients_account_manager(
    broker: EmbeddedBroker,
    tmp_path: Path,
    config: Config,
    receiver: tuple[str, list[dict[str, Any]]],  # noqa: F811
) -> None:
    hook, received = receiver
    events = tmp_path / "events.jsonl"
    _scenario(config, events)
    lines = [line for line in events.read_bytes().splitlines() if _event_time(line) <= CUT]
    worker = Worker(broker.bootstrap, tmp_path).start()
    services: list[_Service] = []
    try:
        _produce(broker.bootstrap, lines)

        def at_risk() -> set[str]:
            return {
                dict(labels)["client_id"]
                for (name, labels) in worker.metrics()
                if name == "claimflow_alert_active"
                and dict(labels)["alert"] == "ClientSameDayAtRisk"
            }

        def hub_break() -> bool:
            return any(
                name == "claimflow_alert_active" and dict(labels)["alert"] == "HubLinkBreak"
                for (name, labels) in worker.metrics()
            )

        wait_until(
            lambda: at_risk() == AT_RISK and hub_break(),
            180,
            "the worker to hold ClientSameDayAtRisk for two clients and HubLinkBreak open",
        )
        # The worker's client view says the same as its metrics.
        rows = worker.get("/api/clients")[1]["clients"]
        assert {r["client_id"] for r in rows if r["alert"]} == AT_RISK
        alertmanager, am_url = _alertmanager(tmp_path, hook)
        services.append(alertmanager)
        prometheus, prom_url = _prometheus(tmp_path, worker, am_url)
        services.append(prometheus)

        name = "ClaimflowClientSameDayAtRisk"

        def each_client_told() -> list[dict[str, Any]] | None:
            got = _delivered(received, "/account-managers", name)
            return got if {a["labels"]["client_id"] for a in got} == AT_RISK else None

        told = wait_until(each_client_told, 90, "a notification per client at account-managers")
        for alert in told:
            client = alert["labels"]["client_id"]
            # One group per client: the account manager of that client gets only its alert.
            assert alert["group"] == {"alertname": name, "client_id": client}, alert
            assert alert["labels"]["severity"] == "warning"
            assert alert["annotations"]["runbook_url"].endswith(
                "docs/runbooks/client-same-day-at-risk.md"
            )
            assert client in alert["annotations"]["description"]
        groups = [
            m["groupLabels"]["client_id"] for m in received if m["path"] == "/account-managers"
        ]
        assert sorted(set(groups)) == sorted(AT_RISK)
        for message in received:  # never two clients in one notification
            if message["path"] == "/account-managers":
                assert len({a["labels"]["client_id"] for a in message["alerts"]}) == 1

        # The break pages on-call, the team's warning goes to operations; the client alert
        # (a warning) goes to no one but the account managers.
        page = wait_until(
            lambda: _delivered(received, "/oncall", "ClaimflowHubLinkBreak"),
            60,
            "the HubLinkBreak page at on-call",
        )[0]
        assert page["labels"]["hub_id"] == "hub-2"
        wait_until(
            lambda: _delivered(received, "/operations", "ClaimflowSlaAtRisk"),
            60,
            "the SlaAtRisk warning at operations",
        )
        firing = {
            a["labels"]["client_id"]
            for a in _get(prom_url + "/api/v1/alerts")["data"]["alerts"]
            if a["labels"]["alertname"] == name and a["state"] == "firing"
        }
        assert firing == AT_RISK
        elsewhere = [
            (m["path"], a["labels"])
            for m in received
            if m["path"] != "/account-managers"
            for a in m["alerts"]
            if a["labels"]["alertname"] == name
        ]
        assert elsewhere == []
        assert {m["path"] for m in received} == {"/account-managers", "/oncall", "/operations"}
    finally:
        for service in reversed(services):
            service.stop()
        worker.stop()
