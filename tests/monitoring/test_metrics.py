"""Prometheus metrics from engine state: promtool-clean, true to the state, bounded labels;
one engine per worker (Prometheus adds the workers up, tests/live/test_worker.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from claimflow.config import Config
from claimflow.contract.events import Event, decode
from claimflow.engine import Alert, Engine
from claimflow.engine.alerts import labels_key
from claimflow.tools.simulate import Simulator
from claimflow.views.metrics import OTHER, EngineCollector

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def mixed(config: Config) -> list[tuple[dict, Event]]:  # type: ignore[type-arg]
    sim = Simulator(config, "mixed", 21, date(2026, 11, 2), seed=1)
    return [(raw, decode(json.dumps(raw))) for _, raw in sim.events()]  # type: ignore[misc]


def _until(config: Config, events: list, moment: str) -> Engine:  # type: ignore[type-arg]
    engine = Engine(config)
    for _, event in events:
        if event.time.isoformat() > moment:
            break
        engine.ingest(event)
    return engine


def _render(*engines: Engine) -> str:
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: engines))
    return generate_latest(registry).decode()


def _samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.mark.live
def test_exposition_is_promtool_clean(config: Config, mixed: list) -> None:  # type: ignore[type-arg]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus)")
    text = _render(_until(config, mixed, "2026-11-17T12:00"))
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert done.stdout == b"" and done.stderr == b""  # not even a lint warning


@pytest.mark.slow
def test_metrics_tell_the_state_during_a_break_and_a_capacity_loss(
    config: Config, mixed: list
) -> None:  # type: ignore[type-arg]
    engine = _until(config, mixed, "2026-11-17T12:00")  # hub-1 is losing half its claims
    samples = _samples(_render(engine))
    assert _value(samples, "claimflow_hub_link_up", hub_id="hub-1", center_id="center-1") == 0
    assert _value(samples, "claimflow_hub_link_up", hub_id="hub-2", center_id="center-1") == 1
    missing = _value(samples, "claimflow_claims_missing", hub_id="hub-1", center_id="center-1")
    view = engine.links.read(("hub-1", "center-1"), engine.watermark)
    assert missing == view.missing == sum(view.missing_by_client.values()) > 0
    open_claims = sum(v for (name, _), v in samples.items() if name == "claimflow_backlog_claims")
    assert open_claims == sum(engine.backlog.open_count(t) for t in engine.teams)
    assert _value(samples, "claimflow_alerts_open", alert="HubLinkBreak") == 1
    for reference in ("1d", "7d"):
        assert (
            _value(
                samples, "claimflow_team_inflow_reference_claims", team="motor", reference=reference
            )
            > 0
        )
    assert _value(samples, "claimflow_team_inflow_baseline_claims", team="motor") > 0

    engine = _until(config, mixed, "2026-11-19T14:00")  # motor at 30% of its staff
    samples = _samples(_render(engine))
    at_risk = _value(samples, "claimflow_claims_at_risk", team="motor", deadline_class="due_today")
    assert at_risk >= 5
    assert (
        _value(samples, "claimflow_claims_at_risk", team="property", deadline_class="due_today")
        == 0
    )


@pytest.mark.slow
def test_labels_never_carry_claim_ids_or_comments(config: Config, mixed: list) -> None:  # type: ignore[type-arg]
    engine = _until(config, mixed, "2026-11-21T00:00")
    text = _render(engine)
    comments = {raw["comment"] for raw, _ in mixed if raw.get("comment")}
    assert comments
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for value in sample.labels.values():
                assert not value.startswith("CLM-")
                assert value not in comments
                assert len(value) <= 100


def test_alerts_whose_scopes_are_exported_as_other_share_one_series(config: Config) -> None:
    """Two open alerts of clients the configuration does not list: one `other` series,
    active once, since the first of them (surveys of those clients add up)."""
    engine = Engine(config)
    for client, at in (("stranger-a", 2000.0), ("stranger-b", 1000.0)):
        labels = {"client_id": client}
        engine.book.open[("NegativeFeedbackSurge", labels_key(labels))] = Alert(
            "NegativeFeedbackSurge", "firing", at, labels, "surge"
        )
    samples = _samples(_render(engine))
    scope = {"alert": "NegativeFeedbackSurge", "client_id": OTHER}
    scope |= {"team": "", "hub_id": "", "center_id": ""}
    assert _value(samples, "claimflow_alert_active", **scope) == 1
    assert _value(samples, "claimflow_alert_since_timestamp_seconds", **scope) == 1000.0
    assert _value(samples, "claimflow_alerts_open", alert="NegativeFeedbackSurge") == 2


def test_a_worker_exports_at_most_one_engine(config: Config) -> None:
    with pytest.raises(ValueError, match="at most one"):
        _render(Engine(config), Engine(config))
