"""The one contract every detector implements, and the facts the engine feeds them.

Like bytewax's `StatefulLogic`, a detector is a small stateful step with a fixed life cycle,
so the engine can loop over detectors without knowing what each one holds:

- **apply a fact**: `on_dispatched`, `on_arrived`, `on_completed`, `on_answered`. A fact is
  what an event means once the engine has checked and placed it: its event time, whether it
  still counts in event-time windows (`counted` is False for a late fact), the claim's
  deadline, whether the claim is new. A detector overrides the ones it needs; the engine
  only calls overridden ones (the hot path stays one call per interested detector).
- **evaluate(now, history_start)** at every event-time tick (the detector decides what it
  judges at which tick: every tick, every window).
- **expire(now)**: drop state older than the detector needs; called about hourly.
- **scopes()** and **read(scope, now)**: what the views (metrics, wall page, IT views)
  show, as a plain value per scope, current as of `now`. Views read through these, not
  through the detectors' internals.

The engine also takes an `Advisor` (staffing advice for SlaAtRisk) through a protocol, so
it never imports the staffing module: imports run from the tools down to the engine.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

import msgspec
from mypy_extensions import mypyc_attr

from claimflow.engine.alerts import Alert

ScopeT = TypeVar("ScopeT")
ViewT = TypeVar("ViewT")


class Dispatched(msgspec.Struct, gc=False, frozen=True):
    """A hub dispatched a claim that has not arrived yet."""

    claim_id: str
    route: tuple[str, str]  # (hub_id, center_id)
    t: float
    client_id: str
    hub_received_at: float


class Arrived(msgspec.Struct, gc=False, frozen=True):
    """A claim arrived at a team; `due` under the client's agreement."""

    claim_id: str
    team: str
    hub_id: str
    client_id: str
    t: float
    received: float  # when it reached the hub: the agreement's clock starts there
    due: float
    same_day: bool  # entitled to same-day service
    counted: bool  # False for a late fact: windows already judged stay as they were
    first: bool  # False when the claim was already open or done (a repeated fact)


class Completed(msgspec.Struct, gc=False, frozen=True):
    claim_id: str
    team: str
    t: float
    counted: bool
    closed: bool  # False when it was completed before (a repeated fact)


class Answered(msgspec.Struct, gc=False, frozen=True):
    """A survey answer; `team` and `claim_id` when known."""

    client_id: str
    team: str | None
    score: int
    t: float
    counted: bool
    claim_id: str | None


Fact = Dispatched | Arrived | Completed | Answered


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class Detector(Generic[ScopeT, ViewT]):
    """Base of every detector: no-op fact handlers, evaluation and expiry by default."""

    def on_dispatched(self, fact: Dispatched) -> None:
        """A hub dispatched a claim."""

    def on_arrived(self, fact: Arrived) -> None:
        """A claim arrived at a team."""

    def on_completed(self, fact: Completed) -> None:
        """A team completed a claim."""

    def on_answered(self, fact: Answered) -> None:
        """A customer answered a survey."""

    def evaluate(self, now: float, history_start: float) -> None:
        """Judge at the event-time tick `now` (every `engine.evaluate_every`)."""

    def expire(self, now: float) -> None:
        """Drop state the detector no longer needs as of `now`."""

    def scopes(self) -> list[ScopeT]:
        """What `read` can be asked about, in a fixed order."""
        raise NotImplementedError

    def read(self, scope: ScopeT, now: float) -> ViewT:
        """The scope's current figures, for the views."""
        raise NotImplementedError


def overrides(detector: Detector[object, object], name: str) -> bool:
    """Whether the detector handles this kind of fact (the engine calls only those)."""
    return getattr(type(detector), name) is not getattr(Detector, name)


class Advisor(Protocol):
    """Staffing advice for SlaAtRisk episodes (claimflow/staffing/advice.py implements it)."""

    def advise(self, alert: Alert, team: str, deadline: float) -> None:
        """Add who could help (firing) or who can go back (resolved) to the alert."""

    def headcount(self, team: str) -> float:
        """People on the team's roster now."""
