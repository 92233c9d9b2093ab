"""streams/delivery.py against the real embedded broker: a send the broker cannot take is
sent again until one is acknowledged, counted, and only then reported done."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from claimflow.streams.delivery import Delivery
from claimflow.tools.broker import EmbeddedBroker

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

TOPIC = "delivered"


def _create(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, 1, 1)])
    admin.close()


def _values(bootstrap: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000)
    tp = TopicPartition(TOPIC, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    values = [record.value for record in consumer]
    consumer.close()
    return values


def test_a_send_the_broker_cannot_take_is_sent_again_until_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = EmbeddedBroker(log=tmp_path / "broker-1.log").start()
    port = broker.port
    _create(broker.bootstrap)

    async def run() -> tuple[Delivery, object]:
        nonlocal broker
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=1500)
        await producer.start()
        try:
            delivery = Delivery()
            assert await delivery.send(TOPIC, lambda: producer.send(TOPIC, b"before")) is not None
            assert delivery.retries[TOPIC] == 0
            # The broker dies: the next send cannot be acknowledged...
            assert broker.process is not None
            broker.process.send_signal(signal.SIGKILL)
            broker.process.wait()
            broker.process = None
            sending = asyncio.ensure_future(
                delivery.send(TOPIC, lambda: producer.send(TOPIC, b"after"))
            )
            await asyncio.sleep(4)
            assert not sending.done()  # ...so it is not reported done,
            assert delivery.retries[TOPIC] >= 1  # but refused, counted and sent again
            # An empty broker takes the port (the old one's sockets may be in TIME_WAIT).
            monkeypatch.setattr("claimflow.tools.broker.port_taken", lambda port: False)
            broker = EmbeddedBroker(port=port, log=tmp_path / "broker-2.log").start()
            _create(broker.bootstrap)
            metadata = await asyncio.wait_for(sending, 60)
            return delivery, metadata
        finally:
            await producer.stop()

    try:
        delivery, metadata = asyncio.run(run())
        assert metadata is not None
        assert _values(broker.bootstrap) == [b"after"]  # in the new log, acknowledged
        assert delivery.retries[TOPIC] >= 1
    finally:
        broker.stop()
