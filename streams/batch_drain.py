"""Hand the input topics' records to ingest a poll at a time, past Faust's per-record path.

Faust's consumer hands every record on alone: `Consumer._drain_messages` awaits
`wait_first(callback(message), suspend_flow.wait())` for each one (four futures and an
`asyncio.wait`), and the conductor's callback takes a lock, builds an `Event` and queues it
for the agent's stream. That caps anything reading through Faust's streams at about 7,500
records a second on the benchmark machine (the naive Faust agent of
benchmarks/live_throughput.py, 0.08x a bare aiokafka loop), while ingest's own work is about
5 us a record (docs/design-live-pipeline.md, "Where a drain waits").

`install(consumer, topics, queue)` replaces `_drain_messages` on one Faust consumer with the
same loop that, for records of `topics`, skips the per-record hand-over: each poll's records
of those topics go to `queue` as one list of Faust messages. The reader marks a list as
unacknowledged when it takes it (`track`, so a rebalance waits for a list being forwarded,
as it waits for an agent's event, but not for lists still queued, which it clears) and
acknowledges each message once its list was forwarded (`ack`). Records of other
topics (the sequenced topic, bundles of a thousand records each) take Faust's path
unchanged. Offsets, gaps and commits stay Faust's: the read offset per partition, the gap
bookkeeping and the commit every `broker_commit_every` acknowledgements are the same code.

`queue` should be Faust's flow-control queue (`app.FlowControlQueue(clear_on_resume=True)`):
a rebalance clears it with the agents' buffers, and what was in it is read again from the
committed offsets. When the consumer lacks what the loop relies on, `install` returns False
and records take Faust's path to the ingest agent as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

log = logging.getLogger("claimflow.ingest")
_MARK = "_claimflow_batch_drain"
_NEEDS = (
    "_drain_messages",
    "getmany",
    "callback",
    "_read_offset",
    "_unacked_messages",
    "_commit_every",
    "_add_gap",
    "suspend_flow",
)


def install(consumer: Any, topics: Collection[str], queue: Any) -> bool:
    """Make `consumer` hand each poll's records of `topics` to `queue` as one list. False when
    it is not a consumer this was written against (then nothing changes)."""
    if any(not hasattr(consumer, name) for name in _NEEDS):
        return False
    if getattr(consumer._drain_messages, _MARK, False):
        return True
    wanted = frozenset(topics)

    async def drain_messages(fetcher: Any) -> None:
        await _drain(consumer, fetcher, wanted, queue)

    setattr(drain_messages, _MARK, True)
    consumer._drain_messages = drain_messages
    return True


def track(consumer: Any, messages: list[Any]) -> None:
    """Messages taken from the queue to be forwarded: unacknowledged until `ack`, so that a
    rebalance waits for them (Faust's `wait_empty`) before it commits."""
    unacked = consumer._unacked_messages
    for message in messages:
        unacked.add(message)


def ack(consumer: Any, messages: list[Any]) -> None:
    """Acknowledge messages a drain handed over: their offsets become committable."""
    acknowledge = consumer.ack
    for message in messages:
        acknowledge(message)


async def _drain(consumer: Any, fetcher: Any, wanted: frozenset[str], queue: Any) -> None:
    """Faust's `Consumer._drain_messages` (faust-streaming 0.15), but records of `wanted` are
    collected per poll and queued as one list; everything else is as it was there."""
    callback: Callable[[Any], Awaitable[Any]] = consumer.callback
    consumer_should_stop = consumer._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    read_offset = consumer._read_offset
    commit_every = consumer._commit_every
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    suspended = consumer.suspend_flow.wait
    wait_first = consumer.wait_first
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            batch: list[Any] = []
            await consumer.sleep(0)
            if consumer.should_stop:
                continue
            handed = 0
            async for tp, message in consumer.getmany(timeout=1.0):
                offset = message.offset
                last = read_offset[tp]
                if last is not None and offset < last:
                    continue  # read before (Faust drops these too)
                if last and offset - last > 1 and acks_enabled_for(message.topic):
                    await consumer._add_gap(tp, last + 1, offset)
                if commit_every is not None and consumer._n_acked >= commit_every:
                    consumer._n_acked = 0
                    await consumer.commit()
                if tp.topic in wanted:
                    batch.append(message)
                else:
                    handed += 1
                    if handed > 100:  # as Faust: let the loop breathe on long polls
                        handed = 0
                        await asyncio.sleep(0)
                    await wait_first(callback(message), suspended())
                read_offset[tp] = offset
            if batch:
                await _hand_over(queue, batch, suspended)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            log.info("broker stopped the consumer, shutting down")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            return
        raise
    except Exception as exc:
        log.exception("draining the consumer raised: %r", exc)
        raise


async def _hand_over(queue: Any, batch: list[Any], suspended: Callable[[], Awaitable[Any]]) -> None:
    """Queue `batch`, unless a rebalance starts first. A rebalance clears the queue, which
    cancels a put waiting on it; either way the list is dropped (its records are read again
    from the committed offsets once the rebalance ends) and the loop goes on, to be stopped or
    resumed by Faust. (mode's `wait_first` would raise CancelledError on the cancelled put,
    and the fetcher would crash outside a supervisor.)"""
    put = asyncio.ensure_future(queue.put(batch))
    flow_stops = asyncio.ensure_future(suspended())
    try:
        await asyncio.wait((put, flow_stops), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (put, flow_stops):
            if not future.done():
                future.cancel()
        if put.done() and not put.cancelled():
            error = put.exception()
            if error is not None:
                raise error
