"""`claimflow produce` against the real embedded broker: a line counts as sent only once the
broker holds it, and what the broker does not take is reported, never counted as sent."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import ensure_topics, make_producer, produce, route
from tests.conftest import ScenarioRun

pytestmark = pytest.mark.live
TOPICS = Topics()
CLI = [sys.executable, "-m", "claimflow.cli"]


def _ends(bootstrap: str, partitions: int) -> Counter[str]:
    """Records each input topic holds, by its partitions' end offsets."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(t, p) for t in TOPICS.inputs() for p in range(partitions)]
        held: Counter[str] = Counter()
        for tp, end in consumer.end_offsets(tps).items():
            held[tp.topic] += end
        return held
    finally:
        consumer.close()


def test_what_claimflow_produce_says_it_sent_is_what_the_broker_holds(
    broker: EmbeddedBroker, scenario, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    run: ScenarioRun = scenario("normal", 2)
    lines = run.events.read_bytes().splitlines()
    routed = Counter(t[0] for line in lines if not isinstance(t := route(line, TOPICS), str))
    done = subprocess.run(
        [*CLI, "produce", "--input", str(run.events), "--bootstrap", broker.bootstrap],
        capture_output=True,
        timeout=600,
        check=False,
    )
    report = done.stderr.decode()
    assert done.returncode == 0, report
    said = {t: int(n.replace(",", "")) for t, n in re.findall(r"^  (\S+): ([\d,]+)$", report, re.M)}
    assert said == dict(routed)
    assert _ends(broker.bootstrap, 4) == routed


def test_records_the_broker_never_took_are_reported_and_not_counted_as_sent(
    broker: EmbeddedBroker, scenario
) -> None:  # type: ignore[no-untyped-def]
    lines = scenario("normal", 2).events.read_bytes().splitlines()[:6]
    ensure_topics(broker.bootstrap, TOPICS.inputs(), 4)
    producer = make_producer(
        broker.bootstrap,
        delivery_timeout_ms=3000,
        request_timeout_ms=1000,
        max_block_ms=2000,
        retries=0,
    )
    try:
        first = produce(lines[:1], producer, TOPICS)
        assert sum(first.sent.values()) == 1 and not first.failed
        broker.stop()  # the broker goes away with the records still to send
        refused: list[int] = []
        summary = produce(lines, producer, TOPICS, on_fail=lambda n, why: refused.append(n))
    finally:
        producer.close(timeout=5)
    # Before: "sent 6 events", exit 0, the records gone with an error nobody read.
    assert sum(summary.sent.values()) == 0
    assert [n for n, _ in summary.failed] == refused == [1, 2, 3, 4, 5, 6]
    assert "NOT SENT: 6 lines" in summary.render()
