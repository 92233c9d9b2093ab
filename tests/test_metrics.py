"""Prometheus metrics from engine state: promtool-clean, true to the state, bounded labels,
and additive across engines that each own some partitions."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib
from datetime import date

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from claimflow.config import Config
from claimflow.engine import Engine
from claimflow.events import Event, decode
from claimflow.metrics import EngineCollector
from claimflow.simulate import Simulator
from claimflow.streams.topics import KEY_FIELDS

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


def test_engines_that_split_the_partitions_add_up_to_one(config: Config, mixed: list) -> None:  # type: ignore[type-arg]
    whole, parts = Engine(config), [Engine(config), Engine(config)]
    for raw, event in mixed[:60_000]:
        whole.ingest(event)
        key = str(raw[KEY_FIELDS[raw["type"]]]).encode()
        parts[zlib.crc32(key) % 2].ingest(event)
    for engine in (whole, *parts):
        engine.finish()
    one, both = _samples(_render(whole)), _samples(_render(*parts))
    additive = (
        "claimflow_events_total",
        "claimflow_arrivals_total",
        "claimflow_completions_total",
        "claimflow_claims_in_transit",
        "claimflow_survey_responses_total",
    )
    for (name, labels), value in one.items():
        if name in additive:
            assert both[(name, labels)] == value, (name, labels)
    total = lambda s: sum(v for (n, _), v in s.items() if n == "claimflow_backlog_claims")  # noqa: E731
    assert total(both) == total(one) > 0
