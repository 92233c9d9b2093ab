"""Item 6: a broker that comes back empty (the embedded one keeps everything in memory, so a
restart loses every topic and every committed offset). Before: 0 of 2,000 new events were
processed in 60 s while /healthz and /readyz stayed 200. The worker must notice, recreate
its topics, reset its positions (one warning, a counter), keep readiness honest meanwhile,
and judge the new events."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from claimflow.config import Config
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import Worker, wait_until

pytestmark = pytest.mark.attack
TOPICS = Topics()
NEW = 2000


def _applied(worker: Worker) -> float:
    series = worker.metrics()
    names = ("claimflow_events_total", "claimflow_rejected_events_total")
    return sum(v for (n, _), v in series.items() if n in names)


def _produce(bootstrap: str, lines: list[bytes]) -> None:
    producer = make_producer(bootstrap)
    produce(lines, producer, TOPICS)
    producer.flush()
    producer.close()


@pytest.mark.live
def test_a_broker_that_comes_back_empty_is_noticed_and_the_new_events_are_judged(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 3, date(2026, 11, 2), 3, 300), out)
    lines = out.read_bytes().splitlines()
    before, after = lines[:400], lines[400 : 400 + NEW]
    assert len(after) == NEW

    broker = EmbeddedBroker(log=tmp_path / "broker-1.log").start()
    port = broker.port
    worker = Worker(broker.bootstrap, tmp_path, "w1")
    try:
        worker.start()
        _produce(broker.bootstrap, before)
        wait_until(lambda: _applied(worker) >= len(before), 120, "the first events")
        time.sleep(4)  # an offset commit and a snapshot after them

        # The broker dies and an empty one takes its port.
        assert broker.process is not None
        broker.process.send_signal(signal.SIGKILL)
        broker.process.wait()
        broker.process = None
        # The port is in TIME_WAIT (the worker's connections); Tansu binds it anyway.
        monkeypatch.setattr("claimflow.tools.broker.port_taken", lambda port: False)
        broker = EmbeddedBroker(port=port, log=tmp_path / "broker-2.log").start()

        # Readiness must not claim the worker is consuming and judging while it is not. The
        # worker has not yet seen a record from the new broker: until it has recovered (or
        # while its topics are missing), /readyz is 503 with a reason.
        readiness: list[tuple[int, Any]] = []

        def ready_again() -> bool:
            status, body = worker.get("/readyz")
            readiness.append((status, body))
            return status == 200

        _produce(broker.bootstrap, after)
        # Before: no new event applied in 60 s (the consumer waited at its old, far larger
        # committed offsets), and /readyz said 200 throughout.
        try:
            wait_until(
                lambda: _applied(worker) >= len(before) + NEW,
                120,
                f"the {NEW} events produced to the new broker to be judged",
            )
        except AssertionError as exc:
            series = worker.metrics()
            keep = ("claimflow_merge", "claimflow_input", "claimflow_broker", "claimflow_events")
            state = {k: v for k, v in series.items() if k[0].startswith(keep)}
            raise AssertionError(f"{exc}; /readyz {worker.get('/readyz')}; {state}") from None
        wait_until(ready_again, 30, "/readyz to be 200 again")
        assert _partitions(broker.bootstrap, TOPICS.sequenced) == {0}  # recreated with one
        assert worker.get("/healthz")[0] == 200  # liveness never depended on it
        series = worker.metrics()
        resets = sum(v for (n, _), v in series.items() if n == "claimflow_broker_resets_total")
        assert resets == 1  # one reset, counted once whatever the signals that saw it
        assert _applied(worker) == len(before) + NEW  # each new event once
        assert series[("claimflow_worker_errors_total", ())] == 0
        text = worker.log.read_text()
        assert text.count("the broker came back empty (") == 1  # one warning
        unready = [body for status, body in readiness if status != 200]
        for body in unready:
            assert isinstance(body, dict) and body.get("ready") is False and body.get("why")
    finally:
        if worker.process is not None and worker.process.poll() is None:
            try:
                worker.stop(timeout=20)
            except subprocess.TimeoutExpired:
                worker.stop(signal.SIGKILL)
        broker.stop()


def _partitions(bootstrap: str, topic: str) -> set[int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return set(consumer.partitions_for_topic(topic) or set())
    finally:
        consumer.close()


class _Consumer:
    def __init__(self, read: dict[Any, int], ends: dict[Any, int]) -> None:
        self._read_offset: dict[Any, int | None] = dict(read)
        self._committed_offset: dict[Any, int | None] = dict(read)
        self._acked: dict[Any, list[int]] = {}
        self._acked_index: dict[Any, set[int]] = {}
        self._gap: dict[Any, list[int]] = {}
        self.ends = ends
        self.seeks: list[tuple[Any, int]] = []

    def assignment(self) -> set[Any]:
        return set(self.ends)

    def highwater(self, tp: Any) -> int:
        return self.ends[tp]

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))
        self._read_offset[tp] = None


def test_readiness_says_why_when_records_wait_and_nothing_moves() -> None:
    """The watch behind /readyz, on a consumer stuck the way the worker was before the fix:
    its read position far past the end of a new, growing log."""
    import asyncio
    from types import SimpleNamespace

    from faust.types import TP

    from claimflow.agents.watch import STALL_AFTER, BrokerWatch, Resets

    arrived, sequenced = TP("claims.arrived", 0), TP("claimflow.sequenced", 0)
    now = [0.0]
    consumer = _Consumer({arrived: 500}, {arrived: 40, sequenced: 10})
    app = SimpleNamespace(
        consumer=consumer,
        assignor=SimpleNamespace(assigned_actives=lambda: {arrived, sequenced}),
    )
    created: list[list[str]] = [["claims.arrived"], []]
    forwarded = {("claims.arrived", 0): 501}  # what ingest forwarded from the lost log

    async def ensure() -> list[str]:
        return created.pop(0) if created else []

    resets = Resets(clock=lambda: now[0])
    watch = BrokerWatch(
        app,
        resets,
        ensure,
        {"claims.arrived"},
        lambda: forwarded,
        (sequenced, lambda: 5),
        lambda: now[0],
    )
    asyncio.run(watch.check())
    # The topic was gone and the read position past the log's end: one reset, counted by the
    # signal that saw it first; the position goes back to the start of the new log.
    assert resets.counts == {"topics": 1, "consumer": 0, "sequenced": 0}
    assert consumer.seeks == [(arrived, 0)] and forwarded == {}
    assert watch.not_ready() is None
    # Ingest forwards three records of the new log, then nothing moves while records wait
    # (the detector too stays at offset 5 of 10): not ready, saying where.
    forwarded[("claims.arrived", 0)] = 3
    asyncio.run(watch.check())
    assert watch.not_ready() is None
    now[0] = STALL_AFTER + 1
    asyncio.run(watch.check())
    why = watch.not_ready()
    assert why is not None and "claimflow.sequenced/0 (at 5, log ends at 10)" in why
    assert "claims.arrived/0 (at 3, log ends at 40)" in why
    assert resets.total == 1  # no new reset: the same episode
    # Progress again: ready.
    forwarded[("claims.arrived", 0)] = 40
    asyncio.run(watch.check())
    assert watch.not_ready() is not None  # the detector still has not moved
    watch.sequenced_next = lambda: 10
    asyncio.run(watch.check())
    assert watch.not_ready() is None
