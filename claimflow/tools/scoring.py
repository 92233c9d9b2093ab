"""Scoring alerts against a scenario's ground truth: detection delays and false alarms.

A fault is detected by the first `firing` alert of its expected kind whose labels include
the fault's labels, raised between the fault's start and `grace` after its end. A firing
alert is a false alarm unless some fault explains it: its expected alert with matching
labels, or one of the fault's allowed consequences (a hub break also drops team inflow),
raised from an hour before the fault to `aftermath` after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from claimflow.engine import Alert
from claimflow.timeutil import HOUR


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Detection:
    fault: dict[str, Any]
    alert: Alert | None

    @property
    def delay(self) -> float | None:
        return None if self.alert is None else self.alert.at - _epoch(self.fault["start"])


@dataclass(frozen=True)
class Score:
    detections: list[Detection]
    false_alarms: list[Alert]

    def render(self) -> str:
        lines = []
        for d in self.detections:
            f = d.fault
            delay = "MISSED" if d.delay is None else f"after {d.delay / 60:.0f} min"
            lines.append(f"{f['kind']} {f['labels']} from {f['start']}: {f['expect']} {delay}")
        lines.append(f"false alarms: {len(self.false_alarms)}")
        lines += [f"  {a.alert} {a.labels} at {a.to_dict()['at']}" for a in self.false_alarms]
        return "\n".join(lines)


def _covers(alert: Alert, labels: dict[str, str]) -> bool:
    return all(alert.labels.get(k) == v for k, v in labels.items())


def score(
    alerts: list[Alert],
    truth: dict[str, Any],
    grace: float = 2 * HOUR,
    aftermath: float = 36 * HOUR,
) -> Score:
    firing = [a for a in alerts if a.state == "firing"]
    detections = []
    for fault in truth["faults"]:
        start, end = _epoch(fault["start"]), _epoch(fault["end"])
        match = next(
            (
                a
                for a in firing
                if a.alert == fault["expect"]
                and _covers(a, fault["labels"])
                and start <= a.at <= end + grace
            ),
            None,
        )
        detections.append(Detection(fault, match))

    def explained(alert: Alert) -> bool:
        for fault in truth["faults"]:
            start, end = _epoch(fault["start"]), _epoch(fault["end"])
            if not start - HOUR <= alert.at <= end + aftermath:
                continue
            if alert.alert == fault["expect"] and _covers(alert, fault["labels"]):
                return True
            if alert.alert in fault["allow"]:
                return True
            # The client's view of an SLA risk: explained wherever the team's risk is.
            if alert.alert == "ClientSameDayAtRisk" and "SlaAtRisk" in (
                fault["expect"],
                *fault["allow"],
            ):
                return True
        return False

    return Score(detections, [a for a in firing if not explained(a)])


# --- detection quality (benchmarks/detection_quality.py; docs/detection-benchmark.md) ---

YEAR = 365 * 24 * HOUR
QUARTER = YEAR / 4


@dataclass(frozen=True)
class Timing:
    """One fault's detection against its physical limit, in seconds after its start."""

    kind: str
    delay: float | None
    limit: float | None

    @property
    def excess(self) -> float | None:
        """Delay beyond the physical limit: what a better detector could still win."""
        if self.delay is None or self.limit is None:
            return None
        return self.delay - self.limit


def timings(alerts: list[Alert], truth: dict[str, Any], grace: float = 2 * HOUR) -> list[Timing]:
    """Each fault's delay (first matching firing alert minus start) and physical limit."""
    out = []
    for d in score(alerts, truth, grace).detections:
        start = _epoch(d.fault["start"])
        limit = d.fault.get("physical_limit")
        out.append(
            Timing(d.fault["kind"], d.delay, None if limit is None else _epoch(limit) - start)
        )
    return out


def rate_per(count: int, scopes: int, seconds: float, unit: float) -> float:
    """False alarms per scope per `unit` (YEAR for routes, QUARTER for the other scopes)."""
    if scopes <= 0 or seconds <= 0:
        raise ValueError("need at least one scope and a positive span")
    return count / (scopes * seconds / unit)


def offset_rule(
    arrivals: dict[str, list[float]],
    start: float,
    end: float,
    step: float = 60.0,
    window: float = HOUR,
    offset: float = 7 * 24 * HOUR,
    ratio: float = 0.5,
) -> dict[str, list[tuple[float, float]]]:
    """The plain baseline rule, as Prometheus evaluates `increase(arrivals[1h]) < 0.5 *
    increase(arrivals[1h] offset 1w)` every `step`: per scope, the episodes (first and last
    evaluation at which it held). Evaluated from `start + offset + window` (it needs a week
    of history) to `end`. `arrivals` are event times per scope, in any order."""
    out: dict[str, list[tuple[float, float]]] = {}
    first = start + offset + window
    for scope, unsorted in arrivals.items():
        times = sorted(unsorted)
        episodes: list[tuple[float, float]] = []
        lo_now = lo_now_end = lo_then = lo_then_end = 0  # moving pointers into `times`
        t = first
        opened: float | None = None
        last = first
        while t <= end:
            while lo_now_end < len(times) and times[lo_now_end] <= t:
                lo_now_end += 1
            while lo_now < len(times) and times[lo_now] <= t - window:
                lo_now += 1
            while lo_then_end < len(times) and times[lo_then_end] <= t - offset:
                lo_then_end += 1
            while lo_then < len(times) and times[lo_then] <= t - offset - window:
                lo_then += 1
            holds = (lo_now_end - lo_now) < ratio * (lo_then_end - lo_then)
            if holds and opened is None:
                opened = t
            elif not holds and opened is not None:
                episodes.append((opened, last))
                opened = None
            last = t
            t += step
        if opened is not None:
            episodes.append((opened, last))
        out[scope] = episodes
    return out


def first_episode_after(episodes: list[tuple[float, float]], start: float) -> float | None:
    """When the rule first fires at or after `start` (as `score` does for the engine's
    alerts, an episode already open before the fault does not count as its detection)."""
    for opened, _ in episodes:
        if opened >= start:
            return opened
    return None
