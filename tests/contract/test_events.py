from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from claimflow.contract.events import ClaimArrived, SurveyResponse, decode
from claimflow.contract.rejections import Reason, Rejection
from claimflow.tools.schema_export import check_schemas, rendered

ARRIVED: dict[str, Any] = {
    "type": "claim_arrived",
    "event_id": "e1",
    "claim_id": "c1",
    "client_id": "x",
    "hub_id": "hub-1",
    "team": "motor",
    "claim_type": "motor",
    "hub_received_at": "2026-11-24T01:14:00Z",
    "arrived_at": "2026-11-24T01:16:10+01:00",
}
SURVEY: dict[str, Any] = {
    "type": "survey_response",
    "event_id": "s1",
    "survey_id": "s1",
    "client_id": "x",
    "responded_at": "2026-11-24T09:00:00Z",
    "score": 2,
    "comment": "slow",
}


def _with(base: dict[str, Any], **changes: Any) -> bytes:
    data = {**base, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_valid_events_and_unknown_fields_ignored() -> None:
    event = decode(_with(ARRIVED, producer_version="7", nested={"a": 1}))
    assert isinstance(event, ClaimArrived)
    assert event.arrived_at.utcoffset() is not None
    assert event.time.isoformat() == "2026-11-24T01:16:10+01:00"
    survey = decode(_with(SURVEY))
    assert isinstance(survey, SurveyResponse) and survey.score == 2 and survey.claim_id is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"type": "claim_arrived", ', Reason.MALFORMED_JSON),
        (b"\xff\xfe not utf8", Reason.MALFORMED_JSON),
        (b"[1, 2]", Reason.NOT_AN_OBJECT),
        (b'"just a string"', Reason.NOT_AN_OBJECT),
        (_with(ARRIVED, type="claim_lost"), Reason.UNKNOWN_TYPE),
        (_with(ARRIVED, type=...), Reason.MISSING_FIELD),
        (_with(ARRIVED, team=...), Reason.MISSING_FIELD),
        (_with(ARRIVED, team=5), Reason.WRONG_TYPE),
        (_with(ARRIVED, arrived_at=1764000000), Reason.WRONG_TYPE),
        (_with(ARRIVED, arrived_at="2026-11-24T01:16:10"), Reason.NAIVE_TIMESTAMP),
        (_with(ARRIVED, arrived_at="yesterday"), Reason.INVALID_TIMESTAMP),
        (_with(ARRIVED, claim_id=""), Reason.INVALID_VALUE),
        (_with(ARRIVED, arrived_at="9999-12-31T23:59:59Z"), Reason.INVALID_TIMESTAMP),
        (_with(ARRIVED, hub_received_at="1970-01-01T00:00:00Z"), Reason.INVALID_TIMESTAMP),
        (_with(SURVEY, score=7), Reason.INVALID_VALUE),
        (_with(SURVEY, score=0), Reason.INVALID_VALUE),
        (_with(SURVEY, score="3"), Reason.WRONG_TYPE),
        (_with(SURVEY, score=3.5), Reason.WRONG_TYPE),
        (
            b'{"type":"claim_completed","event_id":"x","claim_id":"c","team":"t",'
            b'"completed_at":"2026-11-24T01:00:00Z","outcome":"lost"}',
            Reason.INVALID_VALUE,
        ),
    ],
)
def test_bad_input_gets_a_bounded_reason(raw: bytes, reason: Reason) -> None:
    result = decode(raw)
    assert isinstance(result, Rejection), result
    assert result.reason is reason
    assert result.detail


def test_detail_names_the_field() -> None:
    result = decode(_with(ARRIVED, arrived_at="2026-11-24T01:16:10"))
    assert isinstance(result, Rejection)
    assert result.detail.startswith("arrived_at:")


def test_event_on_the_wrong_topic() -> None:
    result = decode(_with(ARRIVED), expected_type="hub_dispatched")
    assert isinstance(result, Rejection) and result.reason is Reason.WRONG_TOPIC
    assert isinstance(decode(_with(ARRIVED), expected_type="claim_arrived"), ClaimArrived)


def test_exported_json_schemas_match_the_models() -> None:
    folder = Path(__file__).resolve().parents[2] / "schemas"
    assert check_schemas(folder) == [], "run `claimflow schemas` to regenerate"
    schema = json.loads(rendered()["survey_response.schema.json"])
    assert schema["properties"]["score"]["minimum"] == 1
    assert schema["properties"]["score"]["maximum"] == 5
    assert "comment" not in schema["required"]
    assert set(schema["required"]) >= {
        "event_id",
        "survey_id",
        "client_id",
        "responded_at",
        "score",
    }


def test_schema_check_detects_a_stale_file(tmp_path: Path) -> None:
    for name, text in rendered().items():
        (tmp_path / name).write_text(text)
    assert check_schemas(tmp_path) == []
    (tmp_path / "claim_arrived.schema.json").write_text("{}")
    assert check_schemas(tmp_path) == ["claim_arrived.schema.json"]


def test_dead_letter_keeps_the_original_bytes_exactly() -> None:
    from claimflow.contract.deadletter import dead_letter, dead_letter_json, original_bytes

    raw = b'\xff\xfe{"type": broken'
    result = decode(raw)
    assert isinstance(result, Rejection)
    record = json.loads(dead_letter_json(dead_letter(raw, result, "claims.arrived", 3, 1234, 0.0)))
    assert record["reason"] == "malformed_json"
    assert record["source"] == {"topic": "claims.arrived", "partition": 3, "offset": 1234}
    assert record["original"] is None  # not UTF-8: only the exact bytes, in base64
    assert original_bytes(record) == raw
    assert record["received_at"] == "1970-01-01T00:00:00Z"
