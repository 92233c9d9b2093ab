"""The Kafka topics claimflow reads and writes, declared once (../shared/CONTRACT.md).

Every name is configurable; these are the contract's defaults. The message key of each input
topic is the event field that partitions it: the claim id for the three claim topics (so a
claim's dispatch, arrival and completion land in the same partition of their topics), the
client id for surveys.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Topics:
    hub_dispatched: str = "claims.hub-dispatched"
    claim_arrived: str = "claims.arrived"
    claim_completed: str = "claims.completed"
    survey_response: str = "claims.surveys"
    alerts: str = "claimflow.alerts"
    deadletter: str = "claimflow.deadletter"
    # Internal: every input record, validated and stamped, on one partition (see
    # claimflow/live/merge.py for why the detectors need a single ordered stream).
    sequenced: str = "claimflow.sequenced"

    def for_event(self, event_type: str) -> str:
        """The input topic of an event type (`hub_dispatched`, ...)."""
        if event_type not in KEY_FIELDS:
            raise KeyError(f"unknown event type {event_type!r}")
        return str(getattr(self, event_type))

    def inputs(self) -> dict[str, str]:
        """Input topic name -> the event type it carries."""
        return {self.for_event(kind): kind for kind in KEY_FIELDS}

    def all_names(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]


# Event type -> the field whose value is the message key.
KEY_FIELDS: dict[str, str] = {
    "hub_dispatched": "claim_id",
    "claim_arrived": "claim_id",
    "claim_completed": "claim_id",
    "survey_response": "client_id",
}
