"""agents/dump.py, the `kill -USR1` dump: it must reach the await a task is stuck in through
async generators and wrappers (where asyncio's and mode's own dumps stop), name the queue it
waits on, and print no local variables."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

from claimflow.agents.dump import dump

SECRET = "hunter2-not-in-the-dump"


async def _stuck_in_a_full_queue(queue: asyncio.Queue[str]) -> None:
    password = SECRET  # a local variable: must not be printed
    async for _ in _items(queue, password):
        pass


async def _items(queue: asyncio.Queue[str], item: str) -> AsyncIterator[str]:
    """The put blocks inside the async generator, as a Faust stream's read does; the items
    held (as a stream buffer holds events) must not be printed either."""
    while True:
        await queue.put(item)
        yield item


def test_the_dump_reaches_the_innermost_await_and_prints_no_locals() -> None:
    async def run() -> str:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=2)
        task = asyncio.ensure_future(_stuck_in_a_full_queue(queue), loop=None)
        await asyncio.sleep(0.05)  # fills the queue, then waits to put the third
        out = io.StringIO()
        dump(out)
        task.cancel()
        return out.getvalue()

    text = asyncio.run(run())
    chain = text[text.index("_stuck_in_a_full_queue") :]
    assert "in _stuck_in_a_full_queue" in chain
    assert "in _items" in chain  # through the async generator's asend
    assert "in put" in chain and "await putter" in chain  # the innermost frame: the put
    assert "in <Queue" in chain and "maxsize=2" in chain  # and the queue it waits on
    assert "Queue at" in text and "2 of 2, 0 getters, 1 putters" in text
    assert "---- thread MainThread" in text
    assert SECRET not in text
