"""Stage one: the ingest agent, spread over the input partitions by the consumer group.

It validates each record and forwards it, bytes unchanged, to the sequenced topic with its
source, event time and the wall time it was read (or the reason it was refused), in batches:
many records to one sequenced record (`sequencer.Bundle`, one produce request). A timer
reports, for every input partition this worker owns, how far it has forwarded and whether
anything is waiting behind that: the merge in claimflow/sequencer.py needs both to order
records across partitions. No state, so nothing to recover: a restart forwards again what
was not committed, and the merge skips it by offset.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.errors import IllegalStateError

from claimflow.deadletter import MAX_ORIGINAL, Digest
from claimflow.events import decode
from claimflow.rejections import Reason, Rejection
from claimflow.sequencer import Forwarded, Progress, bundles
from claimflow.timeutil import Clock

log = logging.getLogger("claimflow.ingest")
QUIET_EVERY = 1.0  # seconds between progress reports while nothing is forwarded


class Ingest:
    def __init__(
        self,
        app: Any,
        input_types: dict[str, str],
        sequenced: Any,
        clock: Clock,
        max_event_bytes: int = 256 * 1024,
        future_tolerance: float = 600.0,
        busy_for: float = 0.0,
    ) -> None:
        self.app = app
        # Reports go out at every timer tick (CLAIMFLOW_PROGRESS_EVERY) only while records
        # flow: for `busy_for` seconds after the last forward (long enough for a report that
        # vouches for it, CLAIMFLOW_IDLE_AFTER later); when quiet, one every QUIET_EVERY
        # seconds keeps the detector's wall clock moving. Frequent reports are what lets
        # the merge release a record well under a second after the other partitions were
        # last seen caught up; sent always, they would fill the sequenced log.
        self.busy_for = busy_for
        self.last_forward = -float("inf")  # clock time of the last forward
        self.last_report = -float("inf")  # clock time of the last report sent
        # Records over this size are refused (`too_large`) and only an excerpt is forwarded:
        # the whole would not fit in a sequenced record (issue 14 item 5).
        self.max_event_bytes = max_event_bytes
        # An event dated further than this ahead of the wall clock that read it is refused
        # (`future_timestamp`): one outlier must not move event time (issue 14 item 3).
        self.future_tolerance = future_tolerance
        self.input_types = input_types  # topic -> event type
        self.sequenced = sequenced
        self.clock = clock
        self.forwarded_next: dict[tuple[str, int], int] = {}  # per owned input partition
        self.lag: dict[str, int] = {}  # input topic -> records waiting (owned partitions)

    async def forward_many(self, batch: list[tuple[str, int, int, bytes | None]]) -> None:
        """Forward a batch of input records (topic, partition, offset, value), in the order
        read, as few sequenced records as fit (`Bundle`): one produce request per bundle
        instead of one per input record (issue 15)."""
        records = [
            self.judge(topic, partition, offset, raw if raw is not None else b"")
            for topic, partition, offset, raw in batch
        ]
        for bundle in bundles(records):
            value, headers = bundle.encode()
            await self.sequenced.send(
                key=b"bundle", value=value, headers=headers, partition=0, force=True
            )
            forwarded = self.forwarded_next
            for record in bundle.records:
                forwarded[(record.topic, record.partition)] = record.offset + 1
        if records:
            self.last_forward = records[-1].wall

    def judge(self, topic: str, partition: int, offset: int, raw: bytes) -> Forwarded:
        """What to forward for one input record: the record with its event time, or why not."""
        return judge(
            topic,
            partition,
            offset,
            raw,
            self.clock.now(),
            self.input_types[topic],
            self.max_event_bytes,
            self.future_tolerance,
        )

    async def report(self) -> None:
        """Send a progress report for the input partitions this worker owns now."""
        app = self.app
        owned = [tp for tp in app.assignor.assigned_actives() if tp.topic in self.input_types]
        for key in [
            k for k in self.forwarded_next if k not in {(t.topic, t.partition) for t in owned}
        ]:
            del self.forwarded_next[key]  # moved to another worker
        # The high-water marks from the latest fetch responses: asking the broker instead
        # (ListOffsets) took over a second a time on the embedded broker.
        ends = {tp: app.consumer.highwater(tp) for tp in owned}
        sources = []
        lag: dict[str, int] = dict.fromkeys(self.input_types, 0)
        for tp in sorted(owned):
            end = ends.get(tp)
            nxt = self.forwarded_next.get((tp.topic, tp.partition))
            if nxt is None:
                try:
                    nxt = await app.consumer.position(tp)
                except IllegalStateError:  # revoked since assigned_actives(): a rebalance
                    continue
            if end is None or nxt is None:
                sources.append((tp.topic, tp.partition, nxt or 0, False))
                continue
            lag[tp.topic] += max(0, end - nxt)
            sources.append((tp.topic, tp.partition, nxt, nxt >= end))
        self.lag = lag
        partitions = {
            topic: count
            for topic in self.input_types
            if (count := app.consumer.topic_partitions(topic)) is not None
        }
        now = self.clock.now()
        if now - self.last_forward > self.busy_for and now - self.last_report < QUIET_EVERY:
            return  # quiet: the lag above is current, the report can wait
        self.last_report = now
        value, headers = Progress(now, partitions, tuple(sources)).encode()
        await self.sequenced.send(key=b"progress", value=value, headers=headers, partition=0)


def judge(
    topic: str,
    partition: int,
    offset: int,
    raw: bytes,
    wall: float,
    event_type: str,
    max_event_bytes: int,
    future_tolerance: float,
) -> Forwarded:
    """One input record as ingest forwards it, read at wall time `wall`. Also used by the
    detector for records it re-reads to fill an offset gap."""
    if len(raw) > max_event_bytes:
        digest = Digest.of(raw)
        return Forwarded(
            topic,
            partition,
            offset,
            wall,
            raw[:MAX_ORIGINAL],
            reason=Reason.TOO_LARGE.value,
            detail=f"{len(raw)} bytes, over the {max_event_bytes}-byte limit "
            "(CLAIMFLOW_MAX_EVENT_BYTES)",
            size=digest.size,
            sha256=digest.sha256,
        )
    event = decode(raw, event_type)
    if isinstance(event, Rejection):
        return Forwarded(
            topic, partition, offset, wall, raw, reason=event.reason.value, detail=event.detail
        )
    t = event.time.timestamp()
    if t > wall + future_tolerance:
        return Forwarded(
            topic,
            partition,
            offset,
            wall,
            raw,
            reason=Reason.FUTURE_TIMESTAMP.value,
            detail=f"{t - wall:.0f}s ahead of the wall clock that read it, over the "
            f"{future_tolerance:.0f}s allowed (CLAIMFLOW_FUTURE_TOLERANCE)",
        )
    return Forwarded(topic, partition, offset, wall, raw, time=t)
