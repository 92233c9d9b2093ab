"""Alerts in the contract shape, and the book that keeps one episode per alert and scope."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mypy_extensions import mypyc_attr

from claimflow.timeutil import iso

AlertName = Literal[
    "InflowDrop", "HubLinkBreak", "SlaAtRisk", "NegativeFeedbackSurge", "ClientSameDayAtRisk"
]
ALERT_NAMES: tuple[AlertName, ...] = (
    "InflowDrop",
    "HubLinkBreak",
    "SlaAtRisk",
    "NegativeFeedbackSurge",
    "ClientSameDayAtRisk",
)
Labels = tuple[tuple[str, str], ...]


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(frozen=True, slots=True)
class Alert:
    alert: AlertName
    state: Literal["firing", "resolved"]
    at: float
    labels: dict[str, str]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "state": self.state,
            "at": iso(self.at),
            "labels": self.labels,
            "summary": self.summary,
            "details": self.details,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(", ", ": "), ensure_ascii=False)


def labels_key(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class AlertBook:
    """Open episodes. `fire` and `resolve` emit only on a change of state, so a detector may
    call them on every evaluation without repeating itself."""

    def __init__(self) -> None:
        self.open: dict[tuple[AlertName, Labels], Alert] = {}
        self.holding: dict[tuple[AlertName, Labels], float] = {}  # condition true since
        self.clearing: dict[tuple[AlertName, Labels], float] = {}  # open, condition false since
        self.pending: list[Alert] = []  # changes not yet drained (cheap to test for)

    def is_open(self, name: AlertName, labels: dict[str, str]) -> bool:
        return (name, labels_key(labels)) in self.open

    def opened(self, name: AlertName, labels: dict[str, str]) -> Alert | None:
        return self.open.get((name, labels_key(labels)))

    def fire(
        self,
        name: AlertName,
        labels: dict[str, str],
        at: float,
        summary: str,
        details: dict[str, Any],
        hold: float = 0.0,
    ) -> Alert | None:
        """The firing condition holds at `at`; fire once it has held for `hold` seconds.
        Returns the alert when this call opened the episode."""
        key = (name, labels_key(labels))
        if key in self.open:
            self.clearing.pop(key, None)
            return None
        since = self.holding.setdefault(key, at)
        if at - since < hold:
            return None
        del self.holding[key]
        alert = Alert(name, "firing", at, dict(labels), summary, details)
        self.open[key] = alert
        self.pending.append(alert)
        return alert

    def update(
        self, name: AlertName, labels: dict[str, str], summary: str, details: dict[str, Any]
    ) -> None:
        """Keep an open episode's figures current, for the views that read `open` (the wall,
        the IT views). Nothing is emitted: an episode is published once when it fires and
        once when it resolves, so the alert topic never repeats itself."""
        key = (name, labels_key(labels))
        alert = self.open.get(key)
        if alert is not None:
            self.open[key] = Alert(
                alert.alert,
                alert.state,
                alert.at,
                alert.labels,
                summary,
                {**alert.details, **details},
            )

    def calm(self, name: AlertName, labels: dict[str, str]) -> None:
        """Neither the firing nor the end condition holds: restart any hold or wait."""
        key = (name, labels_key(labels))
        if self.holding:
            self.holding.pop(key, None)
        if self.clearing:
            self.clearing.pop(key, None)

    def resolve(
        self,
        name: AlertName,
        labels: dict[str, str],
        at: float,
        summary: str,
        details: dict[str, Any],
        keep_firing_for: float = 0.0,
    ) -> Alert | None:
        """The episode's end condition holds at `at`; resolve once it has held for
        `keep_firing_for` seconds (a `fire` call in between starts the wait again).
        Returns the resolution when this call ended the episode."""
        key = (name, labels_key(labels))
        if key not in self.open:
            return None
        since = self.clearing.setdefault(key, at)
        if at - since < keep_firing_for:
            return None
        del self.clearing[key]
        fired = self.open.pop(key)
        details = {"firing_since": iso(fired.at), "duration_seconds": at - fired.at, **details}
        alert = Alert(name, "resolved", at, dict(labels), summary, details)
        self.pending.append(alert)
        return alert

    def seal(self) -> None:
        """Freeze the figures of the changes not drained yet, as they stand at the end of
        this evaluation. Detectors keep an open episode's details current in place (the
        views show them), and the same object waits in `pending` until the caller drains:
        replay drains after every event, the live worker after each released batch, which
        can span ticks. Without this, what is published would depend on that batching."""
        open_ = self.open
        for i, alert in enumerate(self.pending):
            if open_.get((alert.alert, labels_key(alert.labels))) is alert:
                self.pending[i] = replace(alert, details=copy.deepcopy(alert.details))

    def drain(self) -> list[Alert]:
        if not self.pending:
            return []  # the common case, asked after every event
        out, self.pending = self.pending, []
        return out
