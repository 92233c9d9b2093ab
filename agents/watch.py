"""Noticing a broker that came back empty, and whether the worker is really consuming.

A broker that restarts without its data (the embedded one keeps everything in memory; a
Kafka cluster whose disks were replaced) loses the topics and, with them, the offsets the
worker had reached. Before issue 14 item 6 nothing noticed: the consumer waited for offsets
the new log would take hours to reach, the detector skipped every new record as one it had
already applied, and /healthz and /readyz stayed 200.

Three signals, any of which starts recovery (one warning per reset, counted in
`claimflow_broker_resets_total{signal}`):

- `topics`: a topic claimflow needs is gone; it is created again with its partition count.
- `consumer`: the consumer's read position on a partition is past the partition's end (the
  log is shorter than what was read: a broker that kept the group's offsets but not the
  logs): the position is reset to the start of the log.
- `sequenced`: the detector is delivered a sequenced record below what it applied, but
  written after everything it applied (agents/detect.py): the sequenced log and the input
  offsets start again from 0, the detector state carries on.

The watch also judges readiness: `/readyz` answers 503 with the reason while topics are
missing or an input partition (or, on the worker running the detectors, the sequenced
partition) has records waiting and has not moved for `STALL_AFTER` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("claimflow.worker")

SIGNALS = ("topics", "consumer", "sequenced")
WATCH_EVERY = 3.0  # seconds between checks
TOPICS_TIMEOUT = 15.0  # seconds: a broker that does not answer is reported, not waited for
EPISODE = 60.0  # seconds: signals this close to the first are the same reset
STALL_AFTER = 20.0  # seconds with records waiting and no progress: not consuming


class Resets:
    """Broker resets, counted once per episode by the signal that saw it first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.counts = dict.fromkeys(SIGNALS, 0)
        self.last = -EPISODE * 2  # monotonic time of the last reported reset

    def report(self, signal: str, detail: str) -> bool:
        """Record one sign of a reset; True (and a warning logged) when it starts a new one."""
        now = self.clock()
        new = now - self.last > EPISODE
        self.last = now
        if new:
            self.counts[signal] += 1
            log.warning(
                "the broker came back empty (%s): %s; recreating topics and resetting "
                "positions to the start of the new logs (detector state kept)",
                signal,
                detail,
            )
        else:
            log.info("broker reset, further sign (%s): %s", signal, detail)
        return new

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class BrokerWatch:
    def __init__(
        self,
        app: Any,
        resets: Resets,
        ensure_topics: Callable[[], Awaitable[list[str]]],
        input_topics: set[str],
        forwarded: Callable[[], dict[tuple[str, int], int]],
        sequenced: tuple[Any, Callable[[], int | None]],  # TP, next offset the detector wants
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.resets = resets
        self.ensure_topics = ensure_topics
        self.input_topics = input_topics
        self.forwarded = forwarded
        self.sequenced_tp, self.sequenced_next = sequenced
        self.clock = clock
        self.topics_problem: str | None = None
        self.stalled: list[str] = []
        self._moved: dict[Any, tuple[int, float]] = {}  # tp -> (position, when it last moved)

    def not_ready(self) -> str | None:
        """Why the worker is not consuming and judging now, or None."""
        if self.topics_problem is not None:
            return self.topics_problem
        if self.stalled:
            return f"no progress for {STALL_AFTER:.0f}s with records waiting on " + ", ".join(
                self.stalled
            )
        return None

    async def check(self) -> None:
        await self._check_topics()
        await self._check_positions()
        self._check_progress()

    async def _check_topics(self) -> None:
        try:
            created = await asyncio.wait_for(self.ensure_topics(), TOPICS_TIMEOUT)
        except Exception as exc:  # the broker may be down or refuse: say so on /readyz
            self.topics_problem = f"topics not usable: {exc!r}"
            log.warning("checking claimflow's topics failed: %s", exc)
            return
        self.topics_problem = None
        if created:
            self.resets.report("topics", f"topics missing, created again: {', '.join(created)}")

    async def _check_positions(self) -> None:
        consumer = self.app.consumer
        for tp in sorted(consumer.assignment()):
            read = consumer._read_offset.get(tp)
            end = consumer.highwater(tp)
            # Faust's read offset is the committed offset after a seek (the next to read),
            # then the last offset read: at most the end of the log, unless the log was lost.
            if read is None or end is None or end < 0 or read <= end:
                continue
            for name in ("_read_offset", "_committed_offset", "_acked", "_acked_index", "_gap"):
                getattr(consumer, name).pop(tp, None)
            self.forwarded().pop((tp.topic, tp.partition), None)
            await consumer.seek(tp, 0)
            self.resets.report(
                "consumer",
                f"{tp.topic}/{tp.partition} read up to offset {read}, the log ends at {end}",
            )

    def _check_progress(self) -> None:
        consumer = self.app.consumer
        now = self.clock()
        assigned = set(self.app.assignor.assigned_actives())
        forwarded = self.forwarded()
        stalled: list[str] = []
        for tp in sorted(assigned):
            slack = 0
            if tp.topic in self.input_topics:
                position = forwarded.get((tp.topic, tp.partition))
                if position is None:  # nothing forwarded yet: Faust's read offset, which is
                    position = consumer._read_offset.get(tp)  # the next or the last read
                    slack = 1
                    if position is None:
                        continue
            elif tp == self.sequenced_tp:
                position = self.sequenced_next()
                if position is None:
                    continue
            else:
                continue
            end = consumer.highwater(tp)
            seen = self._moved.get(tp)
            if seen is None or seen[0] != position:
                self._moved[tp] = (position, now)
                continue
            if end is not None and end > position + slack and now - seen[1] >= STALL_AFTER:
                stalled.append(f"{tp.topic}/{tp.partition} (at {position}, log ends at {end})")
        for tp in [tp for tp in self._moved if tp not in assigned]:
            del self._moved[tp]
        self.stalled = stalled
