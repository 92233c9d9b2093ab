"""Prometheus rules and Alertmanager configuration, the mixin way: promtool checks and unit
tests (tests/promtool/), every alert with severity, summary, description and a runbook that
exists, every alert covered by a firing test."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.live_harness import tool

ROOT = Path(__file__).parent.parent
RULES = ROOT / "deploy" / "prometheus" / "claimflow-rules.yml"
RULE_TESTS = ROOT / "tests" / "promtool" / "claimflow-rules.test.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK_BASE = "https://github.com/claimflow/claimflow/blob/main/"


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check() -> None:
    assert "SUCCESS" in _run(tool("promtool"), "check", "rules", str(RULES))


def test_rule_unit_tests_pass() -> None:
    assert "SUCCESS" in _run(tool("promtool"), "test", "rules", str(RULE_TESTS))


def test_every_alert_has_severity_summary_description_and_an_existing_runbook() -> None:
    alerts = _alerts()
    assert len(alerts) >= 9
    for rule in alerts:
        assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
        assert rule["labels"]["service"] == "claimflow", rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), url
        runbook = ROOT / url.removeprefix(RUNBOOK_BASE)
        assert runbook.is_file(), f"{rule['alert']}: no runbook at {runbook}"
        assert rule["alert"] in runbook.read_text(), f"{runbook} does not name {rule['alert']}"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested quiet"


def test_alertmanager_config_is_valid_and_a_hub_break_inhibits_inflow_drop() -> None:
    assert "SUCCESS" in _run(tool("amtool"), "check-config", str(ALERTMANAGER))
    config = yaml.safe_load(ALERTMANAGER.read_text())
    assert {
        "source_matchers": ['alertname="ClaimflowHubLinkBreak"'],
        "target_matchers": ['alertname="ClaimflowInflowDrop"'],
        "equal": ["service"],
    } in config["inhibit_rules"]
