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


async def _capped_read(bootstrap: str) -> tuple[dict[int, int], dict[int, int], list[Any]]:
    """Partition 0 capped at 30 records, the others probing 40 before any decision; then the
    caps lifted. Returns what each partition handed out while capped, the hand-out's own
    count, and every poll."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        hand_out = fair_fetch.HandOut(topics={TOPIC}, probe=40)
        hand_out.caps[(TOPIC, 0)] = 30
        assert fair_fetch.install(consumer._fetcher, hand_out)
        polls: list[Any] = []
        while True:  # until the caps stop everything: an empty poll
            got = await consumer.getmany(timeout_ms=2_000, max_records=200)
            if not got:
                break
            polls.append(got)
        capped = defaultdict(int)
        for poll in polls:
            for tp, records in poll.items():
                capped[tp.partition] += len(records)
        handed = {p: n for (_, p), n in hand_out.handed.items()}
        hand_out.caps = dict.fromkeys(((TOPIC, p) for p in range(PARTITIONS)), None)
        total = sum(capped.values())
        while total < PARTITIONS * PER_PARTITION:
            got = await consumer.getmany(timeout_ms=10_000, max_records=200)
            assert got, f"stalled after {total} records"
            polls.append(got)
            total += sum(len(v) for v in got.values())
        return dict(capped), handed, polls
    finally:
        await consumer.stop()


def test_a_capped_partition_hands_out_its_cap_and_keeps_the_rest(broker: EmbeddedBroker) -> None:
    # Ingest's event-time alignment limits what each input partition hands out, so that the
    # merge holds a bounded number of records (claimflow/live/alignment.py); the records past
    # a cap wait in the consumer's fetch buffer and come once it lifts, none lost.
    _fill(broker.bootstrap)
    capped, handed, polls = asyncio.run(_capped_read(broker.bootstrap))
    assert capped == {0: 30, 1: 40, 2: 40, 3: 40}  # the cap; the probe before any decision
    assert handed == capped
    _check_complete(polls)


def test_a_decision_is_installed_less_what_is_on_its_way() -> None:
    """Ingest's alignment decides how many records each partition may still forward; what
    the consumer has handed out and ingest has not forwarded yet counts against that."""
    hand_out = fair_fetch.HandOut(topics={TOPIC}, probe=40)
    a, b, c, d = ((TOPIC, p) for p in range(4))
    hand_out.handed = {a: 100, b: 100, c: 5}
    hand_out.limit({a: 50, b: 30, c: 20}, [a, b, c, d], forwarded={a: 60, b: 60, c: 9})
    # a: 40 on their way, 10 left; b: 40 on their way, more than 30, so 0 (never below);
    # c: more forwarded than handed (counted since an earlier assignment), so all 20;
    # d: no decision, no limit.
    assert hand_out.caps == {a: 10, b: 0, c: 20, d: None}
    assert [hand_out.cap(k) for k in (a, b, c, d)] == [10, 0, 20, None]
