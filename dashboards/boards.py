"""The Grafana boards, as code (grafanalib). `claimflow dashboards build` writes them as JSON
into dashboards/generated/; a test fails when the committed files are stale, and the
end-to-end test runs every panel's query against a live Prometheus.

Queries read the worker's metrics (README, "Metrics") and the recording rules in
deploy/prometheus/claimflow-rules.yml. `$team`, `$client` and `$hub` are template variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Annotations,
    BarGauge,
    Dashboard,
    GridPos,
    Stat,
    Table,
    Target,
    Template,
    Templating,
    Threshold,
    TimeSeries,
)

DATASOURCE = "${datasource}"
GREEN, AMBER, RED = "green", "orange", "red"


def _target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, datasource=DATASOURCE, instant=instant)


def _variables(*names: str) -> Templating:
    sources = {
        "team": ("team", "label_values(claimflow_backlog_claims, team)"),
        "client": ("client_id", "label_values(claimflow_survey_responses_total, client_id)"),
        "hub": ("hub_id", "label_values(claimflow_claims_in_transit, hub_id)"),
    }
    templates = [
        Template(
            name="datasource",
            query="prometheus",
            type="datasource",
            default="Prometheus",
            includeAll=False,
        )
    ]
    for name in names:
        label, query = sources[name]
        templates.append(
            Template(
                name=name,
                label=label,
                query=query,
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                default="$__all",
                refresh=2,
            )
        )
    return Templating(list=templates)


def _break_annotations() -> Annotations:
    """Hub link break episodes marked on every time series of the board."""
    return Annotations(
        list=[
            {
                "datasource": DATASOURCE,
                "enable": True,
                "expr": 'claimflow_alert_active{alert="HubLinkBreak"} == 1',
                "iconColor": "red",
                "name": "Hub link breaks",
                "step": "60s",
                "titleFormat": "HubLinkBreak {{hub_id}} -> {{center_id}}",
                "tagKeys": "hub_id,center_id",
            }
        ]
    )


def _pos(x: int, y: int, w: int, h: int) -> GridPos:
    return GridPos(h=h, w=w, x=x, y=y)


def claims_wall() -> Dashboard:
    """The morning whiteboard, for a wall display across the room: few panels, big numbers."""
    return Dashboard(
        title="claimflow / Claims wall",
        uid="claimflow-wall",
        description="Inflow against yesterday and last week, backlog, claims at risk, hub "
        "links, open alerts, survey mood.",
        tags=["claimflow"],
        timezone="browser",
        refresh="30s",
        templating=_variables("team", "hub"),
        annotations=_break_annotations(),
        panels=[
            Stat(
                title="Hub links down",
                targets=[_target('count(claimflow_hub_link_up{hub_id=~"$hub"} == 0) or vector(0)')],
                thresholds=[Threshold(GREEN, 0, 0.0), Threshold(RED, 1, 1.0)],
                colorMode="background",
                reduceCalc="lastNotNull",
                gridPos=_pos(0, 0, 6, 5),
            ),
            Stat(
                title="Open alerts",
                targets=[_target("sum(claimflow_alerts_open)")],
                thresholds=[Threshold(GREEN, 0, 0.0), Threshold(AMBER, 1, 1.0)],
                colorMode="background",
                reduceCalc="lastNotNull",
                gridPos=_pos(6, 0, 6, 5),
            ),
            Stat(
                title="Claims at risk today",
                targets=[
                    _target(
                        'sum(claimflow_claims_at_risk{team=~"$team",deadline_class="due_today"})'
                    )
                ],
                thresholds=[Threshold(GREEN, 0, 0.0), Threshold(RED, 1, 1.0)],
                colorMode="background",
                reduceCalc="lastNotNull",
                gridPos=_pos(12, 0, 6, 5),
            ),
            Stat(
                title="Negative survey share",
                targets=[
                    _target(
                        'sum(claimflow_survey_responses_total{score=~"1|2"})'
                        " / sum(claimflow_survey_responses_total)"
                    )
                ],
                format="percentunit",
                thresholds=[
                    Threshold(GREEN, 0, 0.0),
                    Threshold(AMBER, 1, 0.2),
                    Threshold(RED, 2, 0.35),
                ],
                colorMode="background",
                reduceCalc="lastNotNull",
                gridPos=_pos(18, 0, 6, 5),
            ),
            BarGauge(
                title="Inflow now, per team, as a share of the usual",
                targets=[_target('claimflow:team_inflow_ratio{team=~"$team"}', "{{team}}")],
                format="percentunit",
                min=0,
                max=1.5,
                thresholds=[
                    Threshold(RED, 0, 0.0),
                    Threshold(AMBER, 1, 0.5),
                    Threshold(GREEN, 2, 0.8),
                ],
                gridPos=_pos(0, 5, 12, 9),
            ),
            BarGauge(
                title="Backlog per team",
                targets=[
                    _target('sum by (team) (claimflow_backlog_claims{team=~"$team"})', "{{team}}")
                ],
                format="none",
                thresholds=[Threshold(GREEN, 0, 0.0), Threshold(AMBER, 1, 200.0)],
                gridPos=_pos(12, 5, 12, 9),
            ),
            TimeSeries(
                title="Inflow today vs yesterday and last week",
                targets=[
                    _target('sum(claimflow_team_inflow_claims{team=~"$team"})', "today", "A"),
                    _target(
                        'sum(claimflow_team_inflow_reference_claims{team=~"$team",reference="1d"})',
                        "yesterday",
                        "B",
                    ),
                    _target(
                        'sum(claimflow_team_inflow_reference_claims{team=~"$team",reference="7d"})',
                        "last week",
                        "C",
                    ),
                ],
                unit="none",
                gridPos=_pos(0, 14, 24, 9),
            ),
        ],
    ).auto_panel_ids()


def hub_link() -> Dashboard:
    """For IT: per hub and center, dispatched against arrived, in transit, last arrival."""
    return Dashboard(
        title="claimflow / Hub links",
        uid="claimflow-hub-link",
        description="Per hub and center: claims in transit and missing, link status, last "
        "arrival, transit timeout. Claim ids: the worker's /it/transit.",
        tags=["claimflow"],
        refresh="30s",
        templating=_variables("hub"),
        panels=[
            Table(
                title="Routes",
                unit="none",
                targets=[
                    _target('claimflow_hub_link_up{hub_id=~"$hub"}', "", "A", instant=True),
                    _target('claimflow_claims_in_transit{hub_id=~"$hub"}', "", "B", instant=True),
                    _target('claimflow_claims_missing{hub_id=~"$hub"}', "", "C", instant=True),
                ],
                gridPos=_pos(0, 0, 24, 7),
            ),
            TimeSeries(
                title="Claims missing (in transit past the timeout)",
                targets=[
                    _target(
                        'claimflow_claims_missing{hub_id=~"$hub"}', "{{hub_id}} -> {{center_id}}"
                    )
                ],
                unit="none",
                gridPos=_pos(0, 7, 12, 8),
            ),
            TimeSeries(
                title="Claims in transit",
                targets=[
                    _target(
                        'claimflow_claims_in_transit{hub_id=~"$hub"}', "{{hub_id}} -> {{center_id}}"
                    )
                ],
                unit="none",
                gridPos=_pos(12, 7, 12, 8),
            ),
            TimeSeries(
                title="Arrivals from the hub vs its baseline",
                targets=[
                    _target(
                        'claimflow_hub_inflow_claims{hub_id=~"$hub"}', "{{hub_id}} arrived", "A"
                    ),
                    _target(
                        'claimflow_hub_inflow_baseline_claims{hub_id=~"$hub"}',
                        "{{hub_id}} usual",
                        "B",
                    ),
                ],
                unit="none",
                gridPos=_pos(0, 15, 12, 8),
            ),
            TimeSeries(
                title="Since the last arrival (event time)",
                targets=[
                    _target(
                        "claimflow_event_time_seconds - on() group_right() "
                        'claimflow_hub_last_arrival_timestamp_seconds{hub_id=~"$hub"}',
                        "{{hub_id}} -> {{center_id}}",
                    )
                ],
                unit="s",
                gridPos=_pos(12, 15, 12, 8),
            ),
            TimeSeries(
                title="Dispatched by the hub vs arrived at the center (trailing hour)",
                targets=[
                    _target(
                        'claimflow_hub_dispatched_claims{hub_id=~"$hub"}',
                        "{{hub_id}} -> {{center_id}} dispatched",
                        "A",
                    ),
                    _target(
                        'claimflow_hub_arrived_claims{hub_id=~"$hub"}',
                        "{{hub_id}} -> {{center_id}} arrived",
                        "B",
                    ),
                ],
                unit="none",
                gridPos=_pos(0, 23, 12, 8),
            ),
            TimeSeries(
                title="Transit time percentiles, with the learned timeout",
                targets=[
                    _target(
                        'claimflow_transit_time_seconds{hub_id=~"$hub"}',
                        "{{hub_id}} -> {{center_id}} p{{percentile}}",
                        "A",
                    ),
                    _target(
                        'claimflow_transit_timeout_seconds{hub_id=~"$hub"}',
                        "{{hub_id}} -> {{center_id}} timeout",
                        "B",
                    ),
                ],
                unit="s",
                gridPos=_pos(12, 23, 12, 8),
            ),
        ],
        annotations=_break_annotations(),
    ).auto_panel_ids()


def sla_risk() -> Dashboard:
    """Per team and deadline: backlog by due class, projected misses, throughput."""
    return Dashboard(
        title="claimflow / SLA risk",
        uid="claimflow-sla-risk",
        description="Per team: claims due, overdue, projected to miss, and the pace.",
        tags=["claimflow"],
        refresh="1m",
        templating=_variables("team"),
        panels=[
            TimeSeries(
                title="Projected misses per team and deadline",
                targets=[
                    _target(
                        'claimflow_claims_at_risk{team=~"$team"}', "{{team}} {{deadline_class}}"
                    )
                ],
                unit="none",
                gridPos=_pos(0, 0, 12, 9),
            ),
            TimeSeries(
                title="Backlog by SLA class",
                targets=[
                    _target('claimflow_backlog_claims{team=~"$team"}', "{{team}} {{sla_class}}")
                ],
                unit="none",
                gridPos=_pos(12, 0, 12, 9),
            ),
            TimeSeries(
                title="Throughput against the pace needed (claims per working hour)",
                targets=[
                    _target(
                        'claimflow_team_throughput_claims_per_hour{team=~"$team"}',
                        "{{team}} pace",
                        "A",
                    ),
                    _target(
                        'claimflow_deadline_needed_claims_per_hour{team=~"$team"}',
                        "{{team}} needed ({{deadline_class}})",
                        "B",
                    ),
                ],
                unit="none",
                gridPos=_pos(0, 9, 12, 9),
            ),
            TimeSeries(
                title="Due at upcoming deadlines vs completed per hour",
                targets=[
                    _target(
                        'claimflow_deadline_due_claims{team=~"$team"}',
                        "{{team}} due ({{deadline_class}})",
                        "A",
                    ),
                    _target(
                        'claimflow:team_completions:rate1h{team=~"$team"}', "{{team}} done/h", "B"
                    ),
                    _target(
                        'claimflow:team_arrivals:rate1h{team=~"$team"}', "{{team}} arrived/h", "C"
                    ),
                ],
                unit="none",
                gridPos=_pos(12, 18, 12, 9),
            ),
            TimeSeries(
                title="Oldest open claim",
                targets=[
                    _target('claimflow_oldest_open_claim_age_seconds{team=~"$team"}', "{{team}}")
                ],
                unit="s",
                gridPos=_pos(12, 9, 12, 9),
            ),
        ],
    ).auto_panel_ids()


def customer_feedback() -> Dashboard:
    """Survey answers by score and the negative share, per client."""
    return Dashboard(
        title="claimflow / Customer feedback",
        uid="claimflow-feedback",
        description="Survey responses by score, negative share per client. Comments are on "
        "the wall page, never in metrics.",
        tags=["claimflow"],
        refresh="1m",
        templating=_variables("client"),
        panels=[
            BarGauge(
                title="Responses by score",
                targets=[
                    _target(
                        'sum by (score) (claimflow_survey_responses_total{client_id=~"$client"})',
                        "score {{score}}",
                    )
                ],
                format="none",
                gridPos=_pos(0, 0, 12, 9),
            ),
            BarGauge(
                title="Negative share per client (scores 1-2)",
                targets=[
                    _target(
                        'claimflow:client_negative_share{client_id=~"$client"}', "{{client_id}}"
                    )
                ],
                format="percentunit",
                min=0,
                max=1,
                thresholds=[
                    Threshold(GREEN, 0, 0.0),
                    Threshold(AMBER, 1, 0.2),
                    Threshold(RED, 2, 0.35),
                ],
                gridPos=_pos(12, 0, 12, 9),
            ),
            TimeSeries(
                title="Feedback alerts open",
                targets=[
                    _target(
                        'claimflow_alert_active{alert="NegativeFeedbackSurge",client_id=~"$client"}'
                        ' or claimflow_alerts_open{alert="NegativeFeedbackSurge"}',
                        "{{client_id}}{{team}}",
                    )
                ],
                unit="none",
                gridPos=_pos(0, 9, 24, 8),
            ),
        ],
    ).auto_panel_ids()


BOARDS = {
    "claims-wall": claims_wall,
    "hub-link": hub_link,
    "sla-risk": sla_risk,
    "customer-feedback": customer_feedback,
}


def board_json(board: Dashboard) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder))
    return data


def render(board: Dashboard) -> str:
    return json.dumps(board_json(board), indent=2, sort_keys=True) + "\n"


GENERATED = Path(__file__).parent / "generated"


def build(out: Path = GENERATED, check: bool = False) -> list[str]:
    """Write every board to `out`/NAME.json; with `check`, write nothing and return the
    names of the files that are missing or differ."""
    stale = []
    for name, make in BOARDS.items():
        path = out / f"{name}.json"
        text = render(make())
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return stale


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel or annotation title, PromQL) for every query the board runs."""
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    for annotation in board.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            out.append((f"annotation: {annotation['name']}", annotation["expr"]))
    return out
