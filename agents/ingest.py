"""Stage one: the ingest agent, spread over the input partitions by the consumer group.

It validates each record and forwards it, bytes unchanged, to the sequenced topic with its
source, event time and the wall time it was read (or the reason it was refused), in batches:
many records to one sequenced record (`envelopes.Bundle`, one produce request). A timer
reports, for every input partition this worker owns, how far it has forwarded and whether
anything is waiting behind that: the merge in claimflow/live/merge.py needs both to order
records across partitions. No state, so nothing to recover: a restart forwards again what
was not committed, and the merge skips it by offset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from aiokafka.errors import IllegalStateError
from aiokafka.structs import TopicPartition
from faust.types import TP as _TP

from claimflow.contract.deadletter import MAX_ORIGINAL, Digest
from claimflow.contract.events import decode
from claimflow.contract.rejections import Reason, Rejection
from claimflow.live.alignment import DENSITY_OVER, Alignment, Source
from claimflow.live.envelopes import Forwarded, Progress, bundles
from claimflow.streams import fair_fetch, fetch_times
from claimflow.streams.delivery import Delivery, collect_outcome
from claimflow.timeutil import Clock

log = logging.getLogger("claimflow.ingest")
QUIET_EVERY = 1.0  # seconds between progress reports while nothing is forwarded
RECONCILE_EVERY = 2.0  # seconds between settings of the consumer's pauses in full
# How stale a partition end is taken to be when the consumer cannot say when it was fetched
# (streams/fetch_times.py not installed): what CLAIMFLOW_IDLE_AFTER covered before it.
UNTIMED_STALENESS = 2.0
# Reports come every CLAIMFLOW_PROGRESS_EVERY for this long (plus the idle margin) after the
# last record was forwarded, then once a second (QUIET_EVERY): long enough for the fetches
# that vouch for the other partitions after it.
BUSY_REPORTS_FOR = 2.0
# Records waiting in an owned input partition whose end no fetch has given yet: some, maybe.
UNKNOWN_WAITING = 1


class Ingest:
    def __init__(  # noqa: PLR0913 - the worker's parts and settings, passed in by agents/app.py
        self,
        app: Any,
        input_types: dict[str, str],
        sequenced: Any,
        clock: Clock,
        max_event_bytes: int = 256 * 1024,
        future_tolerance: float = 600.0,
        busy_for: float = 0.0,
        align_drift: float = 0.0,
        align_records: int = 0,
        fetch_max_wait: float | None = None,
        fetch_max_bytes: int | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        self.app = app
        # A bundle counts as forwarded once the broker has acknowledged it (resent if not).
        self.delivery = delivery or Delivery()
        # Partitions far ahead in event time are held back while a backlog is read, so that
        # the merge holds a bounded number of records (claimflow/live/alignment.py): by a
        # limit on the records the consumer hands out of each (streams/fair_fetch.py; what is
        # past it waits in the consumer's fetch buffer), or, on an aiokafka where that cannot
        # be installed, by pausing the partition (a fetch round trip on each resume, and a
        # whole fetched chunk let through before the pause takes effect).
        self.alignment = Alignment(align_drift, hold_records=align_records)
        self.hand_out = fair_fetch.HandOut(input_types, DENSITY_OVER if align_drift > 0 else None)
        self._capping = False  # the hand-out limits are installed: no pauses
        self._generation: int | None = None  # the consumer generation the pauses belong to
        # Records waiting per owned input partition: from the reports (every partition), and
        # updated as records are forwarded.
        self.waiting: dict[Source, int] = {}
        self._pausing = False  # a pause/resume call is queued for the consumer thread
        self._paused_at = -float("inf")  # clock time the last one was queued
        self.fetch_max_wait = fetch_max_wait
        self.fetch_max_bytes = fetch_max_bytes  # per fetch response (None: aiokafka's 50 MB)
        self._fetch_tuned: object = None  # the aiokafka consumer whose fetch wait was set
        self._fetcher: Any = None  # its fetcher, once it records fetch send times
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
        self.forwarded_count: dict[tuple[str, int], int] = {}  # records, this assignment
        self.lag: dict[str, int] = {}  # input topic -> records waiting (owned partitions)
        # Where the ingest agent's time goes (claimflow_ingest_seconds_total): waiting for
        # Faust to hand it the next batch, or forwarding one (judging, bundling, sending and
        # the broker's acknowledgement). A drain that mostly waits is not limited by the
        # sequenced hop (docs/design-live-pipeline.md, "Where a drain waits").
        self.seconds: dict[str, float] = {"waiting": 0.0, "forwarding": 0.0}
        # Batches forwarded by how they reached ingest (claimflow_ingest_batches_total): a
        # consumer poll handed over whole (streams/batch_drain.py), or through the agent's
        # stream, Faust's per-record path, taken only when the drain could not be installed.
        self.batches: dict[str, int] = {"poll": 0, "stream": 0}
        self.errors = 0  # batches whose forwarding failed (and were tried again)

    async def consume(
        self,
        batches: AsyncIterator[list[Any]],
        forwarded: Callable[[list[Any]], None] | None = None,
        path: str = "poll",
        retry_after: float | None = None,
    ) -> None:
        """Forward every batch of input messages (Faust messages: a poll's records from
        streams/batch_drain.py, or the messages of the agent's `stream.take_events`), timing
        the waits for the next batch and the forwarding apart (`seconds`). `forwarded` is
        called with each batch once it was forwarded (acknowledging it; the agent's stream
        acknowledges its events itself when the next batch is asked for). `path`: how the
        batches reach ingest, "poll" or "stream" (`batches`). With `retry_after`, a batch
        whose forwarding raises is logged, counted (`errors`) and tried again after that
        many seconds, until it goes; without, the error propagates."""
        seconds = self.seconds
        counts = self.batches
        mark = time.perf_counter()
        async for messages in batches:
            got = time.perf_counter()
            seconds["waiting"] += got - mark
            records = [(m.topic, m.partition, m.offset, m.value) for m in messages]
            while True:
                try:
                    await self.forward_many(records)
                    break
                except Exception:
                    if retry_after is None:
                        raise
                    self.errors += 1
                    log.exception("forwarding input records failed; trying again")
                    await asyncio.sleep(retry_after)
            if forwarded is not None:
                forwarded(messages)
            counts[path] += 1
            mark = time.perf_counter()
            seconds["forwarding"] += mark - got

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
            await self.delivery.send(
                "sequenced",
                partial(
                    self.sequenced.send,
                    key=b"bundle",
                    value=value,
                    headers=headers,
                    partition=0,
                    force=True,
                ),
            )
            forwarded = self.forwarded_next
            count = self.forwarded_count
            for record in bundle.records:
                source = (record.topic, record.partition)
                forwarded[source] = record.offset + 1
                count[source] = count.get(source, 0) + 1
        if records:
            self.last_forward = records[-1].wall
            if self.alignment.max_drift > 0:
                seen = self.alignment.forwarded
                sources = set()
                for record in records:
                    source = (record.topic, record.partition)
                    seen(source, record.time, record.wall)
                    sources.add(source)
                ends = self.app.consumer.highwater
                for source in sources:
                    end = ends(_TP(*source))
                    if end is not None:
                        self.waiting[source] = max(0, end - self.forwarded_next[source])
                await self.align()

    async def align(self) -> None:
        """Hold back the owned input partitions running ahead in event time, let go those the
        others have caught up with (claimflow/live/alignment.py): by limits on what the
        consumer hands out (`hand_out`), or where those cannot be installed by pausing them.
        Not while Faust rebalances or recovers tables: it pauses and resumes partitions
        itself then, and a new assignment starts with nothing paused or limited but the
        probe."""
        app = self.app
        if self.alignment.max_drift <= 0 or app.rebalancing or app.in_recovery:
            return
        generation = app.consumer_generation_id
        if generation != self._generation:
            self._generation = generation
            owned = {
                (tp.topic, tp.partition)
                for tp in app.assignor.assigned_actives()
                if tp.topic in self.input_types
            }
            self.alignment.forget(owned)
            self._pausing = False  # a call queued to the old assignment may never run
            self.waiting = {s: self.waiting.get(s, UNKNOWN_WAITING) for s in owned}
            # New counts (the consumer thread may be adding to the old ones); records of the
            # new assignment handed out before this point count as forwarded-only, never
            # as less than nothing on their way (`ahead` below is at least 0).
            self.hand_out.handed = {}
            self.forwarded_count = {}
        now = self.clock.now()
        pause, resume = self.alignment.decide(self.waiting, now)
        if self._capping:
            # Less what has been handed out and not yet forwarded (queued for ingest).
            self.hand_out.limit(self.alignment.caps, self.waiting, self.forwarded_count)
            return
        # On a change, unless a call is already queued (it reads the latest target when it
        # runs); and every few seconds whatever changed: the consumer's pauses are set in
        # full from the target each time, so one that failed (a rebalance, a broker reset
        # under way) or was lost with the consumer thread's queue is put right.
        if now - self._paused_at >= RECONCILE_EVERY or ((pause or resume) and not self._pausing):
            self._pausing = True
            self._paused_at = now
            self._apply_pauses()

    async def _tune_fetch(self) -> None:
        """Set how long a fetch waits at the broker (`fetch_max_wait`), and make every poll
        hand out a share of each partition's fetched records (streams/fair_fetch.py), once
        per consumer.

        Faust creates aiokafka's consumer with `fetch_max_wait_ms=1500` and no setting to
        change it. A fetch covers every partition being read, and on the embedded broker it
        waited the whole 1.5 s whenever some of them had nothing new: an aligned 30-day
        catch-up took nearly twice as long with it as at 0.1 s. It also bounds how
        stale the partition ends are that progress reports vouch with (CLAIMFLOW_IDLE_AFTER).
        The attribute is aiokafka's own (`Fetcher._fetch_max_wait_ms`, read at every fetch
        request); if a version lacks it, the wait stays Faust's and the worker logs why.

        Also how many bytes one fetch response may carry (`fetch_max_bytes`; Faust leaves
        aiokafka's 50 MB). The embedded broker ignores the per-partition limit (512 KiB
        asked, 6.4 MB of one partition returned) but keeps to this one, and what a partition
        held back by alignment has fetched waits in the buffer: on a 90-day catch-up those
        chunks were the largest item at the worker's peak (32 MB of 137 MB, by memray)."""
        thread = self._consumer_thread()
        consumer = getattr(thread, "_consumer", None)
        fetcher = getattr(consumer, "_fetcher", None)
        if thread is None or fetcher is None or self._fetch_tuned is consumer:
            return
        self._fetch_tuned = consumer
        wait_ms = round(1000 * (self.fetch_max_wait or 0.0))

        async def apply() -> None:
            if hasattr(fetcher, "_fetch_max_wait_ms"):
                fetcher._fetch_max_wait_ms = wait_ms
            else:
                log.warning("cannot set the fetch wait on this aiokafka: it stays Faust's 1.5 s")
            if self.fetch_max_bytes is not None:
                if hasattr(fetcher, "_fetch_max_bytes"):
                    fetcher._fetch_max_bytes = self.fetch_max_bytes
                else:
                    log.warning("cannot bound fetch responses on this aiokafka: 50 MB each")
            if fair_fetch.install(fetcher, self.hand_out):
                self._capping = True
                # Limits from here on: let go any pause decided before they were installed.
                for tp in thread._consumer.paused():
                    if tp.topic in self.input_types:
                        thread._consumer.resume(tp)
            else:
                log.warning("cannot share polls fairly across partitions on this aiokafka")
            if fetch_times.install(fetcher, self.clock.now):
                self._fetcher = fetcher
            else:
                log.warning(
                    "cannot tell when partition ends were fetched on this aiokafka: reports "
                    "vouch for them as of %.0f s before they are sent",
                    UNTIMED_STALENESS,
                )

        await thread.call_thread(apply)

    def _consumer_thread(self) -> Any:
        """Faust's consumer thread, where aiokafka's consumer runs (None: not the aiokafka
        driver, so no alignment and no fetch wait)."""
        return getattr(self.app.consumer, "_thread", None)

    def _apply_pauses(self) -> None:
        """Make aiokafka's consumer, which runs in Faust's consumer thread, fetch from none of
        the partitions the alignment holds paused and from every other assigned input
        partition. Faust's own `pause_partitions` is not used: it drops records already
        fetched for the partition from the batch being handed out (an offset gap,
        faust-streaming #216), where aiokafka's pause discards only what it has not handed
        out and fetches it again on resume. Faust never pauses at that level itself, so the
        whole state is ours, set in full from the latest target when the thread runs the
        call. Queued thread-safely (mode's `cast_thread` touches the thread's queue from
        this one) and not awaited: the consumer thread may be inside a long poll."""
        thread = self._consumer_thread()
        if thread is None:
            self._pausing = False
            return
        topics = self.input_types

        async def apply() -> None:
            self._pausing = False  # a change decided from here on queues another call
            consumer = thread._consumer
            target = {TopicPartition(t, p) for t, p in set(self.alignment.paused)}
            now_paused = consumer.paused()
            for tp in consumer.assignment():
                if tp.topic not in topics:
                    continue
                try:
                    if tp in target and tp not in now_paused:
                        consumer.pause(tp)
                    elif tp not in target and tp in now_paused:
                        consumer.resume(tp)
                except IllegalStateError:  # no longer assigned: a rebalance is under way
                    continue

        task = asyncio.ensure_future(thread.call_thread(apply))
        _PENDING.add(task)
        task.add_done_callback(_settled)

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
        if self.fetch_max_wait is not None:
            await self._tune_fetch()
        owned = [tp for tp in app.assignor.assigned_actives() if tp.topic in self.input_types]
        for key in [
            k for k in self.forwarded_next if k not in {(t.topic, t.partition) for t in owned}
        ]:
            del self.forwarded_next[key]  # moved to another worker
        # The high-water marks from the latest fetch responses: asking the broker instead
        # (ListOffsets) took over a second a time on the embedded broker.
        # As of when each end held: read before the ends (streams/fetch_times.py), and
        # without a record of it, a report's time less how stale an end was taken to be.
        stale = self.clock.now() - UNTIMED_STALENESS
        as_of = {tp: fetch_times.as_of(self._fetcher, tp.topic, tp.partition) for tp in owned}
        ends = {tp: app.consumer.highwater(tp) for tp in owned}
        sources = []
        vouched: list[float] = []
        lag: dict[str, int] = dict.fromkeys(self.input_types, 0)
        waiting: dict[Source, int] = {}
        for tp in sorted(owned):
            end = ends.get(tp)
            nxt = self.forwarded_next.get((tp.topic, tp.partition))
            if nxt is None:
                try:
                    nxt = await app.consumer.position(tp)
                except IllegalStateError:  # revoked since assigned_actives(): a rebalance
                    continue
            known = as_of[tp]
            vouched.append(stale if known is None else known)
            if end is None or nxt is None:
                sources.append((tp.topic, tp.partition, nxt or 0, False))
                waiting[(tp.topic, tp.partition)] = UNKNOWN_WAITING
                continue
            lag[tp.topic] += max(0, end - nxt)
            waiting[(tp.topic, tp.partition)] = max(0, end - nxt)
            sources.append((tp.topic, tp.partition, nxt, nxt >= end))
        self.lag = lag
        self.waiting = waiting
        await self.align()
        partitions = {
            topic: count
            for topic in self.input_types
            if (count := app.consumer.topic_partitions(topic)) is not None
        }
        now = self.clock.now()
        if now - self.last_forward > self.busy_for and now - self.last_report < QUIET_EVERY:
            return  # quiet: the lag above is current, the report can wait
        self.last_report = now
        value, headers = Progress(now, partitions, tuple(sources), tuple(vouched)).encode()
        # Not sent through Delivery: a report the broker refuses is superseded by the next
        # one. Its outcome is still collected, so a refusal is a line in the log, not an
        # "exception was never retrieved" with a traceback.
        pending = await self.sequenced.send(
            key=b"progress", value=value, headers=headers, partition=0
        )
        collect_outcome(pending)
        pending.add_done_callback(_report_settled)


_PENDING: set[asyncio.Future[Any]] = set()  # pause/resume calls under way (kept referenced)


def _settled(task: asyncio.Future[Any]) -> None:
    _PENDING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("pausing or resuming input partitions failed: %r", task.exception())


def _report_settled(sent: asyncio.Future[Any]) -> None:
    if not sent.cancelled() and (exc := sent.exception()) is not None:
        log.info("a progress report was refused (%r); the next one replaces it", exc)


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
