"""Recording rules, alerts, Alertmanager routing and the prometheus-operator objects, as code
next to the boards (the monitoring-mixin way). `claimflow rules build` writes them into
deploy/; `--check` fails when the committed files are stale.

One place holds what every rule shares: the job selector, the runbook base URL, the
severities. Metric names are the ones claimflow/views/metrics.py exports.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

#: The scrape job every rule selects on; the scrape configs in deploy/ name their job so.
JOB = "claimflow"
SELECTOR = f'job="{JOB}"'
#: Where the runbooks are published; change this one string when the repository moves.
RUNBOOK_BASE = "https://github.com/claimflow/claimflow/blob/main/docs/runbooks/"
CRITICAL, WARNING = "critical", "warning"
SERVICE_LABELS = {"service": "claimflow"}

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def runbook(name: str) -> str:
    return f"{RUNBOOK_BASE}{name}.md"


def sel(metric: str, *matchers: str) -> str:
    """`metric{job="claimflow",...}`: every raw series a rule reads goes through here."""
    return f"{metric}{{{','.join((SELECTOR, *matchers))}}}"


def verdict(alert: str, by: str) -> str:
    """The detector's verdict for `alert`, one series per `by` labels, 1 while open."""
    active = sel("claimflow_alert_active", f'alert="{alert}"')
    return f"max by ({by}) ({active}) == 1"


def recording_rules() -> list[dict[str, Any]]:
    """`level:metric:operation` names; `job` stays among the levels so boards can filter."""
    negative = sel("claimflow_survey_responses_total", 'score=~"1|2"')
    every = sel("claimflow_survey_responses_total")
    return [
        {
            "record": "job_team:claimflow_team_inflow:ratio",
            "expr": f"{sel('claimflow_team_inflow_claims')}"
            f" / {sel('claimflow_team_inflow_baseline_claims')}",
        },
        {
            "record": "job_team:claimflow_backlog_claims:sum",
            "expr": f"sum by (job, team) ({sel('claimflow_backlog_claims')})",
        },
        {
            "record": "job_team:claimflow_claims_at_risk:sum",
            "expr": f"sum by (job, team) ({sel('claimflow_claims_at_risk')})",
        },
        {
            "record": "job_team:claimflow_completions:rate1h",
            "expr": f"sum by (job, team) (rate({sel('claimflow_completions_total')}[1h])) * 3600",
        },
        {
            "record": "job_team:claimflow_arrivals:rate1h",
            "expr": f"sum by (job, team) (rate({sel('claimflow_arrivals_total')}[1h])) * 3600",
        },
        {
            "record": "job_client_id:claimflow_survey_negative:ratio1d",
            "expr": f"sum by (job, client_id) (increase({negative}[1d]))\n"
            f"  / sum by (job, client_id) (increase({every}[1d]))",
        },
        {
            "record": "job_reason:claimflow_rejected_events:rate5m",
            "expr": f"sum by (job, reason) (rate({sel('claimflow_rejected_events_total')}[5m]))",
        },
        {
            "record": "job_topic:claimflow_input_lag_messages:sum",
            "expr": f"sum by (job, topic) ({sel('claimflow_input_lag_messages')})",
        },
    ]


def _alert(
    name: str,
    expr: str,
    severity: str,
    summary: str,
    description: str,
    page: str,
    for_: str | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **SERVICE_LABELS}
    rule["annotations"] = {
        "summary": summary,
        "description": " ".join(description.split()),
        "runbook_url": runbook(page),
    }
    return rule


LOST = sel("claimflow_input_gap_records_total", 'outcome="lost"')


def alert_rules() -> list[dict[str, Any]]:
    """Static summaries (they group well), descriptions with the labels that tell where."""
    return [
        _alert(
            "ClaimflowHubLinkBreak",
            verdict("HubLinkBreak", "job, hub_id, center_id"),
            CRITICAL,
            "Claims from a data hub are not reaching their processing center.",
            """Claims dispatched by data hub {{ $labels.hub_id }} have not arrived at
            {{ $labels.center_id }} long after the normal transit time, or a silence its
            normal rate makes improbable. Missing claims and since when: the worker's /it/breaks
            and /it/transit?hub_id={{ $labels.hub_id }}&center_id={{ $labels.center_id }}.""",
            "hub-link-break",
        ),
        _alert(
            "ClaimflowInflowDrop",
            verdict("InflowDrop", "job, team, hub_id"),
            CRITICAL,
            "Claim inflow is far below its seasonal baseline.",
            """Claims arriving for team "{{ $labels.team }}" hub "{{ $labels.hub_id }}" are far
            below the seasonal baseline (same time yesterday and on the same weekday in past
            weeks). Inhibited while a break of the same hub explains it.""",
            "inflow-drop",
        ),
        _alert(
            "ClaimflowSlaAtRisk",
            verdict("SlaAtRisk", "job, team"),
            WARNING,
            "A team will miss a deadline at its current pace.",
            """At {{ $labels.team }}'s recent throughput, claims due at an upcoming deadline
            will not all be done in time. Claims at risk per deadline: the SLA risk board.
            Move people before the deadline.""",
            "sla-at-risk",
        ),
        _alert(
            "ClaimflowNegativeFeedbackSurge",
            verdict("NegativeFeedbackSurge", "job, client_id, team"),
            WARNING,
            "Negative survey answers are surging.",
            """Survey scores of 1 or 2 are well above their normal share for client
            "{{ $labels.client_id }}" team "{{ $labels.team }}". Comments are on the wall
            page, not here.""",
            "feedback-surge",
        ),
        _alert(
            "ClaimflowClientSameDayAtRisk",
            verdict("ClientSameDayAtRisk", "job, client_id"),
            WARNING,
            "A client's same-day claims will not all be done today.",
            """Client {{ $labels.client_id }}'s same-day claims are projected to finish after
            today's cut-off (open, stuck or behind a broken hub link). Per client: the SLA
            risk board. Routed to the client's account manager.""",
            "client-same-day-at-risk",
        ),
        _alert(
            "ClaimflowInputRecordsLost",
            f"sum by (job) (increase({LOST}[10m])) > 0",
            CRITICAL,
            "Input records were lost before claimflow could count them.",
            """{{ $value | humanize }} input records in the last 10 minutes fell into a gap
            that could not be recovered from the source: counts and alerts for that span
            undercount.""",
            "input-records-lost",
        ),
        _alert(
            "ClaimflowConfigReloadFailing",
            f"sum by (job, instance) (increase({sel('claimflow_config_reload_errors_total')}"
            "[15m])) > 0",
            WARNING,
            "A claimflow worker cannot load its changed agreements.",
            """Worker {{ $labels.instance }} failed to reload the agreements or roster file in
            the last 15 minutes and keeps running on the last good version. Its log names the
            file, key and problem.""",
            "config-reload-failing",
        ),
        _alert(
            "ClaimflowSnapshotRefused",
            f"sum by (job, instance, reason) (increase({sel('claimflow_snapshot_refused_total')}"
            "[1h])) > 0",
            WARNING,
            "A claimflow worker refused a state snapshot.",
            """Worker {{ $labels.instance }} refused a detector state snapshot (reason
            {{ $labels.reason }}) and rebuilt the state from the input instead; counts are
            right but the takeover was slower.""",
            "snapshot-refused",
        ),
        _alert(
            "ClaimflowWorkerDown",
            f"up{{{SELECTOR}}} == 0",
            CRITICAL,
            "A claimflow worker cannot be scraped.",
            """Prometheus cannot scrape {{ $labels.instance }} for 2 minutes. Other workers
            take its partitions over after the session timeout; if it ran the detectors,
            detection pauses until another worker has loaded their state.""",
            "worker-down",
            for_="2m",
        ),
        _alert(
            "ClaimflowDetectorsNotRunning",
            f"max by (job) ({sel('claimflow_detector_active')}) == 0\n"
            f"  or absent({sel('claimflow_detector_active')})",
            CRITICAL,
            "No claimflow worker is running the detectors.",
            """No worker of job {{ $labels.job }} has owned the sequenced partition for 3
            minutes: nothing is judged, no claimflow alert can fire.""",
            "worker-down",
            for_="3m",
        ),
        _alert(
            "ClaimflowNotConsuming",
            f"sum by (job) ({sel('claimflow_input_lag_messages')}) > 0\n"
            f"  and on (job) max by (job) (changes({sel('claimflow_event_time_seconds')}[10m]))"
            " == 0",
            CRITICAL,
            "claimflow is not consuming its input.",
            """{{ $value }} input records are waiting and event time has not moved for 10
            minutes: the workers are stuck or cannot reach Kafka.""",
            "not-consuming",
            for_="5m",
        ),
        _alert(
            "ClaimflowDeadLettersRising",
            f"sum by (job, reason) (increase({sel('claimflow_rejected_events_total')}[10m])) > 50",
            WARNING,
            "Input records are being refused into the dead-letter topic.",
            """{{ $value | humanize }} records refused with reason {{ $labels.reason }} in 10
            minutes. Each record is in the claimflow.deadletter topic with its bytes and
            source.""",
            "dead-letters",
            for_="5m",
        ),
        _alert(
            "ClaimflowWorkerErrors",
            f"sum by (job, instance) (increase({sel('claimflow_worker_errors_total')}[10m])) > 0",
            WARNING,
            "A claimflow worker logged processing errors.",
            """Worker {{ $labels.instance }} failed on a record or could not write a snapshot;
            it logs the traceback. Detection goes on, but this is a bug to report.""",
            "worker-errors",
        ),
    ]


def rule_groups() -> dict[str, Any]:
    return {
        "groups": [
            {"name": "claimflow.recording", "rules": recording_rules()},
            {"name": "claimflow.alerts", "rules": alert_rules()},
        ]
    }


#: Who gets what. Replace with your own receivers (any Alertmanager receiver configuration:
#: webhook_configs, pagerduty_configs, slack_configs, ...) in a values file and build with
#: `claimflow rules build --receivers FILE`. `clients` routes a client's alerts to its
#: account manager's receiver.
DEFAULT_RECEIVERS: dict[str, Any] = {
    "receivers": {
        "oncall": {"webhook_configs": [{"url": "http://alert-relay.invalid/oncall"}]},
        "operations": {"webhook_configs": [{"url": "http://alert-relay.invalid/operations"}]},
        "account-managers": {
            "webhook_configs": [{"url": "http://alert-relay.invalid/account-managers"}]
        },
    },
    "clients": {},
}


def alertmanager_config(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Routing and inhibition. Inhibitions are `equal` on the labels that make the source the
    cause of the target, never on a label every alert shares."""
    values = copy.deepcopy(values or DEFAULT_RECEIVERS)
    receivers = values["receivers"]
    for name in ("oncall", "operations", "account-managers"):
        if name not in receivers:
            raise ValueError(f"receivers: {name!r} is missing")
    client_routes: list[dict[str, Any]] = [
        {
            "matchers": [f'client_id="{client}"'],
            "receiver": receiver,
        }
        for client, receiver in sorted(values.get("clients", {}).items())
    ]
    account = {
        "matchers": ['alertname="ClaimflowClientSameDayAtRisk"', 'client_id=~".+"'],
        "receiver": "account-managers",
        "group_by": ["alertname", "client_id"],
        "continue": True,
    }
    if client_routes:
        account["routes"] = client_routes
    return {
        "route": {
            "receiver": "operations",
            "group_by": ["alertname", "job", "hub_id", "center_id", "team", "client_id"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "4h",
            "routes": [
                account,
                {"matchers": [f'severity="{CRITICAL}"'], "receiver": "oncall"},
            ],
        },
        "receivers": [{"name": name, **config} for name, config in sorted(receivers.items())],
        "inhibit_rules": [
            {
                # A broken hub starves what it feeds: the inflow drop of that same hub is its
                # echo, not a second incident.
                "source_matchers": ['alertname="ClaimflowHubLinkBreak"'],
                "target_matchers": ['alertname="ClaimflowInflowDrop"', 'hub_id=~".+"'],
                "equal": ["job", "hub_id"],
            },
            {
                # A team's (or client's) drop: the team-level verdict does not say which hub
                # its claims come through, and the agreements let every hub feed every team
                # of its centers, so any break of the same job explains it. Narrow this to
                # `equal: [job, hub_id]` once the detector puts hub_id on team-level verdicts.
                "source_matchers": ['alertname="ClaimflowHubLinkBreak"'],
                "target_matchers": ['alertname="ClaimflowInflowDrop"', 'hub_id=""'],
                "equal": ["job"],
            },
            {
                # With no worker running the detectors, a frozen event time means nothing new.
                "source_matchers": [
                    'alertname=~"ClaimflowWorkerDown|ClaimflowDetectorsNotRunning"'
                ],
                "target_matchers": ['alertname="ClaimflowNotConsuming"'],
                "equal": ["job"],
            },
        ],
    }


def prometheus_rule() -> dict[str, Any]:
    """The same groups as a prometheus-operator PrometheusRule."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "claimflow",
            "labels": {"app.kubernetes.io/name": "claimflow", "role": "alert-rules"},
        },
        "spec": rule_groups(),
    }


def service_monitor() -> dict[str, Any]:
    """Scrapes every worker through the headless Service (deploy/kubernetes); the job label
    is set to JOB, which the rules select on."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": "claimflow-worker",
            "labels": {"app.kubernetes.io/name": "claimflow-worker"},
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "claimflow-worker"}},
            "endpoints": [
                {
                    "port": "web",
                    "path": "/metrics",
                    "interval": "15s",
                    "relabelings": [
                        {"action": "replace", "targetLabel": "job", "replacement": JOB}
                    ],
                }
            ],
        },
    }


def operator_kustomization() -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "claimflow",
        "resources": ["prometheusrule.yaml", "servicemonitor.yaml"],
    }


HEADER = "# Generated by `claimflow rules build` from dashboards/mixin.py: edit that, not this.\n"


def _yaml(data: Any) -> str:
    return HEADER + yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)


def outputs(values: dict[str, Any] | None = None) -> dict[Path, str]:
    """Every generated file, relative to the repository root. deploy/kubernetes/files/ holds
    copies of the files its ConfigMaps carry, so `kubectl apply -k` needs no flags."""
    from claimflow.dashboards.boards import BOARDS, render  # noqa: PLC0415 (imports us)

    rules = _yaml(rule_groups())
    alertmanager = _yaml(alertmanager_config(values))
    files = Path("deploy/kubernetes/files")
    out = {
        Path("deploy/prometheus/claimflow-rules.yml"): rules,
        Path("deploy/alertmanager/alertmanager.yml"): alertmanager,
        files / "claimflow-rules.yml": rules,
        files / "alertmanager.yml": alertmanager,
        files / "claimflow.yaml": (ROOT / "claimflow/data/claimflow.yaml").read_text(),
        Path("deploy/kubernetes/operator/prometheusrule.yaml"): _yaml(prometheus_rule()),
        Path("deploy/kubernetes/operator/servicemonitor.yaml"): _yaml(service_monitor()),
        Path("deploy/kubernetes/operator/kustomization.yaml"): _yaml(operator_kustomization()),
    }
    for name, make in BOARDS.items():
        out[files / f"{name}.json"] = render(make())
    return out


def build(
    root: Path = ROOT, check: bool = False, values: dict[str, Any] | None = None
) -> list[str]:
    """Write the files under `root`; with `check`, write nothing and return the stale ones."""
    stale = []
    for rel, text in outputs(values).items():
        path = root / rel
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(rel))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return stale
