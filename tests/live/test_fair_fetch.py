"""streams/fair_fetch.py against the real embedded broker: every poll hands out a share of
each partition's fetched records, and a full drain still gives every record once, in order."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from claimflow.streams import fair_fetch
from claimflow.tools.broker import EmbeddedBroker

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

TOPIC = "fair"
PARTITIONS = 4
PER_PARTITION = 300


def _fill(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    admin.close()
    # One record per produce request: multi-record batches get wrong offsets on this broker.
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, batch_size=1)
    for partition in range(PARTITIONS):
        for k in range(PER_PARTITION):
            producer.send(TOPIC, f"{partition}:{k}:{'x' * 80}".encode(), partition=partition).get(
                30
            )
    producer.close()


async def _polls(bootstrap: str, fair: bool) -> list[dict[Any, list[Any]]]:
    """Every poll of 200 records until all are read, after the first fetch is buffered."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=1024 * 1024,  # a partition's whole log in one chunk
    )
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        if fair:
            assert fair_fetch.install(consumer._fetcher)
            assert fair_fetch.install(consumer._fetcher)  # twice is harmless
        polls = []
        first = await consumer.getmany(timeout_ms=10_000, max_records=1)
        assert first, "nothing fetched"
        polls.append(first)
        await asyncio.sleep(1.0)  # one fetch response holds every partition's chunk
        total = sum(len(v) for v in first.values())
        while total < PARTITIONS * PER_PARTITION:
            got = await consumer.getmany(timeout_ms=10_000, max_records=200)
            assert got, f"stalled after {total} records"
            polls.append(got)
            total += sum(len(v) for v in got.values())
        return polls
    finally:
        await consumer.stop()


def _check_complete(polls: list[dict[Any, list[Any]]]) -> None:
    seen: dict[int, list[int]] = defaultdict(list)
    for poll in polls:
        for tp, records in poll.items():
            seen[tp.partition].extend(r.offset for r in records)
    assert dict(seen) == {p: list(range(PER_PARTITION)) for p in range(PARTITIONS)}


def test_each_poll_shares_out_every_partition_and_loses_nothing(broker: EmbeddedBroker) -> None:
    _fill(broker.bootstrap)
    plain = asyncio.run(_polls(broker.bootstrap, fair=False))
    fair = asyncio.run(_polls(broker.bootstrap, fair=True))
    _check_complete(plain)
    _check_complete(fair)
    # aiokafka alone drains one partition's chunk before the next: the second poll (the
    # first of 200 records) comes from one partition.
    assert len(plain[1]) == 1
    # Fair: the same poll holds a share of each of the four (200 // 4 = 50 apiece).
    shares = {tp.partition: len(records) for tp, records in fair[1].items()}
    assert shares == dict.fromkeys(range(PARTITIONS), 50)
    assert len(fair) <= len(plain) + 1  # no more polls than needed
