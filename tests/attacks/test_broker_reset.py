"""Item 6: the broker comes back empty (the embedded broker keeps its data in memory; a
restart loses every topic and offset). The worker must notice, recreate what it needs, say so
in its log, and go on judging the new records."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from claimflow.broker import BrokerError, EmbeddedBroker, free_port
from claimflow.config import Config
from claimflow.produce import make_producer, produce
from claimflow.simulate import Simulator, write_scenario
from claimflow.streams.topics import Topics
from tests.live_harness import Worker, reference, reference_series, wait_until

pytestmark = pytest.mark.attack
TOPICS = Topics()


def _events_total(series: dict[Any, float]) -> dict[Any, float]:
    return {k: v for k, v in series.items() if k[0] == "claimflow_events_total"}


def _produce(bootstrap: str, lines: list[bytes]) -> None:
    producer = make_producer(bootstrap)
    produce(lines, producer, TOPICS)
    producer.flush()
    producer.close()


def _restart(port: int, log: Path) -> EmbeddedBroker:
    """A new broker on the old port, once the old sockets' TIME_WAIT lets it bind."""

    def start() -> EmbeddedBroker | None:
        try:
            return EmbeddedBroker(port, log=log).start()
        except BrokerError:
            return None

    broker: EmbeddedBroker = wait_until(start, 120, f"port {port} to be free again", every=2)
    return broker


def test_a_broker_that_comes_back_empty_is_noticed_and_consumed_again(
    tmp_path: Path, config: Config
) -> None:
    events = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 2, date(2026, 11, 2), 1, 300), events)
    lines = events.read_bytes().splitlines()
    half = len(lines) // 2
    port = free_port()
    broker = EmbeddedBroker(port, log=tmp_path / "broker-1.log").start()
    worker = Worker(broker.bootstrap, tmp_path)
    try:
        worker.start()
        _produce(broker.bootstrap, lines[:half])
        first, _ = reference(config, lines[:half])
        wait_until(
            lambda: _events_total(worker.metrics()) == _events_total(reference_series(first)),
            120,
            "the first half to be applied",
        )
        broker.stop()
        broker = _restart(port, tmp_path / "broker-2.log")  # the same address, empty
        _produce(broker.bootstrap, lines[half:])
        everything, _ = reference(config, lines)
        wait_until(
            lambda: _events_total(worker.metrics()) == _events_total(reference_series(everything)),
            120,
            "the records produced after the reset to be applied",
        )
        assert "came back empty" in worker.log.read_text()
        assert worker.get("/readyz")[0] == 200
    finally:
        if worker.process is not None:
            worker.stop(timeout=90)
        broker.stop()
