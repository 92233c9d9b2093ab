"""The Grafana boards, as code (grafanalib). `claimflow dashboards build` writes them as JSON
into dashboards/generated/; a test fails when the committed files are stale, and the
end-to-end test runs every panel's query against a live Prometheus.

Queries read the worker's metrics (README, "Metrics") and the recording rules that
dashboards/mixin.py generates. `$datasource`, `$job`, `$instance`, `$team`, `$client` and
`$hub` are template variables; `scoped` adds the job and instance to every selector.

Panels come from small helpers that carry the house style (`series`, `stat`, `bar_gauge`,
`table`: units, thresholds, a runbook link each), as grafanalib's own weave.py does, and a
board is its rows (`_rows`: a height, then panels sharing the width), never coordinates.

grafanalib still writes the pre-7 dashboard shape (string datasources, nulls, `rows`,
`style`, bar gauge units under `fieldOptions`, thresholds with the string "null");
`board_json` post-processes its output into the current schema, which
tests/monitoring/test_dashboards.py checks against Grafana's published schema.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from grafanalib.core import (
    BarGauge,
    Dashboard,
    GridPos,
    Stat,
    StateTimeline,
    Table,
    Target,
    Template,
    Templating,
    Threshold,
    TimeSeries,
)

from claimflow.dashboards.mixin import RUNBOOK_BASE

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GREEN, AMBER, RED = "green", "orange", "red"
SCHEMA_VERSION = 41
#: Keys grafanalib still writes that the current dashboard schema dropped.
LEGACY = {
    "rows",
    "style",
    "hideControls",
    "sharedCrosshair",
    "span",
    "minSpan",
    "height",
    "editable",
    "error",
    "inputs",
    "timePicker",
    "gnetId",
    "version",
    "useTags",
    "tagsQuery",
    "tagValuesQuery",
    "auto",
    "auto_min",
    "auto_count",
    "extraJson",
    "thresholdType",
    "dataSource",
    "minVizHeight",
    "minVizWidth",
    "maxVizHeight",
    "valueMode",
    "namePlacement",
    "sizing",
    "legendDisplayMode",
    "__inputs",
    "metric",
    "intervalFactor",
    "step",
    "target",
}
#: Raw series get the job and instance chosen on the board; recorded ones (aggregated over
#: instances) the job only.
_SERIES = re.compile(r"\b(claimflow_\w+|job\w*:claimflow_\w+:\w+)(\{([^}]*)\})?")


def scoped(expr: str) -> str:
    """`expr` with `job=~"$job"` (and `instance=~"$instance"` on raw series) in every
    selector, so each board follows the job and instance variables."""

    def add(match: re.Match[str]) -> str:
        name, inner = match.group(1), match.group(3)
        scope = ['job=~"$job"'] if ":" in name else ['job=~"$job"', 'instance=~"$instance"']
        matchers = [m for m in (inner or "").split(",") if m] + scope
        return f"{name}{{{','.join(matchers)}}}"

    return _SERIES.sub(add, expr)


def _target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Target:
    return Target(
        expr=scoped(expr), legendFormat=legend, refId=ref, datasource=DATASOURCE, instant=instant
    )


def _targets(*queries: tuple[str, str], instant: bool = False) -> list[Target]:
    return [
        _target(expr, legend, chr(ord("A") + i), instant)
        for i, (expr, legend) in enumerate(queries)
    ]


def _link(title: str, tooltip: str, url: str = "", tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """A link in the schema's DashboardLink shape (panels use it too): to a URL, or to the
    boards with `tags`, keeping the time range and the variables."""
    return {
        "title": title,
        "tooltip": tooltip,
        "type": "dashboards" if tags else "link",
        "url": url,
        "tags": list(tags),
        "icon": "dashboard" if tags else "doc",
        "asDropdown": bool(tags),
        "includeVars": bool(tags),
        "keepTime": bool(tags),
        "targetBlank": not tags,
    }


BOARD_LINK = _link("claimflow boards", "the other claimflow boards", tags=("claimflow",))


def _runbook(name: str) -> list[dict[str, Any]]:
    return [_link(f"Runbook: {name}", "what it means, what to do", f"{RUNBOOK_BASE}{name}.md")]


def series(title: str, *queries: tuple[str, str], unit: str = "short", runbook: str) -> TimeSeries:
    """A time series panel: (query, legend) pairs, a unit, a runbook link."""
    return TimeSeries(title=title, targets=_targets(*queries), unit=unit, links=_runbook(runbook))


def table(title: str, *exprs: str, runbook: str) -> Table:
    """A table of the latest values (instant queries), a column per query, a runbook link."""
    return Table(
        title=title,
        unit="short",
        targets=_targets(*((expr, "") for expr in exprs), instant=True),
        links=_runbook(runbook),
    )


def stat(
    title: str,
    expr: str,
    steps: list[tuple[str, float]],
    *,
    unit: str = "short",
    runbook: str,
) -> Stat:
    return Stat(
        title=title,
        targets=[_target(expr)],
        format=unit,
        thresholds=[Threshold(color, i, value) for i, (color, value) in enumerate(steps)],
        colorMode="background",
        reduceCalc="lastNotNull",
        links=_runbook(runbook),
    )


def bar_gauge(
    title: str,
    expr: str,
    legend: str,
    steps: list[tuple[str, float]],
    *,
    unit: str = "short",
    runbook: str,
    max_: float | None = None,
) -> BarGauge:
    gauge = BarGauge(
        title=title,
        targets=[_target(expr, legend)],
        format=unit,
        thresholds=[Threshold(color, i, value) for i, (color, value) in enumerate(steps)],
        links=_runbook(runbook),
        min=0,
    )
    gauge.max = max_  # grafanalib's default (100) is no bound for counts; None drops it
    return gauge


def _breaks_timeline() -> StateTimeline:
    """Hub link break episodes per route: where a dip in another panel comes from."""
    return StateTimeline(
        title="Hub link breaks",
        targets=[
            _target(
                'max by (hub_id, center_id) (claimflow_alert_active{alert="HubLinkBreak"})'
                " or on() vector(0)",
                "{{hub_id}} -> {{center_id}}",
            )
        ],
        links=_runbook("hub-link-break"),
    )


def _variables(*names: str) -> Templating:
    sources = {
        "job": ("job", "label_values(claimflow_event_time_seconds, job)", False),
        "instance": (
            "instance",
            'label_values(claimflow_event_time_seconds{job=~"$job"}, instance)',
            True,
        ),
        "team": ("team", 'label_values(claimflow_backlog_claims{job=~"$job"}, team)', True),
        "client": (
            "client_id",
            'label_values(claimflow_survey_responses_total{job=~"$job"}, client_id)',
            True,
        ),
        "hub": ("hub_id", 'label_values(claimflow_claims_in_transit{job=~"$job"}, hub_id)', True),
    }
    templates = [
        Template(
            name="datasource",
            label="Data source",
            query="prometheus",
            type="datasource",
            default="Prometheus",
            includeAll=False,
        )
    ]
    for name in ("job", "instance", *names):
        label, query, every = sources[name]
        templates.append(
            Template(
                name=name,
                label=label,
                query=query,
                dataSource=DATASOURCE,
                includeAll=every,
                multi=every,
                default="$__all" if every else "claimflow",
                refresh=2,
            )
        )
    return Templating(list=templates)


Row = tuple[Any, ...]  # a row of the board: its height, then its panels from left to right


def _rows(*rows: Row) -> list[Any]:
    """The panels of a board, placed row by row: each row as high as given, its panels
    sharing the 24 columns equally, in reading order. No coordinates written by hand, so
    no two panels overlap and none leaves a gap."""
    panels: list[Any] = []
    y = 0
    for height, *row in rows:
        width = 24 // len(row)
        for i, panel in enumerate(row):
            panel.gridPos = GridPos(h=height, w=width, x=i * width, y=y)
            panels.append(panel)
        y += height
    return panels


def _board(
    uid: str,
    title: str,
    description: str,
    refresh: str,
    variables: tuple[str, ...],
    *rows: Row,
) -> Dashboard:
    return Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["claimflow"],
        timezone="browser",
        refresh=refresh,
        templating=_variables(*variables),
        panels=_rows(*rows),
    ).auto_panel_ids()


def claims_wall() -> Dashboard:
    """The morning whiteboard, for a wall display across the room: few panels, big numbers."""
    return _board(
        "claimflow-wall",
        "claimflow / Claims wall",
        "Inflow against yesterday and last week, backlog, claims at risk, hub links, open "
        "alerts, survey mood.",
        "30s",
        ("team", "hub"),
        (
            5,
            stat(
                "Hub links down",
                'count(claimflow_hub_link_up{hub_id=~"$hub"} == 0) or vector(0)',
                [(GREEN, 0.0), (RED, 1.0)],
                runbook="hub-link-break",
            ),
            stat(
                "Open alerts",
                "sum(claimflow_alerts_open)",
                [(GREEN, 0.0), (AMBER, 1.0)],
                runbook="inflow-drop",
            ),
            stat(
                "Claims at risk today",
                'sum(claimflow_claims_at_risk{team=~"$team",deadline_class="due_today"})',
                [(GREEN, 0.0), (RED, 1.0)],
                runbook="sla-at-risk",
            ),
            stat(
                "Negative survey share (last 24 h)",
                'sum(increase(claimflow_survey_responses_total{score=~"1|2"}[1d]))'
                " / sum(increase(claimflow_survey_responses_total[1d]))",
                [(GREEN, 0.0), (AMBER, 0.2), (RED, 0.35)],
                unit="percentunit",
                runbook="feedback-surge",
            ),
        ),
        (
            9,
            bar_gauge(
                "Inflow now, per team, as a share of the usual",
                'job_team:claimflow_team_inflow:ratio{team=~"$team"}',
                "{{team}}",
                [(RED, 0.0), (AMBER, 0.5), (GREEN, 0.8)],
                unit="percentunit",
                runbook="inflow-drop",
                max_=1.5,
            ),
            bar_gauge(
                "Backlog per team",
                'sum by (team) (claimflow_backlog_claims{team=~"$team"})',
                "{{team}}",
                [(GREEN, 0.0), (AMBER, 200.0)],
                runbook="sla-at-risk",
            ),
        ),
        (
            9,
            series(
                "Inflow today vs yesterday and last week",
                ('sum(claimflow_team_inflow_claims{team=~"$team"})', "today"),
                (
                    'sum(claimflow_team_inflow_reference_claims{team=~"$team",reference="1d"})',
                    "yesterday",
                ),
                (
                    'sum(claimflow_team_inflow_reference_claims{team=~"$team",reference="7d"})',
                    "last week",
                ),
                runbook="inflow-drop",
            ),
        ),
        (5, _breaks_timeline()),
    )


def hub_link() -> Dashboard:
    """For IT: per hub and center, dispatched against arrived, in transit, last arrival."""
    route = "{{hub_id}} -> {{center_id}}"
    return _board(
        "claimflow-hub-link",
        "claimflow / Hub links",
        "Per hub and center: claims in transit and missing, link status, last arrival, "
        "transit timeout. Claim ids: the worker's /it/transit.",
        "30s",
        ("hub",),
        (
            7,
            table(
                "Routes",
                'claimflow_hub_link_up{hub_id=~"$hub"}',
                'claimflow_claims_in_transit{hub_id=~"$hub"}',
                'claimflow_claims_missing{hub_id=~"$hub"}',
                runbook="hub-link-break",
            ),
        ),
        (
            8,
            series(
                "Claims missing (in transit past the timeout)",
                ('claimflow_claims_missing{hub_id=~"$hub"}', route),
                runbook="hub-link-break",
            ),
            series(
                "Claims in transit",
                ('claimflow_claims_in_transit{hub_id=~"$hub"}', route),
                runbook="hub-link-break",
            ),
        ),
        (
            8,
            series(
                "Arrivals from the hub vs its baseline",
                ('claimflow_hub_inflow_claims{hub_id=~"$hub"}', "{{hub_id}} arrived"),
                ('claimflow_hub_inflow_baseline_claims{hub_id=~"$hub"}', "{{hub_id}} usual"),
                runbook="inflow-drop",
            ),
            series(
                "Since the last arrival (event time)",
                (
                    "claimflow_event_time_seconds - on() group_right() "
                    'claimflow_hub_last_arrival_timestamp_seconds{hub_id=~"$hub"}',
                    route,
                ),
                unit="s",
                runbook="hub-link-break",
            ),
        ),
        (
            8,
            series(
                "Dispatched by the hub vs arrived at the center (trailing hour)",
                ('claimflow_hub_dispatched_claims{hub_id=~"$hub"}', f"{route} dispatched"),
                ('claimflow_hub_arrived_claims{hub_id=~"$hub"}', f"{route} arrived"),
                runbook="hub-link-break",
            ),
            series(
                "Transit time percentiles, with the learned timeout",
                (
                    'claimflow_transit_time_seconds{hub_id=~"$hub"}',
                    f"{route} p{{{{percentile}}}}",
                ),
                ('claimflow_transit_timeout_seconds{hub_id=~"$hub"}', f"{route} timeout"),
                unit="s",
                runbook="hub-link-break",
            ),
        ),
        (6, _breaks_timeline()),
        (
            8,
            series(
                "Worker health: refused snapshots, failed reloads, completions never seen arriving",
                (
                    "sum by (instance, reason) (increase(claimflow_snapshot_refused_total[1h]))",
                    "{{instance}} snapshot refused ({{reason}})",
                ),
                (
                    "sum by (instance) (increase(claimflow_config_reload_errors_total[1h]))",
                    "{{instance}} reload failed",
                ),
                (
                    "sum by (team) (increase(claimflow_completions_without_arrival_total[1h]))",
                    "{{team}} completed without arrival",
                ),
                runbook="snapshot-refused",
            ),
        ),
    )


def sla_risk() -> Dashboard:
    """Per team and deadline: backlog by due class, projected misses, throughput; per client:
    same-day claims and when they are projected to be done."""
    return _board(
        "claimflow-sla-risk",
        "claimflow / SLA risk",
        "Per team: claims due, overdue, projected to miss, and the pace. Per client: same-day "
        "claims open, stuck or at risk, and when the last is projected to be done.",
        "1m",
        ("team", "client"),
        (
            9,
            series(
                "Projected misses per team and deadline",
                ('claimflow_claims_at_risk{team=~"$team"}', "{{team}} {{deadline_class}}"),
                runbook="sla-at-risk",
            ),
            series(
                "Backlog by SLA class",
                ('claimflow_backlog_claims{team=~"$team"}', "{{team}} {{sla_class}}"),
                runbook="sla-at-risk",
            ),
        ),
        (
            9,
            series(
                "Throughput against the pace needed (claims per working hour)",
                ('claimflow_team_throughput_claims_per_hour{team=~"$team"}', "{{team}} pace"),
                (
                    'claimflow_deadline_needed_claims_per_hour{team=~"$team"}',
                    "{{team}} needed ({{deadline_class}})",
                ),
                unit="short",
                runbook="sla-at-risk",
            ),
            series(
                "Oldest open claim",
                ('claimflow_oldest_open_claim_age_seconds{team=~"$team"}', "{{team}}"),
                unit="s",
                runbook="sla-at-risk",
            ),
        ),
        (
            9,
            series(
                "Same-day claims per client: open, stuck, at risk",
                (
                    'claimflow_client_same_day_claims{client_id=~"$client"}',
                    "{{client_id}} {{state}}",
                ),
                (
                    'sum by (client_id) (claimflow_client_delayed_claims{client_id=~"$client"})',
                    "{{client_id}} delayed by a hub",
                ),
                runbook="client-same-day-at-risk",
            ),
            series(
                "Due at upcoming deadlines vs completed per hour",
                (
                    'claimflow_deadline_due_claims{team=~"$team"}',
                    "{{team}} due ({{deadline_class}})",
                ),
                ('job_team:claimflow_completions:rate1h{team=~"$team"}', "{{team}} done/h"),
                ('job_team:claimflow_arrivals:rate1h{team=~"$team"}', "{{team}} arrived/h"),
                runbook="sla-at-risk",
            ),
        ),
        (
            9,
            series(
                "Same-day claims: projected done, against now",
                (
                    "claimflow_client_same_day_projected_done_timestamp_seconds"
                    '{client_id=~"$client"} - on() group_left() claimflow_event_time_seconds',
                    "{{client_id}}",
                ),
                unit="s",
                runbook="client-same-day-at-risk",
            ),
            series(
                "Same-day at-risk verdicts per client",
                (
                    'claimflow_alert_active{alert="ClientSameDayAtRisk",client_id=~"$client"}',
                    "{{client_id}}",
                ),
                (
                    "sum by (hub_id, center_id) "
                    '(claimflow_break_same_day_claims{client_id=~"$client"})',
                    "behind {{hub_id}} -> {{center_id}}",
                ),
                runbook="client-same-day-at-risk",
            ),
        ),
    )


def customer_feedback() -> Dashboard:
    """Survey answers by score and the negative share, per client."""
    return _board(
        "claimflow-feedback",
        "claimflow / Customer feedback",
        "Survey responses by score, negative share per client. Comments are on the wall "
        "page, never in metrics.",
        "1m",
        ("client",),
        (
            9,
            bar_gauge(
                "Responses by score (last 24 h)",
                'sum by (score) (increase(claimflow_survey_responses_total{client_id=~"$client"}'
                "[1d]))",
                "score {{score}}",
                [(GREEN, 0.0)],
                runbook="feedback-surge",
            ),
            bar_gauge(
                "Negative share per client (scores 1-2, last 24 h)",
                'job_client_id:claimflow_survey_negative:ratio1d{client_id=~"$client"}',
                "{{client_id}}",
                [(GREEN, 0.0), (AMBER, 0.2), (RED, 0.35)],
                unit="percentunit",
                runbook="feedback-surge",
                max_=1,
            ),
        ),
        (
            8,
            series(
                "Feedback alerts open",
                (
                    'claimflow_alert_active{alert="NegativeFeedbackSurge",client_id=~"$client"}'
                    ' or claimflow_alerts_open{alert="NegativeFeedbackSurge"}',
                    "{{client_id}} {{team}}",
                ),
                runbook="feedback-surge",
            ),
        ),
    )


BOARDS = {
    "claims-wall": claims_wall,
    "hub-link": hub_link,
    "sla-risk": sla_risk,
    "customer-feedback": customer_feedback,
}


def _plain(value: Any) -> Any:
    """grafanalib objects as JSON data (what its private encoder does, in public)."""
    if hasattr(value, "to_json_data"):
        return _plain(value.to_json_data())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _clean(value: Any) -> Any:
    """Drop nulls and the legacy keys, recursively; datasource references as {type, uid}."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in LEGACY or item is None:
                continue
            ref = key == "datasource" and not isinstance(item, dict)
            out[key] = DATASOURCE if ref else _clean(item)
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _panel(panel: dict[str, Any], links: list[dict[str, Any]]) -> dict[str, Any]:
    """Where grafanalib lags the current schema: units, thresholds and min/max in
    fieldConfig.defaults (bar gauges keep them in the pre-7 `fieldOptions`), the first
    threshold step's base as a JSON null, overrides always present."""
    options = panel.setdefault("options", {})
    legacy = options.pop("fieldOptions", {}) or {}
    fc = panel.setdefault("fieldConfig", {})
    defaults = fc.setdefault("defaults", {})
    for key, item in (legacy.get("defaults") or {}).items():
        defaults.setdefault(key, item)
    for key in ("thresholds", "mappings"):
        if key in legacy and key not in defaults:
            defaults[key] = legacy[key]
    defaults.setdefault("unit", "short")
    fc.setdefault("overrides", legacy.get("overrides") or [])
    steps = defaults.get("thresholds", {}).get("steps", [])
    for step in steps:
        step.pop("index", None)
        step.pop("op", None)
        step.pop("line", None)
        step.pop("yaxis", None)
        if step.get("value") in ("null", None):
            step["value"] = None
    if steps:
        steps[0]["value"] = None
        defaults["thresholds"].setdefault("mode", "absolute")
    panel["links"] = [*links, BOARD_LINK]
    for key in ("color", "columns", "fontSize", "mappings", "styles"):
        panel.pop(key, None)  # the pre-7 table's own fields
    panel["datasource"] = DATASOURCE
    return panel


def board_json(board: Dashboard) -> dict[str, Any]:
    """The board in the current dashboard schema (grafanalib's output, post-processed)."""
    raw: dict[str, Any] = _plain(board)
    raw.pop("id", None)
    data: dict[str, Any] = _clean(raw)
    for panel in data["panels"]:
        for target in panel.get("targets", []):
            target.pop("query", None)  # a copy of expr grafanalib writes for old Grafana
        _panel(panel, [link for link in panel.get("links", []) if "url" in link])
    for variable in data["templating"]["list"]:
        variable.get("current", {}).pop("tags", None)
    data["schemaVersion"] = SCHEMA_VERSION
    data["graphTooltip"] = 1
    data["links"] = [BOARD_LINK]
    data["timepicker"] = {}
    data["tags"] = ["claimflow"]
    data["annotations"] = {"list": []}
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
