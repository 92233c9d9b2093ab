"""Dead-letter records: what `claimflow.deadletter` (the topic) and `replay --dead-letters`
(a file) receive for every input that did not count as an event.

The original bytes are kept exactly (base64) and, when they are UTF-8, also as text for the
person reading them. An original over `MAX_ORIGINAL` bytes (or one ingest refused as too large
and never forwarded whole) is kept as an excerpt of its first bytes plus its size and SHA-256
digest, and the record says so (`original_truncated`): a dead letter must itself fit in a
Kafka record (1 MB by default), or it is lost on the way. The source says where the input
came from: topic, partition and offset for Kafka; the file and its line number for a replay.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from claimflow.contract.rejections import Rejection
from claimflow.timeutil import iso

# Bytes of the original kept in a dead letter: as text (JSON escapes can make a byte six)
# and as base64 (4/3), that stays well under a 1 MB record.
MAX_ORIGINAL = 64 * 1024


@dataclass(frozen=True, slots=True)
class Digest:
    """What is known of an original that is not kept whole: its size and SHA-256."""

    size: int
    sha256: str

    @classmethod
    def of(cls, raw: bytes) -> Digest:
        return cls(len(raw), hashlib.sha256(raw).hexdigest())


def dead_letter(
    raw: bytes,
    rejection: Rejection,
    topic: str,
    partition: int,
    offset: int,
    received_at: float | None = None,
    digest: Digest | None = None,
) -> dict[str, Any]:
    """`digest`: the original's, when `raw` is already only an excerpt of it."""
    if digest is None and len(raw) > MAX_ORIGINAL:
        digest = Digest.of(raw)
    if digest is not None:
        raw = raw[:MAX_ORIGINAL]
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None if digest is None else raw.decode("utf-8", errors="replace")
    record: dict[str, Any] = {
        "reason": rejection.reason.value,
        "detail": rejection.detail,
        "applied_to_claim_state": rejection.applied,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "received_at": iso(received_at) if received_at is not None else None,
        "original": text,
        "original_base64": base64.b64encode(raw).decode("ascii"),
    }
    if digest is not None:
        record["original_truncated"] = True  # original(_base64) hold its first bytes only
        record["original_size"] = digest.size
        record["original_sha256"] = digest.sha256
    return record


def dead_letter_json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def original_bytes(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["original_base64"])
