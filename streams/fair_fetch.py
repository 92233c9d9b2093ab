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
error goes to the original method, so errors are raised as aiokafka raises them; so does a
call that must wait for records, unless some partitions are limited. Kafka's own Java
consumer gets the same effect by rotating the partition order of its fetches.

`install(fetcher, hand_out)` also applies ingest's event-time alignment (`HandOut`): a
partition hands out no more than the records it may still forward, the rest staying in the
fetch buffer (claimflow/live/alignment.py). While some partition is limited, a call that
must wait for records waits here, for the next fetch response (or a new limit), instead of
in the original method, which would hand out a limited partition's records whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from aiokafka.consumer.fetcher import FetchResult

log = logging.getLogger("claimflow.ingest")
MIN_SHARE = 50  # records a partition gets per poll at least (few polls on few partitions)
WAIT_STEP = 0.01  # seconds between looks for records while some partitions are limited

FetchedRecords = Callable[..., Awaitable[dict[Any, list[Any]]]]


class HandOut:
    """Limits on what a poll hands out per partition, set by ingest's alignment
    (claimflow/live/alignment.py) for the partitions of `topics`: `caps`, the records a
    partition may still hand out (None: no limit), counted down here; a partition without an
    entry (no decision yet: the worker has just started or been assigned it) may hand out
    `probe` records in all (None: no limit). `handed` counts the records handed out per
    partition, so that ingest can tell how many are on their way to it."""

    def __init__(self, topics: Collection[str] = (), probe: int | None = None) -> None:
        self.topics = frozenset(topics)  # the partitions of other topics are never limited
        self.caps: dict[tuple[str, int], int | None] = {}
        self.probe = probe
        self.handed: dict[tuple[str, int], int] = {}

    def limit(
        self,
        decided: Mapping[tuple[str, int], int],
        owned: Iterable[tuple[str, int]],
        forwarded: Mapping[tuple[str, int], int],
    ) -> None:
        """Install the limits of a decision: for each partition in `owned`, the records
        `decided` lets it still forward (absent: no limit), less those handed out and not yet
        `forwarded` (still on their way to the caller), never below 0."""
        handed = self.handed
        caps: dict[tuple[str, int], int | None] = {}
        for key in owned:
            cap = decided.get(key)
            if cap is not None:
                ahead = max(0, handed.get(key, 0) - forwarded.get(key, 0))
                cap = cap - ahead if cap > ahead else 0
            caps[key] = cap
        self.caps = caps

    def cap(self, key: tuple[str, int]) -> int | None:
        caps = self.caps
        if key in caps:
            return caps[key]
        if key[0] not in self.topics:
            return None
        probe = self.probe
        return None if probe is None else max(0, probe - self.handed.get(key, 0))


def install(fetcher: Any, hand_out: HandOut | None = None) -> bool:
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
        if hand_out is not None:
            partitions = partitions or _assigned(fetcher)
        caps = _caps(partitions)
        if max_records is None or all(cap is None for cap in caps.values()):
            got = await _shared(partitions, caps, max_records)
            if not got:
                got = await call(partitions, timeout, max_records)
            return _handed(got)
        # Some partitions are limited: the original call would hand out their records whole,
        # so wait here for the next fetch response; and while a limited partition holds
        # records back in the fetch buffer (aiokafka does not fetch it again until they are
        # taken), look again every WAIT_STEP for a limit that ingest has raised meanwhile.
        deadline = time.monotonic() + timeout
        while True:
            got = await _shared(partitions, caps, max_records, at_least=0)
            left = deadline - time.monotonic()
            if got or left <= 0 or getattr(fetcher, "_closed", False):
                return _handed(got or {})
            buffered = fetcher._records
            holding = any(cap is not None and tp in buffered for tp, cap in caps.items())
            await _next_fetch(fetcher, min(WAIT_STEP, left) if holding else left)
            caps = _caps(partitions)

    def _caps(partitions: Collection[Any] | None) -> dict[Any, int | None]:
        """Each partition's limit now (no hand-out limits: none)."""
        if hand_out is None or not partitions:
            return {}
        return {tp: hand_out.cap((tp.topic, tp.partition)) for tp in partitions}

    async def _shared(
        partitions: Collection[Any] | None,
        caps: dict[Any, int | None],
        max_records: int | None,
        at_least: int = 2,
    ) -> dict[Any, list[Any]] | None:
        """A share of each buffered partition's records, within its cap; None when the
        original call should do it (fewer than `at_least` partitions buffered, or no count
        asked for). A buffered error goes to the original method, which raises it."""
        results = fetcher._records
        # The decision in force: ingest replaces it whole, this counts it down.
        decided = hand_out.caps if hand_out is not None else None
        ready = [tp for tp in results if not partitions or tp in partitions]
        if max_records is None or len(ready) < at_least:
            return None
        failed = [tp for tp in ready if type(results[tp]) is not FetchResult]
        if failed:
            return await call(set(failed), 0, max_records)
        open_ = [tp for tp in ready if (cap := caps.get(tp)) is None or cap > 0]
        share = max(MIN_SHARE, max_records // max(1, len(open_)))
        drained: dict[Any, list[Any]] = {}
        left = max_records
        for tp in open_:
            cap = caps.get(tp)
            got = await call({tp}, 0, min(share, left) if cap is None else min(share, left, cap))
            for key, records in got.items():
                drained[key] = records
                left -= len(records)
                source = (tp.topic, tp.partition)
                # Counted down in the decision it was drawn from, unless ingest has made a
                # new one meanwhile (which counts what was handed out itself).
                if cap is not None and decided is not None and decided.get(source) is not None:
                    decided[source] = cap - len(records)
            if left <= 0:
                break
        return drained

    def _handed(got: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
        if hand_out is not None:
            handed = hand_out.handed
            for tp, records in got.items():
                if records:
                    key = (tp.topic, tp.partition)
                    handed[key] = handed.get(key, 0) + len(records)
        return got

    fetched_records._claimflow_fair = True  # type: ignore[attr-defined]
    fetcher.fetched_records = fetched_records
    return True


def _assigned(fetcher: Any) -> frozenset[Any]:
    """The partitions assigned to the consumer (what a poll that names none reads from)."""
    try:
        return frozenset(fetcher._subscriptions.subscription.assignment.tps)
    except AttributeError:  # nothing assigned yet, or another aiokafka
        return frozenset()


async def _next_fetch(fetcher: Any, timeout: float) -> None:
    """Until the fetcher has a new response buffered, or `timeout` seconds. An error the
    fetcher hands its waiters (a coordination or authorization failure) is raised, as the
    original method raises it."""
    create = getattr(fetcher, "_create_fetch_waiter", None)
    if create is None:
        await asyncio.sleep(timeout)
        return
    waiter = create()
    await asyncio.wait([waiter], timeout=timeout)
    if not waiter.done():
        waiter.cancel()
    elif not waiter.cancelled():
        waiter.result()
