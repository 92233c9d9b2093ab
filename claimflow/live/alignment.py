"""Event-time alignment of the input partitions while a backlog is read.

The merge (claimflow/live/merge.py) may release a record only once every input partition has
moved past its event time, so it holds whatever the fastest partition has delivered ahead of
the slowest. Kafka hands a backlog over unevenly, a partition at a time: in a 90-day catch-up
one partition ran days of event time ahead of the others, the merge held hundreds of thousands
of records (over 1 GB) and the first alert came minutes late (issue 15).

The remedy is Flink's watermark alignment (FLIP-182) at the source: a partition that still has
records waiting and whose newest forwarded event time is more than `max_drift` ahead of the
slowest such partition is paused, and resumed once the slowest has come within `max_drift / 2`
(the hysteresis keeps a partition from flapping at every batch). The slowest is never paused,
so the backlog always drains, and a partition with nothing waiting never holds the others back
(it is live: what comes next is new). The merge then holds about `max_drift` of event time
worth of records, plus what the consumer had fetched before a pause, whatever the backlog's
length.

"Records waiting" comes from the partition's end as the latest fetch response saw it, which
may count records that will never be delivered (transaction markers, a compacted range). So a
partition that has forwarded nothing for `stall_after` seconds while unpaused does not hold
the others back: alignment may cost memory, never progress.

Plain logic, no Kafka: the ingest agent (agents/ingest.py) feeds it and applies its decisions
to the consumer.
"""

from __future__ import annotations

Source = tuple[str, int]  # input topic, partition
_NEVER = float("inf")


class Alignment:
    def __init__(self, max_drift: float, stall_after: float = 5.0) -> None:
        self.max_drift = max_drift  # seconds of event time; 0 turns alignment off
        self.stall_after = stall_after  # wall seconds
        self.newest: dict[Source, float] = {}  # newest event time forwarded per partition
        self.moved: dict[Source, float] = {}  # wall time of its last forward (or resume)
        self.paused: set[Source] = set()
        self.pauses = 0  # times a partition was paused (a counter for the metrics)

    def forwarded(self, source: Source, time: float | None, wall: float) -> None:
        """A record of `source` dated `time` (None: refused) was forwarded at `wall`."""
        self.moved[source] = wall
        if time is not None and time > self.newest.get(source, -_NEVER):
            self.newest[source] = time

    def forget(self, keep: set[Source]) -> None:
        """Only the partitions in `keep` are this worker's now (after a rebalance the consumer
        starts a new assignment unpaused, so nothing stays paused either)."""
        for source in [s for s in self.newest if s not in keep]:
            del self.newest[source]
        self.moved = {s: w for s, w in self.moved.items() if s in keep}
        self.paused.clear()

    def decide(self, waiting: dict[Source, int], now: float) -> tuple[set[Source], set[Source]]:
        """Given the records waiting in each owned partition (wall time `now`), which to pause
        and which to resume now (each set holds only changes). A partition never forwarded
        from counts as the slowest of all while records wait in it: it holds the others
        until it starts, or for `stall_after` seconds."""
        if self.max_drift <= 0:
            return set(), set()
        moved = self.moved
        behind: dict[Source, float] = {}
        for source, n in waiting.items():
            if n <= 0:
                continue
            if source in self.paused:
                behind[source] = self.newest.get(source, -_NEVER)
                continue
            last = moved.setdefault(source, now)  # first seen: give it time to start
            if now - last <= self.stall_after:
                behind[source] = self.newest.get(source, -_NEVER)
        target: set[Source] = set()
        if len(behind) > 1:
            low = min(behind.values())
            for source, newest in behind.items():
                limit = self.max_drift / 2 if source in self.paused else self.max_drift
                if newest > low + limit:
                    target.add(source)
        pause = target - self.paused
        resume = self.paused - target
        for source in resume:
            moved[source] = now  # from now on it has `stall_after` to deliver again
        self.paused = target
        self.pauses += len(pause)
        return pause, resume
