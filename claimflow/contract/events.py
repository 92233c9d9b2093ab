"""The events the engine runs on, and turning raw bytes into one of them.

Two layers, one verdict. `claimflow.contract.models` holds the pydantic models that define what is
valid (the JSON Schema producers get, the reasons bad input is refused for). Validating
every message through them cost about as much as the whole engine, so the hot path decodes
with msgspec into the slim, immutable structs below, which state the same constraints.
Whatever msgspec refuses goes to the contract models, which give the precise reason, or,
for the few spellings only pydantic accepts (a time without seconds, a decimal comma, a
duplicate key whose first value is bad), the event itself. msgspec never has the last word
on a refusal, so the fast path can only make a verdict cheaper, not different; a
differential test (tests/contract/test_event_decoding.py) holds the two to that over generated
valid and hostile messages.

One known, deliberate difference: a timestamp with more than six fractional digits is
rounded to the microsecond here, where pydantic truncates. The two instants differ by less
than a microsecond, and every decoder of claimflow (replay and the live worker) rounds the
same way, so the same input still gives the same tables and alerts.

`decode` never raises on bad input: it returns a `Rejection` with a bounded reason, so the
caller can dead-letter it and count it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec

from claimflow.contract.models import (
    COMMENT_MAX_LENGTH,
    EARLIEST,
    END,
    ID_MAX_LENGTH,
    EventModel,
    validate,
)
from claimflow.contract.rejections import Rejection

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX_LENGTH)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]  # the range: see surely_valid


# gc=False: events hold only strings, numbers and datetimes, never a cycle, so the garbage
# collector need not track the ones waiting in the engine's reorder buffer.
class _Event(msgspec.Struct, frozen=True, gc=False, tag_field="type"):
    type: ClassVar[str]
    time_field: ClassVar[str]  # the contract's event time field of this type
    event_id: Id

    @property
    def time(self) -> datetime:
        return getattr(self, self.time_field)  # type: ignore[no-any-return]

    def surely_valid(self) -> bool:
        """Whether every timestamp lies in 2000..2099 for sure, which msgspec cannot check.
        The first instant itself counts as unsure: msgspec may have rounded it up from 1999
        (see above), which pydantic would refuse. `decode` hands unsure events to the
        contract models, which decide."""
        raise NotImplementedError


class HubDispatched(_Event, tag="hub_dispatched", frozen=True):
    """The data hub forwarded a claim to a service center."""

    type: ClassVar[str] = "hub_dispatched"
    time_field: ClassVar[str] = "dispatched_at"
    claim_id: Id
    client_id: Id
    hub_id: Id
    center_id: Id
    hub_received_at: Timestamp
    """When the claim reached the hub: this starts the agreement clock."""
    dispatched_at: Timestamp

    def surely_valid(self) -> bool:
        return EARLIEST < self.hub_received_at < END and EARLIEST < self.dispatched_at < END


class ClaimArrived(_Event, tag="claim_arrived", frozen=True):
    """The claim reached the service center and was routed to a team."""

    type: ClassVar[str] = "claim_arrived"
    time_field: ClassVar[str] = "arrived_at"
    claim_id: Id
    client_id: Id
    hub_id: Id
    team: Id
    claim_type: Id
    hub_received_at: Timestamp
    arrived_at: Timestamp

    def surely_valid(self) -> bool:
        return EARLIEST < self.hub_received_at < END and EARLIEST < self.arrived_at < END


class ClaimCompleted(_Event, tag="claim_completed", frozen=True):
    """A team finished a claim."""

    type: ClassVar[str] = "claim_completed"
    time_field: ClassVar[str] = "completed_at"
    claim_id: Id
    team: Id
    completed_at: Timestamp
    outcome: Literal["resolved", "rejected", "referred"]
    handled_by: Id | None = None

    def surely_valid(self) -> bool:
        return EARLIEST < self.completed_at < END


class SurveyResponse(_Event, tag="survey_response", frozen=True):
    """A client answered the automated survey e-mail. `comment` is personal data: it may be
    shown to managers, never used as a metric label."""

    type: ClassVar[str] = "survey_response"
    time_field: ClassVar[str] = "responded_at"
    survey_id: Id
    client_id: Id
    responded_at: Timestamp
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    claim_id: Id | None = None
    comment: Annotated[str, msgspec.Meta(max_length=COMMENT_MAX_LENGTH)] | None = None

    def surely_valid(self) -> bool:
        return EARLIEST < self.responded_at < END


Event = HubDispatched | ClaimArrived | ClaimCompleted | SurveyResponse
EVENT_CLASSES: Final[dict[str, type[Event]]] = {
    cls.type: cls for cls in (HubDispatched, ClaimArrived, ClaimCompleted, SurveyResponse)
}

# Decoding into the union, even for a one-type topic: only the union insists on the tag.
_FAST: Final = msgspec.json.Decoder(Event).decode


def decode(raw: bytes | str, expected_type: str | None = None) -> Event | Rejection:
    """Parse and validate one message. `expected_type` is the event type of the topic the
    message came from (None when the stream mixes all four, as replay input does)."""
    if expected_type is not None and expected_type not in EVENT_CLASSES:
        raise ValueError(f"unknown event type {expected_type!r}")
    if isinstance(raw, bytes) and not raw.isascii():
        try:
            raw.decode()  # msgspec skips unknown keys without checking their UTF-8
        except UnicodeDecodeError:
            return _by_contract(raw, expected_type)  # refused, with the contract's reason
    try:
        event: Event = _FAST(raw)
        if (expected_type is None or event.type == expected_type) and event.surely_valid():
            return event
    except (msgspec.DecodeError, ValueError, RecursionError):
        pass  # ValidationError, bad UTF-8 and depth included: the contract models decide
    return _by_contract(raw, expected_type)


def _by_contract(raw: bytes | str, expected_type: str | None) -> Event | Rejection:
    verdict = validate(raw, expected_type)
    return verdict if isinstance(verdict, Rejection) else from_model(verdict)


def from_model(model: EventModel) -> Event:
    """The engine's event for a message that the contract models accepted."""
    cls = EVENT_CLASSES[model.type]
    values: dict[str, Any] = {name: _plain(getattr(model, name)) for name in cls.__struct_fields__}
    return cls(**values)


def _plain(value: object) -> object:
    # pydantic's own tzinfo makes every later datetime operation several times slower.
    if isinstance(value, datetime) and value.tzinfo is not None:
        offset = value.utcoffset()
        assert offset is not None  # aware: the contract models insist
        return value.replace(tzinfo=timezone(offset))
    return value
