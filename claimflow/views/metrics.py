"""Prometheus metrics, read from engine state when Prometheus scrapes.

A scrape-time collector, not gauges set as events arrive: the live worker passes its engine
while it owns the sequenced partition, and none otherwise, so an engine that moved to another
worker disappears from this worker's output instead of going stale. A worker holds at most
one engine: each label set is one figure of it, except the counts of values exported as
`other`, which add up.

Labels are bounded: team, client, hub, center, reason, SLA or deadline class, alert name,
score, reference day. Never a claim id, never a survey comment. Team, client, hub and
center values are those of the configuration: anything else (a survey from a client the
configuration does not list, an alert scoped to one) is exported as `other`, so the number
of series is bounded by the configuration whatever the input holds; such surveys are
counted in `claimflow_unknown_scope_total{kind="client"}`. (Events of unknown teams and
hubs are refused at ingest, `claimflow_rejected_events_total{reason="unknown_team"}`...,
so they never reach a label.)
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import GCCollector, Info, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from claimflow.engine import Alert, Engine
from claimflow.engine.alerts import ALERT_NAMES
from claimflow.timeutil import DAY

Labels = tuple[str, ...]
# Every label an alert's scope can have; one that does not apply to an alert is left empty.
ALERT_SCOPE = ("alert", "team", "client_id", "hub_id", "center_id")
OTHER = "other"  # the label value of every team, client, hub or center not configured


@dataclass
class _Family:
    name: str
    doc: str
    labels: tuple[str, ...]
    counter: bool = False
    samples: dict[Labels, float] = field(default_factory=dict)

    def add(self, labels: Labels, value: float) -> None:
        """Add `value` to the label set's figure: several values land on one label set only
        when they are counts of things exported as `other` (surveys of unknown clients)."""
        self.samples[labels] = self.samples.get(labels, 0.0) + value

    def metric(self) -> Metric:
        family_type = CounterMetricFamily if self.counter else GaugeMetricFamily
        family = family_type(self.name, self.doc, labels=list(self.labels))
        for labels, value in sorted(self.samples.items()):
            family.add_metric(list(labels), value)
        return family


def _families() -> dict[str, _Family]:
    families = [
        _Family("claimflow_events", "Events counted, by type.", ("type",), counter=True),
        _Family(
            "claimflow_rejected_events",
            "Input refused (dead-lettered), by reason.",
            ("reason",),
            counter=True,
        ),
        _Family(
            "claimflow_event_time_seconds",
            "Event time (Unix seconds) up to which everything has been applied and judged.",
            (),
        ),
        _Family(
            "claimflow_arrivals", "Claims arrived at the center, by team.", ("team",), counter=True
        ),
        _Family("claimflow_completions", "Claims completed, by team.", ("team",), counter=True),
        _Family(
            "claimflow_completions_without_arrival",
            "Completions of claims the engine never saw arrive (a lost or never-sent arrival); "
            "counted in claimflow_completions_total but left out of the team's pace.",
            ("team",),
            counter=True,
        ),
        _Family(
            "claimflow_team_inflow_claims",
            "Claims arrived in the trailing inflow window (detectors.inflow_drop.window).",
            ("team",),
        ),
        _Family(
            "claimflow_team_inflow_baseline_claims",
            "Seasonal expectation for the same window (median of the reference days); absent "
            "while the baseline warms up and on holidays.",
            ("team",),
        ),
        _Family(
            "claimflow_team_inflow_reference_claims",
            "Arrivals in the same clock window on a reference day (1d: yesterday, 7d: a week ago).",
            ("team", "reference"),
        ),
        _Family(
            "claimflow_hub_inflow_claims",
            "Claims arrived from a hub in the trailing inflow window.",
            ("hub_id",),
        ),
        _Family(
            "claimflow_hub_inflow_baseline_claims",
            "Seasonal expectation of a hub's arrivals for the same window.",
            ("hub_id",),
        ),
        _Family(
            "claimflow_backlog_claims",
            "Open claims by SLA class (overdue, due_today, due_later in the team's time zone).",
            ("team", "sla_class"),
        ),
        _Family(
            "claimflow_oldest_open_claim_age_seconds",
            "Age of the team's oldest open claim since it arrived.",
            ("team",),
        ),
        _Family(
            "claimflow_claims_at_risk",
            "Claims projected to miss their deadline at the team's current pace.",
            ("team", "deadline_class"),
        ),
        _Family(
            "claimflow_deadline_due_claims",
            "Open claims due at upcoming deadlines (today in the team's time zone, or later).",
            ("team", "deadline_class"),
        ),
        _Family(
            "claimflow_deadline_needed_claims_per_hour",
            "Pace needed to clear every claim due by the most demanding upcoming deadline of "
            "the class, claims per working hour.",
            ("team", "deadline_class"),
        ),
        _Family(
            "claimflow_team_throughput_claims_per_hour",
            "The team's measured pace: claims completed per busy working hour.",
            ("team",),
        ),
        _Family(
            "claimflow_claims_in_transit",
            "Claims dispatched by the hub and not arrived yet.",
            ("hub_id", "center_id"),
        ),
        _Family(
            "claimflow_claims_missing",
            "Claims in transit for longer than the route's transit timeout.",
            ("hub_id", "center_id"),
        ),
        _Family(
            "claimflow_hub_link_up",
            "1 while the route is not in a HubLinkBreak episode, else 0.",
            ("hub_id", "center_id"),
        ),
        _Family(
            "claimflow_hub_last_arrival_timestamp_seconds",
            "Event time of the route's last arrival.",
            ("hub_id", "center_id"),
        ),
        _Family(
            "claimflow_transit_time_seconds",
            "Hub-to-center transit time over the route's last 1,000 arrivals, by percentile "
            "(50, 90, 99).",
            ("hub_id", "center_id", "percentile"),
        ),
        _Family(
            "claimflow_hub_dispatched_claims",
            "Claims the hub dispatched on the route in the trailing inflow window.",
            ("hub_id", "center_id"),
        ),
        _Family(
            "claimflow_hub_arrived_claims",
            "Claims that arrived over the route in the trailing inflow window.",
            ("hub_id", "center_id"),
        ),
        _Family(
            "claimflow_transit_timeout_seconds",
            "Age at which a claim in transit counts as missing (1% of healthy claims take "
            "longer; learned per route).",
            ("hub_id", "center_id"),
        ),
        _Family(
            "claimflow_survey_responses",
            "Survey answers by client and score (1 worst).",
            ("client_id", "score"),
            counter=True,
        ),
        _Family(
            "claimflow_unknown_scope",
            "Events accepted for a scope the configuration does not list, by kind: survey "
            f"responses of unknown clients (kind=client, exported under client_id=`{OTHER}`). "
            "Unknown teams and hubs are refused at ingest (claimflow_rejected_events_total).",
            ("kind",),
            counter=True,
        ),
        _Family("claimflow_alerts_open", "Open alert episodes, by alert.", ("alert",)),
        _Family(
            "claimflow_alert_active",
            "1 for each open alert episode, with its scope (labels that do not apply are "
            "empty); Prometheus alert rules page on it.",
            ALERT_SCOPE,
        ),
        _Family(
            "claimflow_alert_since_timestamp_seconds",
            "Event time the open episode's condition started (its `since`, else when it fired).",
            ALERT_SCOPE,
        ),
        # What a break means for the clients (claimflow/engine/impact.py).
        _Family(
            "claimflow_client_delayed_claims",
            "Claims of the client dispatched on the route and not arrived (in transit or "
            "missing) while the route has an open HubLinkBreak; 0 otherwise.",
            ("client_id", "hub_id", "center_id"),
        ),
        _Family(
            "claimflow_client_same_day_claims",
            "The client's same-day claims due today: open (not done, stuck ones included), "
            "stuck (not arrived yet), at_risk (projected to miss today's deadline).",
            ("client_id", "state"),
        ),
        _Family(
            "claimflow_client_same_day_projected_done_timestamp_seconds",
            "When the client's same-day claims due today are projected to be done at the "
            "current pace (absent while there are none or no pace is known).",
            ("client_id",),
        ),
        _Family(
            "claimflow_break_same_day_claims",
            "Claims missing on a broken route that are entitled to same-day service today.",
            ("hub_id", "center_id", "client_id"),
        ),
    ]
    return {f.name: f for f in families}


class EngineCollector(Collector):
    """Exports, at scrape time, the state of the engine `engines()` returns: a worker holds
    at most one (none while another worker owns the sequenced partition)."""

    def __init__(self, engines: Callable[[], Iterable[Engine]]) -> None:
        self.engines = engines

    def collect(self) -> Iterator[Metric]:
        families = _families()
        engines = list(self.engines())
        if len(engines) > 1:
            raise ValueError(f"{len(engines)} engines to export: a worker holds at most one")
        for engine in engines:
            _sample(engine, families)
        for family in families.values():
            yield family.metric()


class _Known:
    """The configured values of each scope label; anything else becomes OTHER."""

    def __init__(self, engine: Engine) -> None:
        self.values = {
            "team": frozenset(engine.teams),
            "client_id": frozenset(c.id for c in engine.config.clients),
            "hub_id": frozenset(engine.hub_centers),
            "center_id": frozenset(c for cs in engine.hub_centers.values() for c in cs),
        }

    def bound(self, label: str, value: str) -> str:
        known = self.values.get(label)
        return value if known is None or not value or value in known else OTHER


def _sample(engine: Engine, f: dict[str, _Family]) -> None:
    known = _Known(engine)
    f["claimflow_unknown_scope"].add(("client",), 0)
    for kind, n in engine.accepted.items():
        f["claimflow_events"].add((kind,), n)
    for reason, n in engine.rejected.items():
        f["claimflow_rejected_events"].add((reason,), n)
    for name in ALERT_NAMES:
        f["claimflow_alerts_open"].add((name,), sum(1 for (a, _) in engine.book.open if a == name))
    # Open alerts whose scopes are exported as `other` share a label set: active once, since
    # the first of them.
    since: dict[Labels, float] = {}
    for (name, _), alert in engine.book.open.items():
        scope = (name, *(known.bound(lbl, alert.labels.get(lbl, "")) for lbl in ALERT_SCOPE[1:]))
        first = _since(alert)
        since[scope] = min(since.get(scope, first), first)
    for scope, first in sorted(since.items()):
        f["claimflow_alert_active"].add(scope, 1)
        f["claimflow_alert_since_timestamp_seconds"].add(scope, first)
    if engine.watermark == float("-inf"):
        return  # nothing applied yet: no event time, no windows
    now = engine.watermark
    f["claimflow_event_time_seconds"].add((), now)
    _inflow(engine, now, f)
    _backlog(engine, now, f)
    _links(engine, now, f)
    _clients(engine, f)
    for (client, score), n in engine.feedback.answer_counts().items():
        shown = known.bound("client_id", client)
        if shown != client:
            f["claimflow_unknown_scope"].add(("client",), n)
        f["claimflow_survey_responses"].add((shown, str(score)), n)


def _since(alert: Alert) -> float:
    since = alert.details.get("since")
    if isinstance(since, str):
        try:
            return datetime.fromisoformat(since).timestamp()
        except ValueError:
            pass
    return alert.at


def _inflow(engine: Engine, now: float, f: dict[str, _Family]) -> None:
    inflow = engine.inflow
    for team in sorted(engine.teams):
        f["claimflow_arrivals"].add((team,), inflow.arrived_total.get(team, 0))
        seen = inflow.read(("team", team), now)
        f["claimflow_team_inflow_claims"].add((team,), seen.observed)
        if seen.expected is not None:
            f["claimflow_team_inflow_baseline_claims"].add((team,), seen.expected)
            for offset, count in seen.references:
                f["claimflow_team_inflow_reference_claims"].add(
                    (team, f"{round(offset / DAY)}d"), count
                )
    for hub in sorted(engine.hub_centers):
        seen = inflow.read(("hub", hub), now)
        f["claimflow_hub_inflow_claims"].add((hub,), seen.observed)
        if seen.expected is not None:
            f["claimflow_hub_inflow_baseline_claims"].add((hub,), seen.expected)


def _backlog(engine: Engine, now: float, f: dict[str, _Family]) -> None:
    for team in engine.backlog.scopes():
        view = engine.backlog.read(team, now)
        f["claimflow_completions"].add((team,), view.completed_total)
        f["claimflow_completions_without_arrival"].add((team,), view.completions_without_arrival)
        for sla_class, n in view.by_class.items():
            f["claimflow_backlog_claims"].add((team, sla_class), n)
        if view.oldest_arrival is not None:
            f["claimflow_oldest_open_claim_age_seconds"].add(
                (team,), max(0.0, now - view.oldest_arrival)
            )
        for due_class, (due, misses, needed) in view.outlook.items():
            f["claimflow_claims_at_risk"].add((team, due_class), misses)
            f["claimflow_deadline_due_claims"].add((team, due_class), due)
            if needed is not None:
                f["claimflow_deadline_needed_claims_per_hour"].add((team, due_class), needed)
        if view.pace_per_hour is not None:
            f["claimflow_team_throughput_claims_per_hour"].add((team,), view.pace_per_hour)


def _links(engine: Engine, now: float, f: dict[str, _Family]) -> None:
    links = engine.links
    end = now // engine.window * engine.window
    start = end - engine.inflow.settings.window
    for route in sorted(links.routes):
        view = links.read(route, now)
        f["claimflow_hub_dispatched_claims"].add(
            route, links.dispatched.window_sum(route, start, end)
        )
        f["claimflow_hub_arrived_claims"].add(route, links.arrivals.window_sum(route, start, end))
        for share, value in view.transit_quantiles.items():
            f["claimflow_transit_time_seconds"].add((*route, str(round(share * 100))), value)
        f["claimflow_claims_in_transit"].add(route, view.in_transit)
        f["claimflow_claims_missing"].add(route, view.missing)
        f["claimflow_hub_link_up"].add(route, int(view.link_up))
        if view.missing_after is not None:
            f["claimflow_transit_timeout_seconds"].add(route, view.missing_after)
        if view.last_arrival is not None:
            f["claimflow_hub_last_arrival_timestamp_seconds"].add(route, view.last_arrival)


def register_service_metrics(registry: CollectorRegistry, app_id: str) -> None:
    """What every service exports: process_* (CPU, memory, file descriptors), python_*
    (interpreter, garbage collector) and claimflow_build_info{version,...} = 1, so a
    dashboard can tell which build runs where."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)

    def _version(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    build = Info("claimflow_build", "The running claimflow build.", registry=registry)
    build.info(
        {
            "version": _version("claimflow"),
            "python_version": platform.python_version(),
            "faust_version": _version("faust-streaming"),
            "app_id": app_id,
        }
    )


def _clients(engine: Engine, f: dict[str, _Family]) -> None:
    """Per client (configured ones, the rest as `other`): break impact and same-day claims,
    as of the engine's last evaluation window."""
    impact = engine.impact
    for client in impact.client_labels:
        day = impact.client_days.get(client)
        for state, n in (
            ("open", day.open if day else 0),
            ("stuck", day.stuck if day else 0),
            ("at_risk", day.at_risk if day else 0),
        ):
            f["claimflow_client_same_day_claims"].add((client, state), n)
        if day is not None and day.projected_done is not None:
            f["claimflow_client_same_day_projected_done_timestamp_seconds"].add(
                (client,), day.projected_done
            )
        for route in sorted(engine.links.routes):
            hit = impact.routes.get(route, {}).get(client)
            f["claimflow_client_delayed_claims"].add((client, *route), hit.in_transit if hit else 0)
            f["claimflow_break_same_day_claims"].add(
                (*route, client), hit.same_day_today if hit else 0
            )
