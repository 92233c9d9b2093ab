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

`max_drift` alone holds back a short backlog for nothing: 30 minutes of event time is a few
hundred records at the volumes served, and a sparse partition (surveys) runs hours ahead of
the dense ones in a few polls, since every poll hands out a share of records of each. Pausing
and resuming that often (a fetch round trip each) cost a 55k-record drain half its rate once
the input was read a poll at a time (issue 15). So with `hold_records` set, what a partition
is allowed ahead is also counted in records: it is paused only if, beyond `max_drift`, the
records it has forwarded ahead of the slowest (its own density, records over the event time
they span, times its lead) are more than its share of `hold_records`, and resumed at half
that. A sparse partition then runs ahead freely, a dense one is held to its share. With the
pauses alone the merge of a 90-day catch-up held 30,000-100,000 records; with the limits
5,000-24,000 (docs/design-live-pipeline.md).

How a partition is held back: by default not by a pause but by a limit on what the consumer
hands out of it (`caps`, applied by streams/fair_fetch.py): the records it may still forward
before it would be paused. A pause acts only after the records already fetched and queued
have gone through (a 512 KiB chunk, some 1,700 records, is 100-400 hours of a 90-day
catch-up), and costs a fetch round trip on resume; a limit stops a partition within its
share and leaves the rest in the consumer's fetch buffer. The slowest partition may always
forward `DENSITY_OVER` records, and as many as bring it level with the next slowest. Until
every partition has forwarded a dated record, those that have are held (the merge can
release nothing before then anyway) and the others may forward `DENSITY_OVER` records, enough
to know their density; one that has forwarded nothing for `start_within` seconds holds
nobody back, and one forwarding only refused records holds the others until it has drained
them. The pauses remain for a consumer where the
hand-out limit cannot be installed.

"Records waiting" comes from the partition's end as the latest fetch response saw it, which
may count records that will never be delivered (transaction markers, a compacted range). So a
partition that has forwarded nothing for `stall_after` seconds while unpaused does not hold
the others back: alignment may cost memory, never progress.

Plain logic, no Kafka: the ingest agent (agents/ingest.py) feeds it and applies its decisions
to the consumer.
"""

from __future__ import annotations

from collections import deque

Source = tuple[str, int]  # input topic, partition
DENSITY_OVER = 256  # records per partition its density is taken over
_NEVER = float("inf")


class Alignment:
    def __init__(
        self,
        max_drift: float,
        stall_after: float = 5.0,
        hold_records: int = 0,
        start_within: float = 30.0,
    ) -> None:
        self.max_drift = max_drift  # seconds of event time at least; 0 turns alignment off
        self.hold_records = hold_records  # records all may forward ahead (0: max_drift only)
        # The event times of the last DENSITY_OVER records forwarded per partition, for its
        # density: recent, so that one back-dated record, or a quiet live period before a
        # backlog, does not make a dense partition look sparse for good.
        self.recent: dict[Source, deque[float]] = {}
        self.stall_after = stall_after  # wall seconds
        # Wall seconds a partition with records waiting, none forwarded, holds the others.
        self.start_within = start_within
        self.newest: dict[Source, float] = {}  # newest event time forwarded per partition
        self.moved: dict[Source, float] = {}  # wall time of its last forward (or resume)
        self.paused: set[Source] = set()
        # Records each partition may still forward before it would be paused (absent: no
        # limit), as of the last decision: what the consumer may hand out (streams/fair_fetch.py).
        self.caps: dict[Source, int] = {}
        self.pauses = 0  # times a partition was paused (a counter for the metrics)

    def forwarded(self, source: Source, time: float | None, wall: float) -> None:
        """A record of `source` dated `time` (None: refused) was forwarded at `wall`."""
        self.moved[source] = wall
        if time is None:
            return
        recent = self.recent.get(source)
        if recent is None:
            recent = self.recent[source] = deque(maxlen=DENSITY_OVER)
        recent.append(time)
        if time > self.newest.get(source, -_NEVER):
            self.newest[source] = time

    def density(self, source: Source) -> float | None:
        """Records per second of event time among the last DENSITY_OVER forwarded from
        `source` (None: too few, or all at one instant, to say)."""
        recent = self.recent.get(source)
        if recent is None or len(recent) < 2:
            return None
        span = max(recent) - min(recent)
        return (len(recent) - 1) / span if span > 0 else None  # n records, n - 1 gaps

    def forget(self, keep: set[Source]) -> None:
        """Only the partitions in `keep` are this worker's now (after a rebalance the consumer
        starts a new assignment unpaused, so nothing stays paused either)."""
        for source in [s for s in self.newest if s not in keep]:
            del self.newest[source]
            self.recent.pop(source, None)
        self.moved = {s: w for s, w in self.moved.items() if s in keep}
        self.paused.clear()

    def _cap(self, source: Source, lead: float, share: float, gap: float) -> int:
        """Records `source`, `lead` seconds of event time ahead of the slowest, may forward
        before it would be paused: up to `max_drift` ahead, or up to its share in records.
        The slowest (`lead` 0) may also cover the `gap` to the next slowest: the merge holds
        nothing more for it, and releases what it held."""
        rate = self.density(source)
        if rate is None:  # a few records tell its density
            return DENSITY_OVER if lead <= self.max_drift else 0
        if lead == 0:
            lead = -gap
        room = max(share, rate * self.max_drift) - rate * lead
        floor = DENSITY_OVER if lead <= 0 else 0  # the slowest always gets some: it drains
        return int(room) if room > floor else floor

    def decide(self, waiting: dict[Source, int], now: float) -> tuple[set[Source], set[Source]]:
        """Given the records waiting in each owned partition (wall time `now`), which to pause
        and which to resume now (each set holds only changes), and the limits in records
        (`caps`). A partition that has forwarded no dated record counts as the slowest of all
        while records wait in it: it holds the others until it forwards one, or for
        `start_within` seconds (after which `stall_after` applies)."""
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
            if now - last <= (self.stall_after if source in self.newest else self.start_within):
                behind[source] = self.newest.get(source, -_NEVER)
        target: set[Source] = set()
        caps: dict[Source, int] = {}
        if len(behind) > 1:
            low, second = sorted(behind.values())[:2]
            gap = second - low if second > low > -_NEVER else 0.0  # to the next slowest
            share = self.hold_records / len(behind)  # records each may hold ahead of `low`
            for source, newest in behind.items():
                held = source in self.paused  # paused: resumed at half the limits
                lead = newest - low  # NaN for a partition not started as the slowest: skipped
                if newest == -_NEVER:
                    caps[source] = DENSITY_OVER  # not started: enough to know its density
                elif lead >= 0:
                    caps[source] = self._cap(source, lead, share, gap)
                if not lead > (self.max_drift / 2 if held else self.max_drift):
                    continue
                density = self.density(source) if share > 0 else None
                if density is not None and density * lead <= (share / 2 if held else share):
                    continue  # ahead in event time, but by few records: a sparse partition
                target.add(source)
        self.caps = caps
        pause = target - self.paused
        resume = self.paused - target
        for source in resume:
            moved[source] = now  # from now on it has `stall_after` to deliver again
        self.paused = target
        self.pauses += len(pause)
        return pause, resume
