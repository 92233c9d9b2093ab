"""When each partition's end was last known: the send time of the fetch that reported it.

A progress report vouches that nothing is waiting in an input partition: the records ingest
has forwarded reach the partition's high-water mark, as the latest fetch response gave it.
The merge (claimflow/live/merge.py) may then release a record read at wall time w, from
another partition, once this partition has been vouched for *as of* a time after w: every
record written to it before then lies below that mark, and has been forwarded.

How old is a high-water mark? aiokafka keeps the latest one per partition
(`TopicPartitionState.highwater`) and stamps it with the time the consumer thread processed
the response (`.timestamp`), which can be long after the broker sent it when that thread is
starved of CPU. Vouching with the report's own time therefore needed a margin for the
staleness (`CLAIMFLOW_IDLE_AFTER` was 2 s), and a smaller margin misordered records under a
full CI load. The broker answers a fetch request after it received it, so the request's send
time is a lower bound on when the mark was true, however late the response is processed.

`install(fetcher, now)` wraps aiokafka's `Fetcher._proc_fetch_request` (one fetch request to
one broker, sent and its response processed) to record, for each partition whose state the
response updated, the send time, on `now`'s clock. Written after aiokafka has stored the new
high-water mark, so a reader that takes `as_of()` first and the high-water mark second never
pairs a newer time with an older mark (the other way round only understates the time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiokafka.structs import TopicPartition

log = logging.getLogger("claimflow.ingest")

_ATTRIBUTE = "_claimflow_fetch_times"


def install(fetcher: Any, now: Callable[[], float]) -> bool:
    """Record fetch send times on `fetcher`; False if this aiokafka's fetcher lacks what the
    wrapper relies on (then `as_of` stays None and reports fall back to their own time).
    Call in the thread the consumer runs in."""
    original = getattr(fetcher, "_proc_fetch_request", None)
    if getattr(original, "_claimflow_timed", False):
        return True
    if original is None:
        return False
    times: dict[tuple[str, int], float] = {}

    async def proc_fetch_request(assignment: Any, node_id: Any, request: Any) -> Any:
        try:
            partitions = [(topic, info[0]) for topic, infos in request.topics for info in infos]
            before = [_stamp(assignment, tp) for tp in partitions]
        except (AttributeError, TypeError, IndexError, ValueError):
            return await original(assignment, node_id, request)
        sent = now()
        result = await original(assignment, node_id, request)
        for tp, stamp in zip(partitions, before, strict=True):
            after = _stamp(assignment, tp)
            if after is not None and after != stamp:
                times[tp] = sent
        return result

    proc_fetch_request._claimflow_timed = True  # type: ignore[attr-defined]
    fetcher._proc_fetch_request = proc_fetch_request
    setattr(fetcher, _ATTRIBUTE, times)
    return True


def as_of(fetcher: Any, topic: str, partition: int) -> float | None:
    """The send time of the fetch whose response gave the partition's current high-water
    mark (None: not known). Read it before the high-water mark (module docstring)."""
    times: dict[tuple[str, int], float] | None = getattr(fetcher, _ATTRIBUTE, None)
    if times is None:
        return None
    return times.get((topic, partition))


def _stamp(assignment: Any, tp: tuple[str, int]) -> Any:
    """What changes when a response updates the partition: its state object and aiokafka's
    processing stamp (a new state after a reassignment counts as a change)."""
    try:
        state = assignment.state_value(TopicPartition(*tp))
    except (KeyError, AttributeError):
        return None
    if state is None:
        return None
    return (id(state), state.timestamp, state.highwater)
