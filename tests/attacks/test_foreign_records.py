"""Item 7: records in claimflow's own topics that claimflow did not write are skipped and
counted, never fatal. Read back on the real embedded broker."""

from __future__ import annotations

import asyncio

import pytest

from claimflow.broker import EmbeddedBroker
from claimflow.produce import ensure_topics, make_producer
from claimflow.streams.log_reader import SEQ_HEADER, LogReader

pytestmark = pytest.mark.attack
ALERTS = "claimflow.alerts"


def test_a_foreign_sequence_header_in_the_alerts_topic_is_skipped_and_counted(
    broker: EmbeddedBroker,
) -> None:
    ensure_topics(broker.bootstrap, [ALERTS], 1)
    producer = make_producer(broker.bootstrap)
    sends = [
        (b"{}", [(SEQ_HEADER, b"7")]),  # ours
        (b"x", [(SEQ_HEADER, b"not-a-number")]),  # the attack from the issue
        (b"y", [(SEQ_HEADER, b"\xff\xfe")]),  # not even text
        (b"z", [(SEQ_HEADER, b"-3")]),
        (b"w", []),  # no header at all
    ]
    for value, headers in sends:
        producer.send(ALERTS, value=value, headers=headers, partition=0).get(timeout=10)
    producer.flush()
    producer.close()

    reader = LogReader([broker.bootstrap], {})
    numbers = asyncio.run(reader.last_sequence_numbers(ALERTS))

    assert numbers == {0: 7}  # before: ValueError("invalid literal for int()") took it down
    assert reader.foreign == 4
