"""One event-time-ordered stream out of many input partitions, so that one engine judges them
all (docs/design-live-pipeline.md).

Records from different input partitions reach the sequenced topic in whatever order the ingest
agents happened to run: during a fast backfill one partition can be hours of event time ahead of
another. `Merge` releases a record to the engine only once every input partition that may still
hold older records has moved past it (a watermark across partitions, as in Flink or Beam). A
partition that its ingest agent reports caught up as of a time after the record was read (plus
`idle_after`) does not hold it back; one not heard of at all for `max_hold` seconds (its worker
gone, a long rebalance) stops holding them back too.

Ingest is at-least-once: after a restart it forwards again what it had not committed. The merge
remembers the next offset expected from each input partition (`SourceState`) and skips repeats.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from claimflow.live.envelopes import Forwarded, Progress

_NEVER = float("inf")
Source = tuple[str, int]  # input topic, partition


@dataclass(slots=True)
class SourceState:
    next_offset: int = 0  # every offset below this has been taken
    max_time: float = -_NEVER  # newest event time taken
    caught_up_wall: float = -_NEVER  # when a report last said nothing was waiting after it
    last_heard_wall: float = -_NEVER


class Merge:
    """Holds forwarded records until no input partition can still deliver an older one,
    then releases them oldest first.

    A held record r (event time t, read at wall time w) may go once every other input
    partition has either taken an event at or after t, or been reported caught up as of wall
    time w + `idle_after` or later: then whatever it held when r was read has been forwarded,
    and what came after was produced after r. "As of" is the send time of the fetch that gave
    the partition's end (`Progress.as_of`), so a response processed late makes the vouch
    older, never wrong; `idle_after` is only a margin for the wall clocks of different
    workers (a report from an older worker vouches as of its own time, and then `idle_after`
    must also cover how stale its view of the end was: 2 s did). A partition not heard of
    for `max_hold` seconds (its worker gone, a long rebalance) holds nothing back: its
    records, if they come, may then be late.
    """

    # caught_up() asks for a vouch this recent: reports come at least once a second, and
    # vouch as of a fetch sent up to a fetch wait (0.1 s, longer under load) before.
    FRESH_WITHIN = 2.0

    def __init__(self, idle_after: float, max_hold: float) -> None:
        self.idle_after = idle_after
        self.max_hold = max_hold
        self.sources: dict[Source, SourceState] = {}
        self.partitions: dict[str, int] = {}  # input topic -> partitions
        self.pending: list[tuple[float, int, Forwarded]] = []
        self.wall = -_NEVER  # newest wall stamp seen: the merge's notion of now
        self.first_wall = _NEVER
        self.repeats = 0  # records forwarded a second time (ingest restarted), skipped
        self._seq = 0
        # Every partition of `partitions` has been heard of: checked again only when the
        # partition counts change, not for every record released (state_codec gives a merge
        # restored from an earlier snapshot False: check).
        self._heard_all = False

    def expect(self, partitions: dict[str, int]) -> None:
        """Input topics and their partition counts: a partition never heard of holds back."""
        self._count(partitions)

    def offer(self, record: Forwarded) -> bool:
        """Take a forwarded record; False when it was taken before."""
        self._saw_wall(record.wall)
        state = self._source(record.topic, record.partition)
        if record.offset < state.next_offset:
            self.repeats += 1
            return False
        state.next_offset = record.offset + 1
        state.last_heard_wall = max(state.last_heard_wall, record.wall)
        state.caught_up_wall = -_NEVER  # until a report written after this record says so
        if record.time is not None:
            state.max_time = max(state.max_time, record.time)
            self._seq += 1
            heapq.heappush(self.pending, (record.time, self._seq, record))
        return True

    def report(self, progress: Progress) -> None:
        self._saw_wall(progress.wall)
        self._count(progress.partitions)
        for (topic, partition, next_offset, caught_up), as_of in zip(
            progress.sources, progress.vouched(), strict=True
        ):
            # Never taken as "records below were forwarded": an ingest agent that has just
            # taken a partition over reports its fetch position, which can run ahead of
            # what it has forwarded (measured: 50 records skipped that way).
            state = self._source(topic, partition)
            state.last_heard_wall = max(state.last_heard_wall, progress.wall)
            # Only a report that has seen everything taken here can vouch for the partition.
            if caught_up and next_offset <= state.next_offset:
                state.caught_up_wall = max(state.caught_up_wall, as_of)
            else:
                state.caught_up_wall = -_NEVER

    def release(self) -> list[Forwarded]:
        """Records no partition can precede any more, oldest event time first."""
        pending = self.pending
        out: list[Forwarded] = []
        if not pending or not self._all_heard_of():
            return out
        while pending:
            t, _, record = pending[0]
            if not self._may_release(t, record.wall):
                break
            out.append(heapq.heappop(pending)[2])
        return out

    def _may_release(self, t: float, wall: float) -> bool:
        vouched = wall + self.idle_after
        gone = self.wall - self.max_hold
        for state in self.sources.values():
            if state.max_time >= t or state.caught_up_wall >= vouched:
                continue
            if state.last_heard_wall <= gone:
                continue
            return False
        return True

    def caught_up(self) -> bool:
        """Nothing is waiting anywhere: nothing held here, and every input partition has been
        reported caught up since its last record (by a report that had seen that record), and
        recently: within `FRESH_WITHIN` (or `idle_after`, if longer) of the newest wall stamp.
        A partition never heard of, or whose worker is gone, is not caught up."""
        if self.pending:
            return False
        sources = self.sources
        if not all(
            (topic, p) in sources for topic, count in self.partitions.items() for p in range(count)
        ):
            return False
        recent = self.wall - max(self.FRESH_WITHIN, self.idle_after)
        return all(state.caught_up_wall >= recent for state in sources.values())

    def _count(self, partitions: dict[str, int]) -> None:
        known = self.partitions
        if any(known.get(topic) != count for topic, count in partitions.items()):
            known.update(partitions)
            self._heard_all = False

    def _all_heard_of(self) -> bool:
        if self._heard_all or self.wall - self.first_wall >= self.max_hold:
            return True
        sources = self.sources
        self._heard_all = all(
            (topic, p) in sources for topic, count in self.partitions.items() for p in range(count)
        )
        return self._heard_all

    def _source(self, topic: str, partition: int) -> SourceState:
        state = self.sources.get((topic, partition))
        if state is None:
            state = self.sources[(topic, partition)] = SourceState()
        return state

    def _saw_wall(self, wall: float) -> None:
        self.wall = max(self.wall, wall)
        self.first_wall = min(self.first_wall, wall)
