"""Direct reads of claimflow's own topics, outside the consumer group, for recovery.

The detector worker uses them when it takes over the sequenced partition: to read the
records between its last snapshot and where the group resumes (`read_range`), and to find the
last output number that landed in each output partition (`last_sequence_numbers`), so that
regenerated alerts and dead letters are not published twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger("claimflow.log_reader")
SEQ_HEADER = "claimflow-seq"
TAIL = 50  # records read back from the end of each output partition
Record = tuple[int, bytes | None, list[tuple[str, bytes]]]


class LogReader:
    def __init__(self, bootstrap: list[str], auth: dict[str, Any]) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        # Records read back from claimflow's output topics that it did not write (no or a
        # malformed sequence-number header): skipped, never fatal (issue 14 item 7).
        self.foreign = 0

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            **self.auth,
        )

    async def read_range(
        self, topic: str, partition: int, start: int, stop: int
    ) -> AsyncIterator[Record]:
        """Records with start <= offset < stop (fewer if retention removed some)."""
        consumer = self._consumer()
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            async for record in self._read(consumer, tp, start, stop):
                yield record
        finally:
            await consumer.stop()

    async def read_gap(
        self, topic: str, partition: int, start: int, stop: int
    ) -> tuple[list[Record], int]:
        """Records with start <= offset < stop, and the first offset the log still holds
        (records below it went with retention, not lost by claimflow)."""
        consumer = self._consumer()
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            earliest = (await consumer.beginning_offsets([tp]))[tp]
            records = [r async for r in self._read(consumer, tp, start, stop)]
            return records, earliest
        finally:
            await consumer.stop()

    async def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next record written to the partition will get (0: empty or gone)."""
        consumer = self._consumer()
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            return int((await consumer.end_offsets([tp]))[tp])
        finally:
            await consumer.stop()

    @staticmethod
    async def _read(
        consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, stop: int
    ) -> AsyncIterator[Record]:
        earliest = (await consumer.beginning_offsets([tp]))[tp]
        position = max(start, earliest)
        consumer.seek(tp, position)
        while position < stop:
            batches = await consumer.getmany(tp, timeout_ms=1000)
            if not batches.get(tp) and (await consumer.end_offsets([tp]))[tp] <= position:
                return  # nothing more there: the range ends in a gap
            for record in batches.get(tp, []):
                if record.offset >= stop:
                    return
                position = record.offset + 1
                yield record.offset, record.value, list(record.headers)

    @staticmethod
    def _sequence_number(headers: list[tuple[str, bytes]]) -> int | None:
        """The output number claimflow put on a record; None for anything else."""
        for name, value in headers or ():
            if name != SEQ_HEADER:
                continue
            try:
                text = bytes(value).decode("ascii")
            except (UnicodeDecodeError, TypeError):
                return None
            if not text.isdigit() or len(text) > 19:
                return None
            return int(text)
        return None

    async def last_sequence_numbers(self, topic: str) -> dict[int, int]:
        """Per partition of `topic`, the output number of its last record (0 if none)."""
        consumer = self._consumer()
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await consumer._client.force_metadata_update()  # topic created moments ago
                partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            result = {tp.partition: 0 for tp in tps}
            if not tps:
                return result
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                # The last few records: one written by someone else must not hide ours.
                start = max(0, ends[tp] - TAIL)
                async for _, _, headers in self._read(consumer, tp, start, ends[tp]):
                    number = self._sequence_number(headers)
                    if number is None:
                        self.foreign += 1
                        log.warning(
                            "%s/%d: a record without a valid %s header; not ours, skipped",
                            tp.topic,
                            tp.partition,
                            SEQ_HEADER,
                        )
                        continue
                    result[tp.partition] = max(result[tp.partition], number)
            return result
        finally:
            await consumer.stop()
