"""One event-time-ordered stream out of many partitions, so that one engine judges them all.

The live worker has two stages (docs/design-live-pipeline.md). The ingest agents, spread over
the input partitions, validate every record and forward it (its bytes, where it came from,
its event time and the wall time it was read) to the single-partition topic
`claimflow.sequenced`, many records to one sequenced record (`Bundle`). The worker that
owns that partition runs `LiveEngine` over it. This module is that logic, with no Kafka in
it, so tests drive it directly:

* **Merge.** Records from different input partitions reach the sequenced topic in whatever
  order the ingest agents happened to run: during a fast backfill one partition can be hours
  of event time ahead of another. A record goes to the engine only once every input partition
  that may still hold older records has moved past it (a watermark across partitions, as in
  Flink or Beam). A partition that its ingest agent reports caught up as of a time after the
  record was read (plus `idle_after`) does not hold it back; one not heard of at all for
  `max_hold` seconds (its worker gone, a long rebalance) stops holding them back too.
* **Idempotence.** Ingest is at-least-once: after a restart it forwards again what it had not
  committed. The merge remembers the next offset expected from each input partition and
  skips repeats, and `LiveEngine` remembers the next sequenced offset. Both live in the one
  object that the worker snapshots, so a snapshot plus the sequenced records after it
  rebuild exactly the state an uninterrupted run had.
* **Outputs** (alerts, dead letters) carry a sequence number. The same sequenced log gives the
  same outputs with the same numbers, so after a restart the worker suppresses those whose
  numbers already landed (`OutputGate`).

Wall time enters only as the `wall` stamps ingest puts on what it forwards (read from a
`timeutil.Clock`), so the same sequenced log gives the same result whenever it is processed.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from claimflow.config import Config
from claimflow.contract.deadletter import Digest, dead_letter, dead_letter_json
from claimflow.contract.events import decode
from claimflow.contract.rejections import Reason, Rejection
from claimflow.engine import Engine
from claimflow.engine.alerts import Alert
from claimflow.engine.feed import feed
from claimflow.live.idle import IdleClock
from claimflow.timeutil import ManualClock

_NEVER = float("inf")
Source = tuple[str, int]  # input topic, partition
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


def decode_envelope(value: bytes | None, headers: list[Header] | dict[str, bytes]) -> Envelope:
    h = dict(headers)
    try:
        kind = h["cf-kind"]
        if kind == b"bundle":
            entries = _BUNDLE_DECODER.decode(value or b"")
            if not entries:
                raise ValueError("an empty bundle")
            return Bundle(tuple(Forwarded(*entry) for entry in entries))
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


@dataclass(slots=True)
class SourceState:
    next_offset: int = 0  # every offset below this has been taken
    max_time: float = -_NEVER  # newest event time taken
    caught_up_wall: float = -_NEVER  # when a report last said nothing was waiting after it
    last_heard_wall: float = -_NEVER


class Merge:
    """Holds forwarded records until no input partition can still deliver an older one,
    then releases them oldest first.

    A held record r (event time t, read at wall time w) may go once every other input
    partition has either taken an event at or after t, or been reported caught up as of wall
    time w + `idle_after` or later: then whatever it held when r was read has been forwarded,
    and what came after was produced after r. "As of" is the send time of the fetch that gave
    the partition's end (`Progress.as_of`), so a response processed late makes the vouch
    older, never wrong; `idle_after` is only a margin for the wall clocks of different
    workers (a report from an older worker vouches as of its own time, and then `idle_after`
    must also cover how stale its view of the end was: 2 s did). A partition not heard of
    for `max_hold` seconds (its worker gone, a long rebalance) holds nothing back: its
    records, if they come, may then be late.
    """

    # caught_up() asks for a vouch this recent: reports come at least once a second, and
    # vouch as of a fetch sent up to a fetch wait (0.1 s, longer under load) before.
    FRESH_WITHIN = 2.0

    def __init__(self, idle_after: float, max_hold: float) -> None:
        self.idle_after = idle_after
        self.max_hold = max_hold
        self.sources: dict[Source, SourceState] = {}
        self.partitions: dict[str, int] = {}  # input topic -> partitions
        self.pending: list[tuple[float, int, Forwarded]] = []
        self.wall = -_NEVER  # newest wall stamp seen: the merge's notion of now
        self.first_wall = _NEVER
        self.repeats = 0  # records forwarded a second time (ingest restarted), skipped
        self._seq = 0

    def expect(self, partitions: dict[str, int]) -> None:
        """Input topics and their partition counts: a partition never heard of holds back."""
        self.partitions.update(partitions)

    def offer(self, record: Forwarded) -> bool:
        """Take a forwarded record; False when it was taken before."""
        self._saw_wall(record.wall)
        state = self._source(record.topic, record.partition)
        if record.offset < state.next_offset:
            self.repeats += 1
            return False
        state.next_offset = record.offset + 1
        state.last_heard_wall = max(state.last_heard_wall, record.wall)
        state.caught_up_wall = -_NEVER  # until a report written after this record says so
        if record.time is not None:
            state.max_time = max(state.max_time, record.time)
            self._seq += 1
            heapq.heappush(self.pending, (record.time, self._seq, record))
        return True

    def report(self, progress: Progress) -> None:
        self._saw_wall(progress.wall)
        self.partitions.update(progress.partitions)
        for (topic, partition, next_offset, caught_up), as_of in zip(
            progress.sources, progress.vouched(), strict=True
        ):
            # Never taken as "records below were forwarded": an ingest agent that has just
            # taken a partition over reports its fetch position, which can run ahead of
            # what it has forwarded (measured: 50 records skipped that way).
            state = self._source(topic, partition)
            state.last_heard_wall = max(state.last_heard_wall, progress.wall)
            # Only a report that has seen everything taken here can vouch for the partition.
            if caught_up and next_offset <= state.next_offset:
                state.caught_up_wall = max(state.caught_up_wall, as_of)
            else:
                state.caught_up_wall = -_NEVER

    def release(self) -> list[Forwarded]:
        """Records no partition can precede any more, oldest event time first."""
        pending = self.pending
        out: list[Forwarded] = []
        if not pending or not self._all_heard_of():
            return out
        while pending:
            t, _, record = pending[0]
            if not self._may_release(t, record.wall):
                break
            out.append(heapq.heappop(pending)[2])
        return out

    def _may_release(self, t: float, wall: float) -> bool:
        vouched = wall + self.idle_after
        gone = self.wall - self.max_hold
        for state in self.sources.values():
            if state.max_time >= t or state.caught_up_wall >= vouched:
                continue
            if state.last_heard_wall <= gone:
                continue
            return False
        return True

    def caught_up(self) -> bool:
        """Nothing is waiting anywhere: nothing held here, and every input partition has been
        reported caught up since its last record (by a report that had seen that record), and
        recently: within `FRESH_WITHIN` (or `idle_after`, if longer) of the newest wall stamp.
        A partition never heard of, or whose worker is gone, is not caught up."""
        if self.pending:
            return False
        sources = self.sources
        if not all(
            (topic, p) in sources for topic, count in self.partitions.items() for p in range(count)
        ):
            return False
        recent = self.wall - max(self.FRESH_WITHIN, self.idle_after)
        return all(state.caught_up_wall >= recent for state in sources.values())

    def _all_heard_of(self) -> bool:
        if self.wall - self.first_wall >= self.max_hold:
            return True
        sources = self.sources
        return all(
            (topic, p) in sources for topic, count in self.partitions.items() for p in range(count)
        )

    def _source(self, topic: str, partition: int) -> SourceState:
        state = self.sources.get((topic, partition))
        if state is None:
            state = self.sources[(topic, partition)] = SourceState()
        return state

    def _saw_wall(self, wall: float) -> None:
        self.wall = max(self.wall, wall)
        self.first_wall = min(self.first_wall, wall)


@dataclass(frozen=True, slots=True)
class Output:
    """Something to publish: an alert or a dead letter, numbered in the order produced."""

    kind: Literal["alert", "deadletter"]
    seq: int
    key: bytes
    value: bytes


@dataclass(frozen=True)
class LiveSettings:
    idle_after: float = 0.25  # margin between workers' clocks for a caught-up vouch (Merge)
    max_hold: float = 30.0  # a partition not heard of this long holds nobody back
    # No events this long: move event time on by the wall clock; 0 turns every wall-clock
    # advance off (also the one between events when caught up: claimflow/live/idle.py).
    idle_clock_after: float = 60.0


class LiveEngine:
    """The engine behind the merge, fed from the sequenced topic one record at a time."""

    def __init__(self, config: Config, input_types: dict[str, str], settings: LiveSettings) -> None:
        self.engine = Engine(config)
        self.merge = Merge(settings.idle_after, settings.max_hold)
        self.input_types = input_types  # input topic -> event type
        self.next_offset = 0  # sequenced offsets below this have been applied
        self.output_seq = 0
        self._clock = ManualClock()  # reads the wall stamps of the log, never the system clock
        self._idle = (
            IdleClock(self.engine, self._clock, idle_after=settings.idle_clock_after)
            if settings.idle_clock_after > 0
            else None
        )
        self._started = False

    def take(self, offset: int, envelope: Envelope | EnvelopeError) -> list[Output]:
        """Apply the sequenced record at `offset`; nothing happens for one applied before."""
        if offset < self.next_offset:
            return []
        self.next_offset = offset + 1
        if isinstance(envelope, EnvelopeError):
            rejection = Rejection(Reason.INVALID_VALUE, str(envelope))
            self.engine.refuse(rejection)
            return [self._dead_letter(b"", rejection, "?", -1, offset, None)]
        if isinstance(envelope, Bundle):
            outputs: list[Output] = []
            for record in envelope.records:
                outputs.extend(self._handle(record))
            return outputs
        return self._handle(envelope)

    def recover(self, record: Forwarded) -> list[Output]:
        """Apply an input record re-read from the input log because the sequenced topic
        skipped it (an offset gap, seen at take-over): as if ingest had forwarded it. The
        detector also applies the records of a bundle one by one this way, filling any gap
        before each, and then marks the bundle's offset applied (`applied`)."""
        return self._handle(record)

    def applied(self, offset: int) -> None:
        """The sequenced record at `offset` has been applied (a bundle, record by record)."""
        self.next_offset = max(self.next_offset, offset + 1)

    def expected_offset(self, topic: str, partition: int) -> int | None:
        """The next offset the merge expects from an input partition (None: no record of it
        taken yet, so nothing to compare with)."""
        state = self.merge.sources.get((topic, partition))
        return None if state is None or state.next_offset == 0 else state.next_offset

    def log_reset(self, offset: int) -> None:
        """The broker came back empty: its sequenced and input logs start again from 0. Take
        the sequenced record at `offset` next and every input offset as new; the engine state
        (counts, open claims, baselines) carries on."""
        self.next_offset = offset
        for state in self.merge.sources.values():
            state.next_offset = 0
            state.caught_up_wall = -_NEVER

    def _handle(self, envelope: Forwarded | Progress) -> list[Output]:
        outputs: list[Output] = []
        if isinstance(envelope, Progress):
            self.merge.report(envelope)
        elif self.merge.offer(envelope) and envelope.reason is not None:
            rejection = Rejection(Reason(envelope.reason), envelope.detail or "")
            feed(self.engine, rejection)  # refused at ingest (did not decode): counted
            outputs.append(self._dead_letter_for(envelope, rejection))
        released = self.merge.release()
        idle = self._idle
        for record in released:
            if idle is not None and record.time is not None:
                idle.observe(record.wall, record.time)
            problem = feed(self.engine, decode(record.raw, self.input_types.get(record.topic)))
            if problem is not None:
                outputs.append(self._dead_letter_for(record, problem))
        self._clock.set(self.merge.wall)
        if idle is not None:
            if released or not self._started:
                idle.event_taken()
                self._started = True
            if not self.merge.pending and self.engine.newest > -_NEVER:
                # Caught up: event time runs on with the wall clock between events, at the
                # lag the freshest events are read with (claimflow/live/idle.py); idle: after
                # `idle_clock_after` with none at all.
                idle.tick(self.merge.caught_up)
        for alert in self.engine.drain_alerts():
            outputs.append(self._alert(alert))
        return outputs

    def _alert(self, alert: Alert) -> Output:
        self.output_seq += 1
        key = json.dumps(alert.labels, sort_keys=True, separators=(",", ":")).encode()
        return Output("alert", self.output_seq, key, alert.to_json().encode())

    def _dead_letter_for(self, record: Forwarded, rejection: Rejection) -> Output:
        digest = Digest(record.size or 0, record.sha256) if record.sha256 is not None else None
        return self._dead_letter(
            record.raw,
            rejection,
            record.topic,
            record.partition,
            record.offset,
            record.wall,
            digest,
        )

    def _dead_letter(
        self,
        raw: bytes,
        rejection: Rejection,
        topic: str,
        partition: int,
        offset: int,
        wall: float | None,
        digest: Digest | None = None,
    ) -> Output:
        self.output_seq += 1
        record = dead_letter(raw, rejection, topic, partition, offset, wall, digest)
        return Output("deadletter", self.output_seq, topic.encode(), dead_letter_json(record))


@dataclass
class OutputGate:
    """After a restart: the last output number that landed in each output partition. The
    same log regenerates the same numbers, and a partition receives them in order, so a
    regenerated output is already there exactly when its number is at most that partition's."""

    landed: dict[tuple[str, int], int] = field(default_factory=dict)

    def should_send(self, kind: str, partition: int, seq: int) -> bool:
        return seq > self.landed.get((kind, partition), 0)
