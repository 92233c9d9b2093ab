"""Where the group has committed nothing, read from the start of the log, also after a
rebalance.

After every assignment Faust recovers its tables with the flow of records stopped, then
"seeks stream partitions to committed offsets" and lets records flow again. Whatever the
consumer thread fetched in between is dropped (the flow was stopped), and the seek is meant
to take the partitions back to where they were. But aiokafka's `seek_to_committed` moves
only partitions with a committed offset above 0: a partition with none stays where its
fetcher got to, past the records that were dropped. On a broker that came back empty (no
committed offsets, new logs that producers refill at once) a worker starved of CPU took
several seconds over that recovery while its consumer thread read the new input logs to the
end: every record of 14 of 16 input partitions was dropped, ingest never saw one, and
nothing after them could expose the gap (tests/attacks/test_broker_reset.py hung in about 3
runs of 5 beside two busy processes). A new group on a topic with a backlog is exposed the
same way.

`install(consumer, topics)` wraps the Faust consumer's `seek_to_committed` (every seek to
the committed offsets goes through it): partitions of `topics` with no committed offset (or
0) whose position has moved off the start are sent back to the start of their log
(aiokafka's `seek_to_beginning`, the group's `auto_offset_reset="earliest"`), in the
consumer thread. Records read again there are skipped downstream as repeats (the merge
knows the next input offset of every partition).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from aiokafka.errors import IllegalStateError
from aiokafka.structs import TopicPartition

log = logging.getLogger("claimflow.worker")
_MARK = "_claimflow_from_start"


def install(consumer: Any, topics: Collection[str]) -> bool:
    """Wrap `consumer.seek_to_committed` (a Faust aiokafka consumer); False when it is not
    one (no consumer thread), then nothing changes. Installing twice is harmless."""
    original: Callable[[], Awaitable[Mapping[Any, int | None]]] | None = getattr(
        consumer, "seek_to_committed", None
    )
    thread = getattr(consumer, "_thread", None)
    if original is None or thread is None:
        return False
    if getattr(original, _MARK, False):
        return True
    wanted = set(topics)

    async def seek_to_committed() -> Mapping[Any, int | None]:
        committed = await original()
        missing = [
            TopicPartition(tp.topic, tp.partition)
            for tp, offset in committed.items()
            if not offset and tp.topic in wanted
        ]
        if missing:
            moved = await thread.call_thread(rewind, thread, missing)
            if moved:
                log.info(
                    "nothing committed for %s: reading from the start of the log (what was "
                    "fetched while the flow was stopped was dropped)",
                    ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(moved)),
                )
        return committed

    setattr(seek_to_committed, _MARK, True)
    consumer.seek_to_committed = seek_to_committed
    return True


async def rewind(thread: Any, partitions: list[TopicPartition]) -> list[TopicPartition]:
    """In the consumer thread: seek those of `partitions` whose position is past 0 to the
    start of their log; the ones sought."""
    client = thread._consumer
    subscription = client._subscription.subscription if client is not None else None
    if subscription is None:
        return []
    assignment = subscription.assignment
    moved = []
    for tp in partitions:
        try:
            state = assignment.state_value(tp)
        except (KeyError, AttributeError):
            continue
        if state is not None and state.has_valid_position and state.position > 0:
            moved.append(tp)
    if not moved:
        return []
    try:
        await client.seek_to_beginning(*moved)
    except IllegalStateError:  # no longer assigned: a new rebalance seeks again
        return []
    return moved
