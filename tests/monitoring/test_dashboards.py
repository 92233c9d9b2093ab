"""The Grafana boards as data: generated files current, valid against Grafana's published
dashboard schema (tests/schemas/grafana-dashboard.schema.json, generated from the
`@grafana/schema` npm package; see tests/schemas/README.md) with 0 errors, loadable by
Grafana's own grafana-foundation-sdk, in the current shape (datasource references, no nulls
or legacy fields), every panel with a query, a unit, a runbook link and a link to the other
boards, every ratio over a window, every variable a query uses defined on its board. Whether
the queries return data is tested against a live Prometheus in
tests/monitoring/test_observability_e2e.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from claimflow.dashboards.boards import BOARDS, GENERATED, board_json, panel_queries
from claimflow.dashboards.mixin import RUNBOOK_BASE

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests/schemas/grafana-dashboard.schema.json").read_text())
LEGACY = {"rows", "style", "hideControls", "sharedCrosshair", "span"}


def _generated(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GENERATED / f"{name}.json").read_text())
    return data


def test_generated_boards_are_current(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claimflow.cli", "dashboards", "build", "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.stem for p in GENERATED.glob("*.json")) == sorted(BOARDS)
    # --out writes where it is told, relative to here, not into the installed package.
    done = subprocess.run(
        [sys.executable, "-m", "claimflow.cli", "dashboards", "build", "--out", "boards"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.stem for p in (tmp_path / "boards").glob("*.json")) == sorted(BOARDS)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_validates_against_grafanas_dashboard_schema(name: str) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}"
        for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(_generated(name))
    ]
    assert errors == []


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_grafana_foundation_sdk_loads_the_board(name: str) -> None:
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    data = _generated(name)
    board = Dashboard.from_json(data)
    assert board.uid == data["uid"] and board.panels is not None
    assert len(board.panels) == len(data["panels"])
    assert board.templating.list_val is not None
    assert [v.name for v in board.templating.list_val][:3] == ["datasource", "job", "instance"]


def _walk(value: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    out: list[tuple[str, Any, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((f"{path}.{key}", key, item))
            out += _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _walk(item, f"{path}[{i}]")
    return out


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_current_shape_no_nulls_no_legacy_fields(name: str) -> None:
    board = _generated(name)
    assert board["schemaVersion"] >= 39
    for path, key, item in _walk(board):
        assert key not in LEGACY, path
        if item is None:  # only a threshold's base step is null
            assert re.search(r"\.thresholds\.steps\[0\]\.value$", path), path
        assert item != "null", path
        if key == "datasource":
            assert item == {"type": "prometheus", "uid": "${datasource}"}, path
    for panel in board["panels"]:
        for step in panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])[:1]:
            assert step["value"] is None
        assert "overrides" in panel["fieldConfig"]
    assert board["templating"]["list"][0]["type"] == "datasource"


def test_four_boards_with_queries_units_links_and_defined_variables() -> None:
    assert set(BOARDS) == {"claims-wall", "hub-link", "sla-risk", "customer-feedback"}
    used_variables: set[str] = set()
    for name, make in BOARDS.items():
        board = board_json(make())
        defined = {t["name"] for t in board["templating"]["list"]}
        assert {"job", "instance"} <= defined
        assert board["uid"].startswith("claimflow-") and board["panels"], name
        assert any(link.get("tags") == ["claimflow"] for link in board["links"]), name
        for panel in board["panels"]:
            title = panel["title"]
            exprs = [t.get("expr", "") for t in panel.get("targets", [])]
            assert exprs and all(exprs), f"{name}: panel {title!r} has no query"
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{name}: {title!r} no unit"
            urls = [link["url"] for link in panel["links"]]
            runbooks = [u for u in urls if u.startswith(RUNBOOK_BASE)]
            assert runbooks, f"{name}: {title!r} links to no runbook"
            assert any(link.get("tags") == ["claimflow"] for link in panel["links"]), title
            for expr in exprs:
                assert 'job=~"$job"' in expr, f"{name}: {title!r} ignores $job"
                # A ratio of counters without a window is an all-time average.
                if "_total" in expr and "/" in expr:
                    assert re.search(r"(increase|rate)\(", expr), f"{title!r}: {expr}"
        for title, expr in panel_queries(board):
            for variable in re.findall(r"\$(\w+)", expr):
                assert variable in defined, f"{name}: {title!r} uses undefined ${variable}"
                used_variables.add(variable)
    assert {"team", "client", "hub", "job", "instance"} <= used_variables


def test_runbook_links_point_at_runbooks_that_exist() -> None:
    from tests.monitoring.test_rules import RUNBOOKS_FROM_OTHER_BRANCHES

    for make in BOARDS.values():
        for panel in board_json(make())["panels"]:
            for link in panel["links"]:
                if link["url"].startswith(RUNBOOK_BASE):
                    page = link["url"].removeprefix(RUNBOOK_BASE)
                    if page not in RUNBOOKS_FROM_OTHER_BRANCHES:
                        assert (ROOT / "docs/runbooks" / page).is_file(), link["url"]


def test_hub_link_and_wall_boards_show_break_episodes() -> None:
    for name in ("hub-link", "claims-wall"):
        board = board_json(BOARDS[name]())
        assert any(
            p["type"] == "state-timeline" and "HubLinkBreak" in p["targets"][0]["expr"]
            for p in board["panels"]
        ), name


def test_boards_py_uses_no_private_grafanalib_module() -> None:
    source = (ROOT / "dashboards/boards.py").read_text()
    assert "_gen" not in source
