"""The records on the sequenced topic (`claimflow.sequenced`), as ingest writes them and the
detector reads them: `Forwarded` (one input record: its bytes, where it came from, its event
time and the wall time it was read), `Bundle` (many of those in one sequenced record) and
`Progress` (an ingest worker's report of how far each of its input partitions has been read).
docs/design-live-pipeline.md describes the two stages these connect; claimflow/live/merge.py
orders what they carry and claimflow/live/live_engine.py applies it.

The input record's bytes travel unchanged (the value of a `Forwarded`, an entry of a `Bundle`);
what claimflow adds goes in headers (`cf-kind`, `cf-topic`, ...) or, in a bundle, in msgpack
beside them. `decode_envelope` refuses (`EnvelopeError`) a record claimflow did not write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

Header = tuple[str, bytes]


class EnvelopeError(ValueError):
    """A record on the sequenced topic that claimflow did not write."""


@dataclass(frozen=True, slots=True)
class Forwarded:
    """One input record as ingest forwards it. `time` is its event time, None when ingest
    refused it (then `reason` and `detail` say why)."""

    topic: str
    partition: int
    offset: int
    wall: float
    raw: bytes
    time: float | None = None
    reason: str | None = None
    detail: str | None = None
    # Set when `raw` is only an excerpt (ingest refused the record as too large): the size and
    # SHA-256 of the original, for the dead letter.
    size: int | None = None
    sha256: str | None = None

    def encode(self) -> tuple[bytes, list[Header]]:
        """The record's original bytes stay the value; everything else goes in headers."""
        headers: list[Header] = [
            ("cf-kind", b"record"),
            ("cf-topic", self.topic.encode()),
            ("cf-partition", str(self.partition).encode()),
            ("cf-offset", str(self.offset).encode()),
            ("cf-wall", repr(self.wall).encode()),
        ]
        if self.time is not None:
            headers.append(("cf-time", repr(self.time).encode()))
        if self.reason is not None:
            headers.append(("cf-reason", self.reason.encode()))
            headers.append(("cf-detail", (self.detail or "").encode()))
        if self.sha256 is not None:
            headers.append(("cf-size", str(self.size).encode()))
            headers.append(("cf-sha256", self.sha256.encode()))
        return self.raw, headers


@dataclass(frozen=True, slots=True)
class Progress:
    """An ingest worker's periodic report: for each input partition it owns, the next offset
    it will forward and whether that is the end of the partition (nothing is waiting).

    `as_of`, one per source: the wall time as of which "caught up" holds, the send time of
    the fetch request whose response gave the partition's end (streams/fetch_times.py), at
    most `wall`. Empty (a report from an older worker, or a consumer that cannot tell): the
    report's own time, `wall`, which the response may be older than."""

    wall: float
    partitions: dict[str, int]  # input topic -> number of partitions
    sources: tuple[tuple[str, int, int, bool], ...]  # topic, partition, next offset, caught up
    as_of: tuple[float, ...] = ()

    def vouched(self) -> list[float]:
        """Per source, the time its "caught up" holds as of."""
        wall = self.wall
        if len(self.as_of) != len(self.sources):
            return [wall] * len(self.sources)
        return [min(wall, t) for t in self.as_of]

    def encode(self) -> tuple[bytes, list[Header]]:
        value: dict[str, object] = {
            "wall": self.wall,
            "partitions": self.partitions,
            "sources": [list(s) for s in self.sources],
        }
        if self.as_of:
            value["as_of"] = list(self.as_of)
        return json.dumps(value, separators=(",", ":")).encode(), [("cf-kind", b"progress")]


# One forwarded record inside a bundle: topic, partition, offset, wall, raw, time, reason,
# detail, size, sha256 (Forwarded's fields, in order).
_BundleEntry = tuple[
    str, int, int, float, bytes, float | None, str | None, str | None, int | None, str | None
]
_BUNDLE_DECODER = msgspec.msgpack.Decoder(list[_BundleEntry])
_BUNDLE_ENCODER = msgspec.msgpack.Encoder()
BUNDLE_BYTES = 256 * 1024  # a bundle's raw bytes: well under a broker's 1 MB record limit
BUNDLE_RECORDS = 1000


@dataclass(frozen=True, slots=True)
class Bundle:
    """Several forwarded records in one sequenced record, in the order ingest read them.

    Producing one sequenced record per input record cost 40% of a drain (issue 15): a produce
    request each, because the embedded broker gives wrong offsets to multi-record producer
    batches. A bundle is one Kafka record, so it is safe on every broker, and it moves up to
    `BUNDLE_RECORDS` input records (or `BUNDLE_BYTES` of them) per request. The detector
    applies a bundle whole, at one sequenced offset: a snapshot is never taken inside one."""

    records: tuple[Forwarded, ...]

    def encode(self) -> tuple[bytes, list[Header]]:
        value = _BUNDLE_ENCODER.encode(
            [
                (
                    r.topic,
                    r.partition,
                    r.offset,
                    r.wall,
                    r.raw,
                    r.time,
                    r.reason,
                    r.detail,
                    r.size,
                    r.sha256,
                )
                for r in self.records
            ]
        )
        return value, [("cf-kind", b"bundle")]

    @property
    def wall(self) -> float:
        """When ingest read the newest of its records."""
        return max(r.wall for r in self.records)


def bundles(records: Sequence[Forwarded]) -> list[Bundle]:
    """`records` cut into bundles of at most BUNDLE_RECORDS records and, unless one record
    alone is larger, BUNDLE_BYTES of their bytes, order kept."""
    out: list[Bundle] = []
    current: list[Forwarded] = []
    size = 0
    for record in records:
        n = len(record.raw)
        if current and (size + n > BUNDLE_BYTES or len(current) >= BUNDLE_RECORDS):
            out.append(Bundle(tuple(current)))
            current, size = [], 0
        current.append(record)
        size += n
    if current:
        out.append(Bundle(tuple(current)))
    return out


Envelope = Forwarded | Progress | Bundle


_TOPIC_NAMES: dict[str, str] = {}
_TOPIC_NAMES_MAX = 1024  # topics are a handful; a foreign bundle must not grow it without end


def _topic_name(name: str) -> str:
    shared = _TOPIC_NAMES.get(name)
    if shared is not None:
        return shared
    if len(_TOPIC_NAMES) < _TOPIC_NAMES_MAX:
        _TOPIC_NAMES[name] = name
    return name


def decode_envelope(value: bytes | None, headers: list[Header] | dict[str, bytes]) -> Envelope:
    h = dict(headers)
    try:
        kind = h["cf-kind"]
        if kind == b"bundle":
            entries = _BUNDLE_DECODER.decode(value or b"")
            if not entries:
                raise ValueError("an empty bundle")
            # One string object per topic, not one per record: the merge may hold tens of
            # thousands of these during a catch-up.
            return Bundle(tuple(Forwarded(_topic_name(e[0]), *e[1:]) for e in entries))
        if kind == b"record":
            time = h.get("cf-time")
            reason = h.get("cf-reason")
            detail = h.get("cf-detail")
            size = h.get("cf-size")
            sha256 = h.get("cf-sha256")
            return Forwarded(
                topic=h["cf-topic"].decode(),
                partition=int(h["cf-partition"]),
                offset=int(h["cf-offset"]),
                wall=float(h["cf-wall"]),
                raw=value or b"",
                time=float(time) if time is not None else None,
                reason=reason.decode() if reason is not None else None,
                detail=detail.decode() if detail is not None else None,
                size=int(size) if size is not None else None,
                sha256=sha256.decode("ascii") if sha256 is not None else None,
            )
        if kind == b"progress":
            data = json.loads(value or b"")
            return Progress(
                wall=float(data["wall"]),
                partitions={str(k): int(v) for k, v in data["partitions"].items()},
                sources=tuple((str(t), int(p), int(n), bool(c)) for t, p, n, c in data["sources"]),
                as_of=tuple(float(t) for t in data.get("as_of", ())),
            )
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise EnvelopeError(f"not a claimflow envelope: {exc!r}") from exc
    raise EnvelopeError(f"unknown envelope kind {kind!r}")
