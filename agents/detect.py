"""Stage two: the detector agent on the single sequenced partition.

Whichever worker owns that partition runs the engine (claimflow/live/live_engine.py `LiveEngine`)
over it and publishes alerts and dead letters. The state lives in a Faust table as snapshots
(claimflow/live/snapshots.py), written every `snapshot_every` seconds together with the
sequenced offset they reflect. On taking the partition over (first start, restart, after a
rebalance) the worker loads the latest snapshot, reads the sequenced records between it and
where the group resumes directly from the log, and reads the last output numbers that
landed, so that nothing is lost, counted twice or published twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

# aiokafka's copy of Kafka's partitioner hash: kafka-python's pulls in 151 modules (7.5 MB
# of the worker's memory) for one function.
from aiokafka.partitioner import murmur2

from claimflow.agents.ingest import judge
from claimflow.agents.watch import Resets
from claimflow.config import Config, ConfigFile
from claimflow.live import snapshots, state_codec
from claimflow.live.envelopes import Bundle, EnvelopeError, Forwarded, decode_envelope
from claimflow.live.live_engine import LiveEngine, LiveSettings, Output, OutputGate
from claimflow.staffing.advice import attach, roster_of
from claimflow.staffing.roster import RosterFile
from claimflow.streams.delivery import Delivery
from claimflow.streams.log_reader import SEQ_HEADER, LogReader

log = logging.getLogger("claimflow.detect")


def _written_at(value: bytes | None, headers: Any) -> float | None:
    """The wall time ingest stamped on a sequenced record (None: not one of ours)."""
    try:
        envelope = decode_envelope(value, headers or [])
    except EnvelopeError:
        return None
    return float(envelope.wall)


class GapFiller:
    """Input records the sequenced topic skipped, re-read from the input log.

    Ingest forwards every offset of a partition in order; after a rebalance Faust's consumer
    has been seen to resume past offsets that nobody forwarded (issue 14 item 4). The merge
    knows the next offset it expects from each input partition, so a forwarded record beyond
    it shows the gap: the missing range is read from the input topic and applied first, as
    ingest would have forwarded it (stamped with the wall time of the record that showed the
    gap, so a rebuild from the same logs gives the same result). Offsets the log no longer
    holds are counted as lost and logged as an error; `ClaimflowInputRecordsLost` alerts.
    """

    def __init__(
        self,
        reader: LogReader,
        input_types: dict[str, str],
        max_event_bytes: int,
        future_tolerance: float,
    ) -> None:
        self.reader = reader
        self.input_types = input_types
        self.max_event_bytes = max_event_bytes
        self.future_tolerance = future_tolerance
        self.recovered = 0
        self.lost = 0

    async def fill(
        self, live: LiveEngine, record: Forwarded, start: int | None = None
    ) -> list[Output]:
        """`start`: where the partition's log starts when the merge has no record of it yet
        (0 on a log the broker has just created again)."""
        expected = live.expected_offset(record.topic, record.partition)
        if expected is None:
            expected = start
        if expected is None or record.offset <= expected:
            return []
        topic, partition = record.topic, record.partition
        found, _ = await self.reader.read_gap(topic, partition, expected, record.offset)
        outputs: list[Output] = []
        for offset, value, _headers in found:
            judged = judge(
                topic,
                partition,
                offset,
                value if value is not None else b"",
                record.wall,
                self.input_types.get(topic, ""),
                self.max_event_bytes,
                self.future_tolerance,
            )
            outputs.extend(live.recover(judged))
        missing = record.offset - expected - len(found)
        self.recovered += len(found)
        self.lost += missing
        log.warning(
            "%s/%d: offsets %d..%d were not forwarded; %d re-read from the input log",
            topic,
            partition,
            expected,
            record.offset - 1,
            len(found),
        )
        if missing:
            log.error(
                "%s/%d: %d input records LOST (offsets %d..%d no longer in the log)",
                topic,
                partition,
                missing,
                expected,
                record.offset - 1,
            )
        return outputs


class Detector:
    def __init__(  # noqa: PLR0913 - the worker's parts, each passed in by agents/app.py so a test can build one
        self,
        config: Config,
        input_types: dict[str, str],
        live_settings: LiveSettings,
        table: Any,
        outputs: dict[str, Any],  # output kind -> Faust topic
        reader: LogReader,
        sequenced_topic: str,
        snapshot_every: float,
        input_partitions: Callable[[], dict[str, int]],
        roster: RosterFile | None = None,
        snapshot_key: bytes | None = None,
        config_file: ConfigFile | None = None,
        gaps: GapFiller | None = None,
        resets: Resets | None = None,
        delivery: Delivery | None = None,
        snapshot_behind_every: float = 0.0,
    ) -> None:
        # An output counts as published once the broker has acknowledged it.
        self.delivery = delivery or Delivery()
        self.gaps = gaps or GapFiller(reader, input_types, 256 * 1024, 600.0)
        self.resets = resets or Resets()  # broker resets seen (agents/watch.py)
        self._new_logs: set[tuple[str, int]] = set()  # input partitions begun again at 0
        self._repeating = False
        self.config_file = config_file  # the agreements file, reloaded when it changes
        self.snapshot_key = snapshot_key  # signs snapshots (HMAC-SHA256); None: a digest
        self.snapshots_refused: Counter[str] = Counter()  # reason -> snapshots not restored
        self.input_partitions = input_partitions
        self.roster = roster  # staffing advice in SlaAtRisk alerts and on the wall page
        self.config = config
        self.input_types = input_types
        self.live_settings = live_settings
        self.table = table
        self.outputs = outputs
        self.reader = reader
        self.sequenced_topic = sequenced_topic
        self.snapshot_every = snapshot_every
        # While records wait (the merge is not caught up), snapshots come at most this often:
        # measured on a 30-day catch-up, one every 10 s cost 18% of its time and a 30 MB RSS
        # transient (state_codec builds the whole tree), and a worker taking over redoes the
        # work since the last one from the sequenced log at engine speed, not pipeline speed.
        self.snapshot_behind_every = snapshot_behind_every
        self.live: LiveEngine | None = None
        self.gate = OutputGate()
        self.output_partitions: dict[str, int] = {}
        self.last_snapshot = 0.0  # monotonic
        self.last_snapshot_bytes = 0
        self.published = 0
        self.suppressed = 0
        self.errors = 0  # records the engine failed on, snapshots that failed

    def drop(self) -> None:
        """The partition was revoked: forget the in-memory state (the table keeps it)."""
        if self.live is not None:
            log.info("sequenced partition revoked: detector state released")
        self.live = None

    async def take(self, offset: int, value: bytes | None, headers: Any) -> None:
        if self.config_file is not None and self.config_file.current() is not self.config:
            # New agreements: the state is rebuilt with them from the sequenced log, as
            # after a restart with the new file (the snapshot's configuration differs).
            self.config = self.config_file.current()
            if self.roster is not None:
                self.roster.config = self.config
            self.live = None
        if self.live is None:
            await self._take_over(offset)
        live = self.live
        assert live is not None
        # The roster as the file is now (a restored snapshot may hold an older one, or one
        # from before CLAIMFLOW_STAFFING was unset).
        roster = self.roster.current() if self.roster is not None else None
        if roster_of(live.engine) is not roster:
            attach(live.engine, roster)
        if offset < live.next_offset:
            wall = _written_at(value, headers)
            if wall is not None and wall > live.merge.wall:
                # Below what was applied, yet written after all of it: not a repeat but a
                # new log (the broker came back empty). No race with the log's growth.
                await self._reset(
                    live,
                    "sequenced",
                    f"sequenced offset {offset} was written after the {live.next_offset} "
                    "already applied",
                )
            elif not self._repeating:  # once per run of repeats: after a restart, many
                self._repeating = True
                await self._check_log_reset(live, offset)
        else:
            self._repeating = False
        if offset > live.next_offset:
            log.warning(
                "reading sequenced offsets %d..%d from the log", live.next_offset, offset - 1
            )
            async for gap_offset, gap_value, gap_headers in self.reader.read_range(
                self.sequenced_topic, 0, live.next_offset, offset
            ):
                await self._apply(live, gap_offset, gap_value, gap_headers)
        await self._apply(live, offset, value, headers)
        since = time.monotonic() - self.last_snapshot
        if since >= self.snapshot_every and (
            since >= self.snapshot_behind_every or live.merge.caught_up()
        ):
            self.snapshot()

    async def _check_log_reset(self, live: LiveEngine, offset: int) -> None:
        """A sequenced offset below what was applied is a repeat (after a restart), unless the
        log itself now ends below it: then the broker lost it (came back empty)."""
        end = await self.reader.end_offset(self.sequenced_topic, 0)
        if end >= live.next_offset:
            return
        await self._reset(
            live,
            "sequenced",
            f"{self.sequenced_topic} ends at offset {end}, below the {live.next_offset} "
            "already applied",
        )

    async def _reset(self, live: LiveEngine, signal: str, detail: str) -> None:
        """Take the sequenced log from offset 0 again (take() then reads what comes before
        the delivered record from the log) and every input offset as new; the engine state
        (counts, open claims, baselines) carries on."""
        self.resets.report(signal, detail)
        # Every input partition starts again at offset 0: a first record forwarded from
        # further on shows records that were not forwarded (a send the new broker refused).
        self._new_logs = set(live.merge.sources) | {
            (topic, p) for topic, n in live.merge.partitions.items() for p in range(n)
        }
        live.log_reset(0)
        self._repeating = False
        # Missing topics are created again by the watch (agents/watch.py, every few
        # seconds), not here: admin requests to a broker just back must not hold up the agent.

    def snapshot(self) -> None:
        """Write the state to the table; call only while handling a sequenced record."""
        if self.live is None:
            return
        self.last_snapshot = time.monotonic()
        try:
            info = snapshots.save(
                self.table,
                self.live,
                f"sequenced offset {self.live.next_offset}",
                key=self.snapshot_key,
            )
        except Exception:  # the state stays in memory; the next snapshot may succeed
            self.errors += 1
            log.exception("writing the detector-state snapshot failed")
            return
        self.last_snapshot_bytes = info.size

    async def _apply(
        self, live: LiveEngine, offset: int, value: bytes | None, headers: Any
    ) -> None:
        try:
            envelope: Any = decode_envelope(value, headers or [])
        except EnvelopeError as exc:
            envelope = exc
        if isinstance(envelope, Bundle):
            if offset < live.next_offset:
                return
            # Record by record, a gap before each filled first, as if forwarded one by one;
            # the bundle's offset counts as applied only once all of it is.
            for record in envelope.records:
                await self._fill(live, record)
                try:
                    outputs = live.recover(record)
                except Exception:  # as below: log, count, go on
                    self.errors += 1
                    log.exception(
                        "a record of sequenced bundle %d (%s/%d offset %d) could not be "
                        "applied; skipped",
                        offset,
                        record.topic,
                        record.partition,
                        record.offset,
                    )
                    continue
                for output in outputs:
                    await self._publish(output)
            live.applied(offset)
            return
        if isinstance(envelope, Forwarded) and offset >= live.next_offset:
            await self._fill(live, envelope)
        try:
            outputs = live.take(offset, envelope)
        except Exception:  # a bug must not stop detection for everyone: log, count, go on
            self.errors += 1
            log.exception("sequenced record %d could not be applied; skipped", offset)
            return
        for output in outputs:
            await self._publish(output)

    async def _fill(self, live: LiveEngine, record: Forwarded) -> None:
        """Apply what ingest skipped before `record` (GapFiller), publishing its outputs."""
        source = (record.topic, record.partition)
        start = None
        if source in self._new_logs:  # a log the broker began again: it starts at 0
            self._new_logs.discard(source)
            start = 0
        for output in await self.gaps.fill(live, record, start):
            await self._publish(output)

    async def _publish(self, output: Output) -> None:
        topic = self.outputs[output.kind]
        count = self.output_partitions.get(output.kind, 1)
        partition = (murmur2(output.key) & 0x7FFFFFFF) % count
        if not self.gate.should_send(output.kind, partition, output.seq):
            self.suppressed += 1
            return
        await self.delivery.send(
            output.kind,
            lambda: topic.send(
                key=output.key,
                value=output.value,
                partition=partition,
                headers=[(SEQ_HEADER, str(output.seq).encode())],
                force=True,
            ),
        )
        self.published += 1

    async def _take_over(self, first_offset: int) -> None:
        started = time.monotonic()
        live: LiveEngine | None = None
        try:
            loaded = snapshots.load(self.table, self.snapshot_key)
        except snapshots.SnapshotError as exc:
            self.snapshots_refused[exc.reason] += 1
            log.error("%s: rebuilding the detector state from the sequenced log", exc)
            loaded = None
        if loaded is not None:
            state, info = loaded
            fresh = LiveEngine(self.config, self.input_types, self.live_settings)
            problem = (
                f"it holds {type(state).__qualname__}"
                if not isinstance(state, LiveEngine)
                else state_codec.shape_difference(state, fresh)
            )
            if problem is not None:
                self.snapshots_refused["content"] += 1
                log.error("snapshot refused (%s): rebuilding from the sequenced log", problem)
            elif state.engine.config != self.config:
                log.warning(
                    "configuration changed since the snapshot: rebuilding the detector "
                    "state from the sequenced log with the new one"
                )
            else:
                live = state
                log.info(
                    "detector state restored from snapshot (%d bytes, %s)", info.size, info.label
                )
        if live is None:
            live = LiveEngine(self.config, self.input_types, self.live_settings)
        live.merge.expect(self.input_partitions())
        landed: dict[tuple[str, int], int] = {}

        async def last_numbers(topic: Any) -> dict[int, int]:
            await topic.maybe_declare()
            numbers: dict[int, int] = await self.reader.last_sequence_numbers(
                topic.get_topic_name()
            )
            return numbers

        # The output topics read side by side: each read starts a client and asks for the
        # topic's end (about half a second apiece on the embedded broker).
        kinds = list(self.outputs)
        found = await asyncio.gather(*(last_numbers(self.outputs[kind]) for kind in kinds))
        for kind, numbers in zip(kinds, found, strict=True):
            self.output_partitions[kind] = max(1, len(numbers))
            landed.update({(kind, p): n for p, n in numbers.items()})
        self.gate = OutputGate(landed)
        self.live = live
        self.last_snapshot = time.monotonic()
        log.info(
            "detector running from sequenced offset %d (first delivered %d), took %.1fs",
            live.next_offset,
            first_offset,
            time.monotonic() - started,
        )
