"""Why an input was refused. The reasons are a closed set: they become metric labels."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mypy_extensions import mypyc_attr


class Reason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_TOPIC = "wrong_topic"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    INVALID_TIMESTAMP = "invalid_timestamp"
    NAIVE_TIMESTAMP = "naive_timestamp"
    UNKNOWN_TEAM = "unknown_team"
    UNKNOWN_HUB = "unknown_hub"
    UNKNOWN_CENTER = "unknown_center"
    DUPLICATE = "duplicate"
    LATE = "late"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_LARGE = "too_large"


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(frozen=True, slots=True)
class Rejection:
    """An input that did not count as an event: the reason is bounded, the detail is for humans.

    `applied` is true for a late event whose claim-level fact (an arrival, a completion) was
    still applied so that the claim does not linger as missing or open; only its contribution
    to already-closed event-time windows was refused.
    """

    reason: Reason
    detail: str
    applied: bool = False
