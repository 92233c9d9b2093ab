"""Hand out fetched records fairly across partitions, a share of each per poll.

aiokafka's `Fetcher.fetched_records(partitions, timeout, max_records)` drains its buffered
fetch results in the order they arrived, a whole partition's chunk before the next one's:
with `max_records` 2,000 and a chunk of up to `consumer_max_fetch_size` (512 KiB, some 1,700
records) buffered for each of 16 input partitions, the records fetched last wait behind
about 27,000 others. Measured on a 55k backlog: the first sequenced record reached the
detector 2.8-3.6 s after ingest forwarded it (its partition's result sat behind the input
chunks), and the merge held 18-22k records before it could release the first one, because
it needs a record from every input partition and the last partitions' chunks came last.

`install(fetcher)` wraps the method on one fetcher: each poll takes at most
`max_records // partitions with records` from every partition that has records (at least
`MIN_SHARE`), in arrival order, by calling aiokafka's own method once per partition
(restricted to it, without waiting); so every partition with records is represented in every
poll, the sequenced partition's records never wait behind the input chunks, and positions,
assignment checks and refetches stay aiokafka's. A partition whose buffered result is an
error, or a call that must wait for records, goes to the original method whole, so errors
are raised as aiokafka raises them. Kafka's own Java consumer gets the same effect by
rotating the partition order of its fetches.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiokafka.consumer.fetcher import FetchResult

log = logging.getLogger("claimflow.ingest")
MIN_SHARE = 50  # records a partition gets per poll at least (few polls on few partitions)

FetchedRecords = Callable[..., Awaitable[dict[Any, list[Any]]]]


def install(fetcher: Any) -> bool:
    """Make `fetcher.fetched_records` fair; False if this aiokafka's fetcher lacks what the
    wrapper relies on (then nothing changes). Call in the thread the consumer runs in."""
    original: FetchedRecords | None = getattr(fetcher, "fetched_records", None)
    if getattr(original, "_claimflow_fair", False):
        return True
    buffered = getattr(fetcher, "_records", None)
    if original is None or not isinstance(buffered, dict):
        return False
    call: FetchedRecords = original

    async def fetched_records(
        partitions: Collection[Any] | None, timeout: float = 0, max_records: int | None = None
    ) -> dict[Any, list[Any]]:
        results = fetcher._records
        ready = [tp for tp in results if not partitions or tp in partitions]
        if (
            max_records is None
            or len(ready) < 2
            or any(type(results[tp]) is not FetchResult for tp in ready)
        ):
            return await call(partitions, timeout, max_records)
        share = max(MIN_SHARE, max_records // len(ready))
        drained: dict[Any, list[Any]] = {}
        left = max_records
        for tp in ready:
            got = await call({tp}, 0, min(share, left))
            for key, records in got.items():
                drained[key] = records
                left -= len(records)
            if left <= 0:
                break
        if drained:
            return drained
        return await call(partitions, timeout, max_records)

    fetched_records._claimflow_fair = True  # type: ignore[attr-defined]
    fetcher.fetched_records = fetched_records
    return True
