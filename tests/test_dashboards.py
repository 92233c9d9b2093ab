"""The Grafana boards as data: generated files current, every panel with a query, units set,
every variable a query uses defined on its board. Whether the queries return data is
tested against a live Prometheus in tests/test_observability_e2e.py."""

from __future__ import annotations

import re
import subprocess
import sys

from claimflow.dashboards.boards import BOARDS, GENERATED, board_json, panel_queries


def test_generated_boards_are_current() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claimflow.cli", "dashboards", "build", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.stem for p in GENERATED.glob("*.json")) == sorted(BOARDS)


def test_four_boards_with_queries_units_and_defined_variables() -> None:
    assert set(BOARDS) == {"claims-wall", "hub-link", "sla-risk", "customer-feedback"}
    used_variables: set[str] = set()
    for name, make in BOARDS.items():
        board = board_json(make())
        defined = {t["name"] for t in board["templating"]["list"]}
        assert board["uid"].startswith("claimflow-") and board["panels"], name
        for panel in board["panels"]:
            exprs = [t.get("expr", "") for t in panel.get("targets", [])]
            assert exprs and all(exprs), f"{name}: panel {panel['title']!r} has no query"
            # grafanalib writes a bar gauge's unit in the pre-7 place Grafana migrates from.
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or panel.get(
                "options", {}
            ).get("fieldOptions", {}).get("defaults", {}).get("unit")
            assert unit, f"{name}: panel {panel['title']!r} has no unit"
        for title, expr in panel_queries(board):
            for variable in re.findall(r"\$(\w+)", expr):
                assert variable in defined, f"{name}: {title!r} uses undefined ${variable}"
                used_variables.add(variable)
    assert {"team", "client", "hub"} <= used_variables


def test_hub_link_board_marks_breaks() -> None:
    board = board_json(BOARDS["hub-link"]())
    assert any("HubLinkBreak" in a.get("expr", "") for a in board["annotations"]["list"])
