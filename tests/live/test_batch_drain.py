"""The poll hand-over (streams/batch_drain.py) installs on the Faust consumer the worker runs
and on nothing else. What it does with records is tested end to end on the real broker:
tests/live/test_worker.py (`claimflow_ingest_batches_total{path="poll"}`, nothing through the
per-record path, same tables and alerts as replay, SIGKILL and restart, two workers)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from claimflow.streams import batch_drain


def _app() -> Any:
    app = faust.App(
        "drain-test", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False
    )
    app.topic("inputs")
    return app


def test_it_installs_on_fausts_aiokafka_consumer_once() -> None:
    app = _app()
    queue = app.FlowControlQueue(maxsize=2, clear_on_resume=True)
    consumer = app.consumer
    original = consumer._drain_messages
    assert batch_drain.install(consumer, ["inputs"], queue)
    installed = consumer._drain_messages
    assert installed is not original
    assert batch_drain.install(consumer, ["inputs"], queue)  # a second time: a no-op
    assert consumer._drain_messages is installed


def test_a_consumer_without_what_it_relies_on_is_left_alone() -> None:
    class Elsewhere:  # another transport's consumer: no Faust internals to take over
        def _drain_messages(self, fetcher: Any) -> None:
            raise AssertionError("not called")

    other = Elsewhere()
    before = other._drain_messages
    assert not batch_drain.install(other, ["inputs"], object())
    assert other._drain_messages == before


def test_a_rebalance_clearing_a_full_queue_drops_the_waiting_poll_without_raising() -> None:
    """The queue is full while a backlog drains, so the drain waits in `put` when a rebalance
    starts; Faust then clears the queue, which cancels that put. The poll is dropped (read
    again from the committed offsets) and the drain goes on: mode's `wait_first` raised
    CancelledError there, which crashed the fetcher outside any supervisor."""
    app = _app()
    flow = app.flow_control
    flow.resume()
    queue = app.FlowControlQueue(maxsize=1, clear_on_resume=True)
    suspended = asyncio.Event()

    async def run() -> None:
        await queue.put(["first poll"])  # full
        waiting = asyncio.ensure_future(
            batch_drain._hand_over(queue, ["second poll"], suspended.wait)
        )
        await asyncio.sleep(0.05)
        assert not waiting.done()  # blocked on the full queue
        suspended.set()  # the rebalance: flow stopped...
        flow.clear()  # ...and the agents' buffers, this queue with them, cleared
        await asyncio.wait_for(waiting, 2)
        assert waiting.exception() is None
        assert queue.empty()  # neither poll is left to forward

    asyncio.run(run())


def test_a_poll_is_queued_when_there_is_room() -> None:
    app = _app()
    app.flow_control.resume()
    queue = app.FlowControlQueue(maxsize=2, clear_on_resume=True)
    never = asyncio.Event()

    async def run() -> list[Any]:
        await batch_drain._hand_over(queue, ["a poll"], never.wait)
        return [queue.get_nowait()]

    assert asyncio.run(run()) == [["a poll"]]
