"""Sends that count as done only once the broker has acknowledged them.

Faust's `topic.send()` returns when the record is queued for the producer; the broker's
answer comes later, on a future nobody awaited. A refused send (the embedded broker
answered UnknownError for a moment after it came back empty and the topics were created
again) was then only an "exception was never retrieved" in the log: ingest had already
counted the bundle as forwarded, so its input records reached the detector only if a later
record of the same partition exposed the gap, and the last records of a partition never
did. `tests/attacks/test_broker_reset.py` hung that way about one run in five.

`Delivery.send` awaits the acknowledgement and sends the same record again after a refusal,
waiting a little longer each time (0.2 s doubling to 5 s), so a caller that goes on after it
knows its record is in the log. Retries are counted per output kind
(`claimflow_produce_retries_total`) and logged. A record sent twice (the first answer lost,
the record written) is harmless downstream: the merge skips input offsets it has taken and
the output gate skips output numbers that landed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError

log = logging.getLogger("claimflow.worker")
FIRST_DELAY = 0.2  # seconds before the first resend
MAX_DELAY = 5.0  # seconds between resends at most


class Delivery:
    def __init__(self) -> None:
        self.retries: Counter[str] = Counter()  # output kind -> sends repeated

    async def send(self, kind: str, send: Callable[[], Awaitable[Awaitable[Any]]]) -> Any:
        """Run `send` (a Faust `topic.send(...)` call) until the broker acknowledges the
        record; returns the broker's answer (the record's metadata)."""
        delay = FIRST_DELAY
        while True:
            try:
                pending = await send()
                collect_outcome(pending)
                return await pending
            except KafkaError as exc:
                self.retries[kind] += 1
                log.warning(
                    "sending to the %s topic failed (%s: %s); sending again in %.1f s",
                    kind,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)


def collect_outcome(sent: Any) -> None:
    """Retrieve the outcome Faust copies from the producer's future onto a second one.

    `topic.send()` returns aiokafka's future; when it completes, Faust's callback sets the
    same result or error on the send's `FutureMessage`, which it gives to nobody. A refused
    send therefore ended as an "exception was never retrieved" error with a traceback in
    the log however the caller handled the refusal (Delivery logs and resends it; a progress
    report is superseded by the next). The FutureMessage is found among the callbacks of the
    future returned (Faust passes it as `message=`); its outcome is read once it is set."""
    for callback, *_ in getattr(sent, "_callbacks", None) or ():
        message = getattr(callback, "keywords", {}).get("message")
        if isinstance(message, asyncio.Future):
            message.add_done_callback(_retrieved)


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # marks it retrieved; the caller deals with the refusal
