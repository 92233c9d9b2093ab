"""The engine behind the merge: the detector worker's stage of the live pipeline, without Kafka.

The live worker has two stages (docs/design-live-pipeline.md). The ingest agents, spread over
the input partitions, validate every record and forward it (its bytes, where it came from,
its event time and the wall time it was read) to the single-partition topic
`claimflow.sequenced`, many records to one sequenced record (claimflow/live/envelopes.py). The
worker that owns that partition runs `LiveEngine` over it. This module is that logic, with no
Kafka in it, so tests drive it directly:

* **Merge.** A record goes to the engine only once every input partition that may still hold
  older records has moved past it (claimflow/live/merge.py).
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

import json
from dataclasses import dataclass, field
from typing import Literal

from claimflow.config import Config
from claimflow.contract.deadletter import Digest, dead_letter, dead_letter_json
from claimflow.contract.events import decode
from claimflow.contract.rejections import Reason, Rejection
from claimflow.engine import Engine
from claimflow.engine.alerts import Alert
from claimflow.engine.feed import feed
from claimflow.live.envelopes import Bundle, Envelope, EnvelopeError, Forwarded, Progress
from claimflow.live.idle import IdleClock
from claimflow.live.merge import Merge
from claimflow.timeutil import ManualClock

_NEVER = float("inf")


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
