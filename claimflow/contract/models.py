"""The four contract events (../shared/CONTRACT.md) as pydantic models: the authority on what
is valid input.

Strict where the contract is strict: timestamps must carry an offset, scores are integers
1 to 5, outcomes are one of three words, and a number is not a string. Lenient where it is
lenient: unknown extra fields are ignored, because producers may add fields.

These models are what producer teams get as JSON Schema (schemas/, `claimflow schemas`) and
what decides the reason a message is refused. The engine does not run on them: the hot
path decodes into the lighter `claimflow.contract.events` types, and asks these models only about
messages it could not decode itself (see events.py; a test holds the two to agreement).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from claimflow.contract.rejections import Reason, Rejection

ID_MAX_LENGTH: Final = 200
COMMENT_MAX_LENGTH: Final = 10_000
# A claim's timestamps lie in this century; anything else is a producer bug, and a year-9999
# event time would push the engine's event-time clock (and every other event) out of reach.
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
END: Final = datetime(2100, 1, 1, tzinfo=UTC)

Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH)]
Timestamp = Annotated[AwareDatetime, Field(ge=EARLIEST, lt=END)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    event_id: Id


class HubDispatchedModel(_Event):
    """The data hub forwarded a claim to a service center."""

    model_config = ConfigDict(title="HubDispatched")

    type: Literal["hub_dispatched"]
    claim_id: Id
    client_id: Id
    hub_id: Id
    center_id: Id
    hub_received_at: Timestamp
    """When the claim reached the hub: this starts the agreement clock."""
    dispatched_at: Timestamp


class ClaimArrivedModel(_Event):
    """The claim reached the service center and was routed to a team."""

    model_config = ConfigDict(title="ClaimArrived")

    type: Literal["claim_arrived"]
    claim_id: Id
    client_id: Id
    hub_id: Id
    team: Id
    claim_type: Id
    hub_received_at: Timestamp
    arrived_at: Timestamp


class ClaimCompletedModel(_Event):
    """A team finished a claim."""

    model_config = ConfigDict(title="ClaimCompleted")

    type: Literal["claim_completed"]
    claim_id: Id
    team: Id
    completed_at: Timestamp
    outcome: Literal["resolved", "rejected", "referred"]
    handled_by: Id | None = None


class SurveyResponseModel(_Event):
    """A client answered the automated survey e-mail. `comment` is personal data: it may be
    shown to managers, never used as a metric label."""

    model_config = ConfigDict(title="SurveyResponse")

    type: Literal["survey_response"]
    survey_id: Id
    client_id: Id
    responded_at: Timestamp
    score: Annotated[int, Field(ge=1, le=5)]
    claim_id: Id | None = None
    comment: Annotated[str, Field(max_length=COMMENT_MAX_LENGTH)] | None = None


EventModel = HubDispatchedModel | ClaimArrivedModel | ClaimCompletedModel | SurveyResponseModel
EVENT_MODELS: Final = (
    HubDispatchedModel,
    ClaimArrivedModel,
    ClaimCompletedModel,
    SurveyResponseModel,
)
EVENT_TYPES: Final = ("hub_dispatched", "claim_arrived", "claim_completed", "survey_response")

_ANY_EVENT: TypeAdapter[EventModel] = TypeAdapter(
    Annotated[EventModel, Field(discriminator="type")]
)
_ONE_TYPE: dict[str, TypeAdapter[EventModel]] = {
    model.model_fields["type"].annotation.__args__[0]: TypeAdapter(model)  # type: ignore[union-attr]
    for model in EVENT_MODELS
}

# pydantic error types -> our bounded reasons. Anything unlisted is an invalid value.
_REASONS: Final = {
    "json_invalid": Reason.MALFORMED_JSON,
    "json_type": Reason.MALFORMED_JSON,
    "model_attributes_type": Reason.NOT_AN_OBJECT,
    "model_type": Reason.NOT_AN_OBJECT,
    "dict_type": Reason.NOT_AN_OBJECT,
    "union_tag_invalid": Reason.UNKNOWN_TYPE,
    "union_tag_not_found": Reason.MISSING_FIELD,
    "missing": Reason.MISSING_FIELD,
    "timezone_aware": Reason.NAIVE_TIMESTAMP,
    "datetime_parsing": Reason.INVALID_TIMESTAMP,
    "datetime_from_date_parsing": Reason.INVALID_TIMESTAMP,
    "datetime_object_invalid": Reason.INVALID_TIMESTAMP,
    "greater_than_equal": Reason.INVALID_VALUE,  # refined to a timestamp reason below
    "string_type": Reason.WRONG_TYPE,
    "int_type": Reason.WRONG_TYPE,
    "int_from_float": Reason.WRONG_TYPE,
    "datetime_type": Reason.WRONG_TYPE,
    "bool_type": Reason.WRONG_TYPE,
}


def validate(raw: bytes | str, expected_type: str | None = None) -> EventModel | Rejection:
    """Parse and validate one message against the contract models. `expected_type` is the
    event type of the topic it came from (None when the stream mixes all four). Never
    raises on bad input: returns a `Rejection` with a bounded reason."""
    try:
        if expected_type is None:
            return _ANY_EVENT.validate_json(raw)
        adapter = _ONE_TYPE.get(expected_type)
        if adapter is None:
            raise ValueError(f"unknown event type {expected_type!r}")
        return adapter.validate_json(raw)
    except ValidationError as exc:
        return _rejection(exc, expected_type)
    except UnicodeDecodeError:
        return Rejection(Reason.MALFORMED_JSON, "not UTF-8")


def _rejection(exc: ValidationError, expected_type: str | None) -> Rejection:
    error = exc.errors(include_url=False, include_input=False)[0]
    kind = error["type"]
    loc = ".".join(str(part) for part in error["loc"])
    if kind == "literal_error" and error["loc"] == ("type",) and expected_type:
        return Rejection(Reason.WRONG_TOPIC, f"type is not {expected_type!r} on this topic")
    reason = _REASONS.get(kind, Reason.INVALID_VALUE)
    if kind in {"greater_than_equal", "less_than"} and str(error["loc"][-1]).endswith("_at"):
        reason = Reason.INVALID_TIMESTAMP  # outside 2000..2099
    if reason is Reason.NOT_AN_OBJECT and loc:
        reason = Reason.WRONG_TYPE  # a nested value, not the message, has the wrong shape
    where = f"{_field(error['loc'])}: " if loc else ""
    return Rejection(reason, f"{where}{error['msg']}")


def _field(loc: tuple[int | str, ...]) -> str:
    # Discriminated unions prefix the location with the tag ("claim_arrived.team").
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in EVENT_TYPES:
        parts = parts[1:]
    return ".".join(parts)
