"""The live worker end to end: real `claimflow worker` processes on the embedded broker.

Each test compares the worker with an uninterrupted in-process run of the same engine over
the same events (`live_harness.reference`) and with `claimflow replay`.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from claimflow.config import Config
from claimflow.contract.deadletter import original_bytes
from claimflow.engine import Alert
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.replay import replay
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import (
    Worker,
    engine_series,
    read_topic,
    reference,
    reference_series,
    summed,
    wait_until,
)

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

TOPICS = Topics()


@pytest.fixture(scope="module")
def hub_break(tmp_path_factory: pytest.TempPathFactory, config: Config) -> list[bytes]:
    """Ten days with an overnight hub-link break on day nine (about 22,000 events)."""
    out = tmp_path_factory.mktemp("live") / "events.jsonl"
    write_scenario(Simulator(config, "hub-break", 10, date(2026, 11, 2), 1, 800), out)
    return out.read_bytes().splitlines()


def _produce(bootstrap: str, lines: list[bytes]) -> None:
    producer = make_producer(bootstrap)
    produce(lines, producer, TOPICS)
    producer.flush()
    producer.close()


def _alerts(bootstrap: str) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in read_topic(bootstrap, TOPICS.alerts)]


def _when(value: Any, condition: Any) -> Any:
    return value if condition(value) else None


def _caught_up(series: dict[Any, float], expected: dict[Any, float]) -> bool:
    key = ("claimflow_event_time_seconds", ())
    return series.get(key) == expected.get(key) and all(
        series.get(k) == v for k, v in expected.items() if k[0] == "claimflow_events_total"
    )


def _published(bootstrap: str, reference_alerts: list[Alert]) -> list[dict[str, Any]]:
    """The alerts topic once it holds as many alerts as the reference run raised: alerts are
    produced after the engine state that `/metrics` shows, so a read right after the
    metrics match can be a moment early. Equality is asserted after (none twice)."""

    def enough() -> tuple[list[dict[str, Any]]] | None:
        got = _alerts(bootstrap)
        return (got,) if len(got) >= len(reference_alerts) else None

    return list(wait_until(enough, 60, "every alert on the alerts topic")[0])


def test_worker_alerts_match_replay_and_bad_input_goes_to_dead_letters(
    broker: EmbeddedBroker, tmp_path: Path, config: Config, hub_break: list[bytes]
) -> None:
    worker = Worker(broker.bootstrap, tmp_path).start()
    try:
        half = len(hub_break) // 2
        _produce(broker.bootstrap, hub_break[:half])
        bad = _send_bad_input(broker.bootstrap, hub_break[:half])
        _produce(broker.bootstrap, hub_break[half:])

        engine, _ = reference(config, hub_break)
        expected = reference_series(engine)
        live = wait_until(
            lambda: _when(worker.metrics(), lambda s: _caught_up(s, expected)),
            120,
            "the worker to apply every event",
        )
        # Same alerts as `claimflow replay`, up to the event time the live engine has
        # judged (replay also flushes the end of its input; a live stream has no end).
        replayed: list[Alert] = []
        replay(config, hub_break, replayed.append, lambda *_: None)
        expected_alerts = [a.to_dict() for a in replayed if a.at <= engine.watermark]
        alerts = _alerts(broker.bootstrap)
        assert alerts == expected_alerts
        assert any(a["alert"] == "HubLinkBreak" and a["state"] == "firing" for a in alerts)

        # Every bad record is in the dead-letter topic with its reason, bytes and source.
        letters = [json.loads(r.value) for r in read_topic(broker.bootstrap, TOPICS.deadletter)]
        assert Counter(d["reason"] for d in letters) == Counter(reason for _, _, reason in bad)
        sent = {(topic, raw) for topic, raw, _ in bad}
        for letter in letters:
            assert (letter["source"]["topic"], original_bytes(letter)) in sent
            source = letter["source"]
            stored = [
                r.value
                for r in read_topic(broker.bootstrap, source["topic"])
                if r.partition == source["partition"] and r.offset == source["offset"]
            ]
            assert stored == [original_bytes(letter)]
        rejected = {
            dict(labels)["reason"]: v
            for (name, labels), v in live.items()
            if name == "claimflow_rejected_events_total"
        }
        assert rejected == dict(Counter(reason for _, _, reason in bad))
        # Good events were all processed: the state equals the reference run's.
        assert {k: v for k, v in engine_series(live).items() if "rejected" not in k[0]} == {
            k: v for k, v in expected.items() if "rejected" not in k[0]
        }
        assert not [k for k in live if k[0].startswith("claimflow_") and "claim_id" in dict(k[1])]
        # The input reached ingest a poll at a time (streams/batch_drain.py), never through
        # Faust's per-record path.
        paths = {
            dict(labels)["path"]: v
            for (name, labels), v in live.items()
            if name == "claimflow_ingest_batches_total"
        }
        assert paths["poll"] > 0
        assert paths["stream"] == 0
        promtool = shutil.which("promtool")
        if promtool is not None:  # .ci/run installs it; the metrics test says so when absent
            _, text = worker.get("/metrics")
            checked = subprocess.run(
                [promtool, "check", "metrics"],
                input=text.encode(),
                capture_output=True,
                check=False,
            )
            assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")
    finally:
        worker.stop()


def _send_bad_input(bootstrap: str, sent: list[bytes]) -> list[tuple[str, bytes, str]]:
    """Bad records into every input topic; returns (topic, bytes, expected reason). The
    duplicates repeat the latest event of each type sent so far (within the dedupe horizon)."""
    first: dict[str, bytes] = {}
    for line in reversed(sent):
        first.setdefault(json.loads(line)["type"], line)
    bad: list[tuple[str, bytes, str]] = []
    for kind, line in first.items():
        topic = TOPICS.for_event(kind)
        event = json.loads(line)
        time_field = next(k for k in event if k.endswith("_at") and k != "hub_received_at")
        naive = dict(event, event_id=event["event_id"] + "-naive")
        naive[time_field] = naive[time_field][:19]
        wrong_type = dict(event, event_id=event["event_id"] + "-wrong")
        wrong_type["claim_id" if kind != "survey_response" else "score"] = [1, 2]
        bad += [
            (topic, b'{"type": "' + kind.encode() + b'", "event_id": ', "malformed_json"),
            (topic, json.dumps(naive).encode(), "naive_timestamp"),
            (topic, json.dumps(wrong_type).encode(), "wrong_type"),
            (topic, line, "duplicate"),
        ]
        if kind == "claim_arrived":
            ghost = dict(event, event_id=event["event_id"] + "-ghost", team="ghost-team")
            bad.append((topic, json.dumps(ghost).encode(), "unknown_team"))
    producer = KafkaProducer(bootstrap_servers=bootstrap, batch_size=0, acks="all")
    for topic, raw, _ in bad:
        producer.send(topic, key=b"bad", value=raw)
    producer.flush()
    producer.close()
    return bad


@pytest.mark.parametrize(
    ("snapshot_every", "recovery"),
    [
        ("2", "detector state restored from snapshot"),
        # No snapshot written before the kill: the state is rebuilt from the sequenced log.
        ("3600", "reading sequenced offsets 0.."),
    ],
    ids=["from-snapshot", "rebuilt-from-log"],
)
def test_sigkill_and_restart_end_with_the_same_tables_metrics_and_alerts(
    broker: EmbeddedBroker,
    tmp_path: Path,
    config: Config,
    hub_break: list[bytes],
    snapshot_every: str,
    recovery: str,
) -> None:
    engine, ref_alerts = reference(config, hub_break)
    expected = reference_series(engine)
    total = sum(v for k, v in expected.items() if k[0] == "claimflow_events_total")
    # Killed while records still wait: the snapshots taken then are the "behind" ones.
    env = {
        "CLAIMFLOW_SNAPSHOT_EVERY": snapshot_every,
        "CLAIMFLOW_SNAPSHOT_BEHIND_EVERY": snapshot_every,
    }
    worker = Worker(broker.bootstrap, tmp_path, "first", env=env).start()
    producing = threading.Thread(target=_produce, args=(broker.bootstrap, hub_break))
    producing.start()
    try:

        def events_applied() -> float:
            return sum(v for k, v in worker.metrics().items() if k[0] == "claimflow_events_total")

        applied_at_kill = wait_until(
            lambda: _when(events_applied(), lambda n: n >= total * 0.4),
            120,
            "the worker to apply 40% of the events",
        )
        worker.stop(signal.SIGKILL)
    finally:
        producing.join()
    assert applied_at_kill < total  # killed mid-scenario, with work left
    restarted = Worker(broker.bootstrap, tmp_path, "second", env=env).start()
    try:
        live = wait_until(
            lambda: _when(restarted.metrics(), lambda s: _caught_up(s, expected)),
            180,
            "the restarted worker to apply every event",
        )
        assert engine_series(live) == expected  # tables: every count, backlog, link, alert
        # None twice:
        assert _published(broker.bootstrap, ref_alerts) == [a.to_dict() for a in ref_alerts]
        assert recovery in restarted.log.read_text()
    finally:
        restarted.stop()


def test_two_workers_split_the_partitions_and_sum_to_one(
    broker: EmbeddedBroker, tmp_path: Path, config: Config, hub_break: list[bytes]
) -> None:
    engine, ref_alerts = reference(config, hub_break)
    expected = reference_series(engine)
    first = Worker(broker.bootstrap, tmp_path, "first").start()
    second = Worker(broker.bootstrap, tmp_path, "second").start()
    workers = [first, second]
    try:

        def split() -> bool:
            owned = [w.get("/readyz")[1] for w in workers]
            inputs = [
                [p for p in o.get("partitions", []) if p.split("/")[0] in TOPICS.inputs()]
                for o in owned
                if isinstance(o, dict)
            ]
            return len(inputs) == 2 and all(inputs) and len(inputs[0]) + len(inputs[1]) == 16

        wait_until(split, 90, "both workers to own input partitions")
        _produce(broker.bootstrap, hub_break)
        wait_until(
            lambda: _caught_up(summed(*(w.metrics() for w in workers)), expected),
            180,
            "the two workers to apply every event",
        )
        series = [w.metrics() for w in workers]
        assert summed(*series) == expected
        active = [s[("claimflow_detector_active", ())] for s in series]
        assert sorted(active) == [0.0, 1.0]
        owner, other = (first, second) if active[0] == 1.0 else (second, first)
        # IT asks either worker: the other one forwards to the owner of the detector state.
        assert other.get("/it/breaks") == owner.get("/it/breaks")
        assert owner.get("/it/breaks")[1]["episodes"]

        assert owner.stop() == 0
        live = wait_until(
            lambda: _when(other.metrics(), lambda s: engine_series(s) == expected),
            120,
            "the remaining worker to take over with the same state",
        )
        assert live[("claimflow_detector_active", ())] == 1.0
        assert _published(broker.bootstrap, ref_alerts) == [a.to_dict() for a in ref_alerts]
    finally:
        for w in workers:
            if w.process is not None and w.process.poll() is None:
                w.stop()


def test_worker_rides_out_a_broker_outage(
    broker: EmbeddedBroker, tmp_path: Path, config: Config, hub_break: list[bytes]
) -> None:
    """The broker stops answering for longer than the session timeout (SIGSTOP: the
    embedded broker keeps its data only in memory, so it cannot be restarted instead).
    The worker must stay up, rejoin, and end with the uninterrupted run's state and alerts."""
    engine, ref_alerts = reference(config, hub_break)
    expected = reference_series(engine)
    half = len(hub_break) // 2
    first_half, _ = reference(config, hub_break[:half])
    # On the persistent store, so that one runs end to end too.
    store = {"CLAIMFLOW_STORE": "rocksdb://", "CLAIMFLOW_DATA_DIR": str(tmp_path / "state")}
    worker = Worker(broker.bootstrap, tmp_path, env=store).start()
    try:
        _produce(broker.bootstrap, hub_break[:half])
        wait_until(
            lambda: _caught_up(worker.metrics(), reference_series(first_half)),
            120,
            "the first half to be applied",
        )
        assert broker.process is not None
        broker.process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(15)  # more than twice the 6 s session timeout
            assert worker.process is not None and worker.process.poll() is None
            assert worker.get("/healthz")[0] == 200
        finally:
            broker.process.send_signal(signal.SIGCONT)
        _produce(broker.bootstrap, hub_break[half:])
        live = wait_until(
            lambda: _when(worker.metrics(), lambda s: engine_series(s) == expected),
            180,
            "the worker to apply every event after the outage",
        )
        assert live[("claimflow_worker_errors_total", ())] == 0
        assert _published(broker.bootstrap, ref_alerts) == [a.to_dict() for a in ref_alerts]
        assert any((tmp_path / "state").rglob("*"))  # the tables lived on disk
    finally:
        worker.stop()
