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
