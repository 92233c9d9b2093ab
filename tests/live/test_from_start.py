"""streams/from_start.py against the real embedded broker: after a seek to the committed
offsets, a partition the group committed nothing for is read from the start of its log, not
from where the consumer had fetched to while Faust's flow was stopped.

The worker-level proof is tests/attacks/test_broker_reset.py under CPU load (it hung in
about 3 runs of 5 without this); this pins the mechanism down on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from claimflow.streams import from_start
from claimflow.tools.broker import EmbeddedBroker

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

TOPIC = "fromstart"
OTHER = "elsewhere"
RECORDS = 30


class _Thread:
    """Faust's consumer thread as `from_start` uses it: the aiokafka consumer it runs
    (`_consumer`) and `call_thread`, here on the test's own loop."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def call_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await fun(*args)


class _FaustConsumer:
    """The two things of Faust's aiokafka consumer that `from_start` touches: its thread,
    and `seek_to_committed`, which Faust implements as this call in the thread
    (faust/transport/drivers/aiokafka.py, `Consumer.seek_to_committed`)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._thread = _Thread(consumer)

    async def seek_to_committed(self) -> Mapping[Any, int | None]:
        result: Mapping[Any, int | None] = await self._thread.call_thread(
            self._thread._consumer.seek_to_committed
        )
        return result


def _fill(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, 1, 1), NewTopic(OTHER, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, batch_size=1)
    for topic in (TOPIC, OTHER):
        for k in range(RECORDS):
            producer.send(topic, f"{k}".encode(), partition=0).get(30)
    producer.close()


async def _positions_after_seek(bootstrap: str, install: bool) -> dict[str, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="fromstart-group",  # a group that has committed nothing
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC, 0), TopicPartition(OTHER, 0)]
        consumer.assign(tps)
        read = 0
        while read < 2 * RECORDS:  # what the consumer thread fetched while the flow stopped
            got = await consumer.getmany(timeout_ms=10_000)
            assert got, f"stalled after {read} records"
            read += sum(len(records) for records in got.values())
        faust_consumer = _FaustConsumer(consumer)
        if install:
            assert from_start.install(faust_consumer, {TOPIC})
            assert from_start.install(faust_consumer, {TOPIC})  # twice is harmless
        committed = await faust_consumer.seek_to_committed()
        assert set(committed.values()) == {None}
        return {tp.topic: await consumer.position(tp) for tp in tps}
    finally:
        await consumer.stop()


def test_nothing_committed_means_the_start_of_the_log_after_the_seek(
    broker: EmbeddedBroker,
) -> None:
    _fill(broker.bootstrap)
    # aiokafka's own seek leaves a partition without a committed offset where it was: the
    # records read before it (dropped by Faust, its flow stopped) are skipped for good.
    assert asyncio.run(_positions_after_seek(broker.bootstrap, install=False)) == {
        TOPIC: RECORDS,
        OTHER: RECORDS,
    }
    # Installed: the partitions of the topics named go back to the start; others stay.
    assert asyncio.run(_positions_after_seek(broker.bootstrap, install=True)) == {
        TOPIC: 0,
        OTHER: RECORDS,
    }


def test_install_refuses_what_is_not_a_faust_aiokafka_consumer() -> None:
    assert from_start.install(object(), {TOPIC}) is False
