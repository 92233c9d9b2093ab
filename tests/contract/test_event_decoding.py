"""The fast decoder (msgspec) and the contract models (pydantic) give one verdict.

`claimflow.contract.events.decode` takes msgspec's answer when msgspec accepts a message
and asks the contract models otherwise. These tests generate valid and hostile messages,
with the field values, spellings, duplicate keys and byte-level damage that producers and
networks produce, and check that `decode` says exactly what the contract models alone say: the same
reason for a refusal, the same event (to the microsecond) for an acceptance.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from claimflow.contract.events import EVENT_CLASSES, ClaimArrived, Event, decode, from_model
from claimflow.contract.models import EVENT_TYPES, validate
from claimflow.contract.rejections import Rejection

BASE: dict[str, dict[str, Any]] = {
    "hub_dispatched": {
        "type": "hub_dispatched",
        "event_id": "d-1",
        "claim_id": "CLM-1",
        "client_id": "alpine-re",
        "hub_id": "hub-1",
        "center_id": "center-1",
        "hub_received_at": "2026-11-24T01:14:00Z",
        "dispatched_at": "2026-11-24T01:15:00.5+01:00",
    },
    "claim_arrived": {
        "type": "claim_arrived",
        "event_id": "a-1",
        "claim_id": "CLM-1",
        "client_id": "alpine-re",
        "hub_id": "hub-1",
        "team": "motor",
        "claim_type": "motor",
        "hub_received_at": "2026-11-24T01:14:00Z",
        "arrived_at": "2026-11-24T01:16:10.123456-05:00",
    },
    "claim_completed": {
        "type": "claim_completed",
        "event_id": "x-1",
        "claim_id": "CLM-1",
        "team": "motor",
        "completed_at": "2026-11-24T09:00:00Z",
        "outcome": "resolved",
        "handled_by": "emp-7",
    },
    "survey_response": {
        "type": "survey_response",
        "event_id": "s-1",
        "survey_id": "s-1",
        "client_id": "alpine-re",
        "responded_at": "2026-11-24T09:30:00Z",
        "score": 2,
        "claim_id": "CLM-1",
        "comment": "slow",
    },
}

TIMESTAMPS = [
    "2026-11-24T01:16:10Z",
    "2026-11-24T01:16:10z",
    "2026-11-24t01:16:10Z",
    "2026-11-24 01:16:10Z",
    "2026-11-24T01:16Z",  # no seconds: only pydantic reads it
    "2026-11-24T01:16:10,5Z",  # decimal comma: likewise
    "2026-11-24T01:16:10.1234567Z",  # seven digits: rounded here, truncated by pydantic
    "2026-11-24T01:16:10.9999999+02:00",
    "2026-11-24T01:16:10.Z",
    "2026-11-24T01:16:10",  # naive
    "2026-11-24",
    "2026-11-24T01:16:10+0100",
    "2026-11-24T01:16:10+01",
    "2026-11-24T01:16:10-00:00",
    "2026-11-24T01:16:10+23:59",
    "2026-11-24T01:16:10+24:00",
    "2026-11-24T23:59:60Z",
    "2026-11-24T24:00:00Z",
    "2026-02-30T01:16:10Z",
    "1999-12-31T23:59:59.999999Z",
    "1999-12-31T23:59:59.9999999Z",  # rounds up to the first valid instant
    "2000-01-01T00:00:00Z",
    "2000-01-01T00:30:00+01:00",  # 1999 in UTC
    "2099-12-31T23:59:59.999999Z",
    "2099-12-31T23:59:59.9999999Z",  # rounds up into 2100
    "2099-12-31T23:30:00-01:00",  # 2100 in UTC
    "9999-12-31T23:59:59.9999999Z",
    "0000-01-01T00:00:00Z",
    "+2026-11-24T01:16:10Z",
    "20261124T011610Z",
    "yesterday",
    "",
]
VALUES: list[Any] = [
    None,
    "",
    "x",
    "x" * 200,
    "x" * 201,
    "é" * 200,
    "\u0000",
    "😀",
    "\ud800",  # a lone surrogate, as a JSON escape
    0,
    1,
    2,
    5,
    6,
    -1,
    3.0,
    3.5,
    2**70,
    True,
    False,
    [],
    {},
    {"a": 1},
    ["x"],
    "resolved",
    "lost",
    "3",
    *EVENT_TYPES,
    "claim_lost",
    *TIMESTAMPS,
]
MISSING = object()


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(EVENT_TYPES))
    pairs: list[tuple[str, Any]] = list(BASE[kind].items())
    for i in range(draw(st.integers(0, 3))):  # change, drop or duplicate fields
        key = draw(st.sampled_from([k for k, _ in pairs] or ["type"]))
        value = draw(st.sampled_from([MISSING, *VALUES]))
        if value is MISSING:
            pairs = [(k, v) for k, v in pairs if k != key]
        elif draw(st.booleans()):
            pairs = [(k, value if k == key else v) for k, v in pairs]
        else:
            at = draw(st.integers(0, len(pairs)))
            pairs.insert(at, (key, value))  # a duplicate key, before or after the original
        if draw(st.booleans()):
            pairs.append((f"extra_{i}", draw(st.sampled_from([*VALUES, float("nan")]))))
    body = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"
    raw = body.encode()
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "bytes", "wrap", "space"]))
    if damage == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "bytes":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\\", b'"'])) + raw[at:]
    elif damage == "wrap":
        raw = b"[" + raw + b"]"
    elif damage == "space":
        raw = b" \n" + raw + b"\t "
    return raw


def _contract_verdict(raw: bytes, expected_type: str | None) -> Event | Rejection:
    verdict = validate(raw, expected_type)
    return verdict if isinstance(verdict, Rejection) else from_model(verdict)


def _assert_same(raw: bytes, expected_type: str | None) -> None:
    fast = decode(raw, expected_type)
    reference = _contract_verdict(raw, expected_type)
    if isinstance(reference, Rejection):
        assert fast == reference, (raw, fast, reference)
        return
    assert type(fast) is type(reference), (raw, fast, reference)
    for name in type(reference).__struct_fields__:
        got, want = getattr(fast, name), getattr(reference, name)
        if isinstance(want, datetime):
            assert isinstance(got, datetime)
            assert got.utcoffset() == want.utcoffset(), (raw, name)
            # Seven or more fractional digits: msgspec rounds, pydantic truncates.
            assert timedelta(0) <= got - want <= timedelta(microseconds=1), (raw, name, got, want)
        else:
            assert got == want and type(got) is type(want), (raw, name, got, want)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
@example(json.dumps({**BASE["survey_response"], "responded_at": "1999-12-31T23:59:59.9999999Z"}))
@example(json.dumps({**BASE["claim_completed"], "completed_at": "2099-12-31T23:59:59.9999999Z"}))
def test_decode_agrees_with_the_contract_models(raw: bytes | str) -> None:
    raw = raw.encode() if isinstance(raw, str) else raw
    _assert_same(raw, None)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(messages(), st.sampled_from(EVENT_TYPES))
def test_decode_agrees_with_the_contract_models_per_topic(raw: bytes, topic_type: str) -> None:
    _assert_same(raw, topic_type)


def test_spellings_only_pydantic_reads_still_decode_to_engine_events() -> None:
    raw = json.dumps({**BASE["claim_arrived"], "arrived_at": "2026-11-24T01:16+01:00"})
    event = decode(raw.encode())
    assert isinstance(event, ClaimArrived)
    # Converted to the standard library's tzinfo, which the engine's time arithmetic needs.
    assert type(event.arrived_at.tzinfo).__module__ == "datetime"
    assert event.arrived_at.isoformat() == "2026-11-24T01:16:00+01:00"


def test_every_event_type_has_an_engine_class() -> None:
    assert sorted(EVENT_CLASSES) == sorted(EVENT_TYPES)
    for name, cls in EVENT_CLASSES.items():
        assert cls.type == name


def test_the_engine_events_have_the_contract_models_fields() -> None:
    """The two layers state one schema twice (typed structs for the engine, pydantic models
    for the contract): a field added to one and not the other fails here by name."""
    from claimflow.contract.models import EVENT_MODELS

    for model in EVENT_MODELS:
        name = model.model_json_schema()["properties"]["type"]["const"]
        cls = EVENT_CLASSES[name]
        contract_fields = {k: f.is_required() for k, f in model.model_fields.items()}
        contract_fields.pop("type")  # the struct's tag
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType), name
        struct_fields = {f.name: f.required for f in info.fields}
        assert struct_fields == contract_fields, name
