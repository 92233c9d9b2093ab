"""streams/fetch_times.py against the real embedded broker: the time a partition's end is
vouched for as of never runs ahead of what the end covers, also when the consumer's event
loop stalls between a fetch response's arrival and its processing (a starved consumer
thread, which is what made the report's own time unsafe), and it keeps advancing on an idle
partition (the long-polled fetches refresh it)."""

from __future__ import annotations

import asyncio
import threading
import time
from itertools import pairwise

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from claimflow.streams import fetch_times
from claimflow.tools.broker import EmbeddedBroker

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

TOPIC = "timed"
BUSY, IDLE = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def _produce(bootstrap: str, acked: list[tuple[float, int]], stop: threading.Event) -> None:
    """Records to the busy partition, each with the time its acknowledgement came back."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, batch_size=1)
    try:
        while not stop.is_set():
            offset = producer.send(TOPIC, b"x" * 50, partition=0).get(30).offset
            acked.append((time.time(), offset))
            time.sleep(0.01)
    finally:
        producer.close()


Sample = tuple[float, float, int | None, float]


async def _sample(bootstrap: str, seconds: float) -> list[Sample]:
    """(sampled at, as_of, high-water mark, aiokafka's processing stamp) of the busy
    partition, while the loop stalls now and then."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        consumer.assign([BUSY, IDLE])
        await consumer.seek_to_beginning(BUSY, IDLE)
        assert fetch_times.install(consumer._fetcher, time.time)
        assert fetch_times.install(consumer._fetcher, time.time)  # twice is harmless
        samples: list[Sample] = []
        idle: list[float] = []
        end = time.time() + seconds
        k = 0
        while time.time() < end:
            await consumer.getmany(timeout_ms=50, max_records=500)
            k += 1
            if k % 7 == 0:
                time.sleep(0.3)  # the loop stalls: responses already sent wait unprocessed
            for tp in (BUSY, IDLE):
                as_of = fetch_times.as_of(consumer._fetcher, tp.topic, tp.partition)
                high = consumer.highwater(tp)  # after as_of, as reports read them
                if as_of is None:
                    continue
                if tp == BUSY:
                    state = consumer._subscription.subscription.assignment.state_value(tp)
                    samples.append((time.time(), as_of, high, state.timestamp / 1000))
                else:
                    idle.append(as_of)
        assert len(set(idle)) > seconds, "the idle partition's end was not refreshed"
        assert all(b >= a for a, b in pairwise(idle))
        return samples
    finally:
        await consumer.stop()


def test_as_of_never_runs_ahead_of_the_end_it_vouches_for(broker: EmbeddedBroker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(TOPIC, 2, 1)])
    admin.close()
    acked: list[tuple[float, int]] = []
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(broker.bootstrap, acked, stop))
    producer.start()
    try:
        samples = asyncio.run(_sample(broker.bootstrap, 6.0))
    finally:
        stop.set()
        producer.join(60)
    assert len(acked) > 100 and len(samples) > 50
    for sampled, as_of, high, _ in samples:
        assert as_of <= sampled
        assert high is not None
        # Every record acknowledged before the vouch time lies below the end.
        missed = [offset for at, offset in acked if at < as_of and offset >= high]
        assert missed == [], f"as_of {as_of} vouches for an end {high} that misses {missed}"
    # Fresh enough to be useful: the latest vouch is within a second of its sampling.
    assert max(s - a for s, a, _, _ in samples[-20:]) < 1.0
    # aiokafka's own stamp (when the response was processed) is what reports used to vouch
    # with: after the stalls it runs ahead of the end (the failure this module fixes).
    processed = [s for s in samples if any(at < s[3] and off >= s[2] for at, off in acked)]
    assert processed, "no stall made the processing stamp run ahead: the test proves nothing"
