"""Dead-letter records: what `claimflow.deadletter` (the topic) and `replay --dead-letters`
(a file) receive for every input that did not count as an event.

The original bytes are kept exactly (base64) and, when they are UTF-8, also as text for the
person reading them. The source says where the input came from: topic, partition and offset
for Kafka; the file and its line number for a replay.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from claimflow.rejections import Rejection
from claimflow.timeutil import iso


def dead_letter(
    raw: bytes,
    rejection: Rejection,
    topic: str,
    partition: int,
    offset: int,
    received_at: float | None = None,
) -> dict[str, Any]:
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "reason": rejection.reason.value,
        "detail": rejection.detail,
        "applied_to_claim_state": rejection.applied,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "received_at": iso(received_at) if received_at is not None else None,
        "original": text,
        "original_base64": base64.b64encode(raw).decode("ascii"),
    }


def dead_letter_json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def original_bytes(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["original_base64"])
