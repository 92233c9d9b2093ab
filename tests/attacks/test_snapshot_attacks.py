"""Attack: run code or plant state through the detector-state changelog.

Snapshots used to be pickles, and a crafted changelog record ran a shell command on
take-over. Now they are data (claimflow/live/state_codec.py) with a digest or HMAC: a crafted
record is refused, counted (`claimflow_snapshot_refused_total{reason}`) and the state is
rebuilt from the sequenced log. A restored state continues exactly as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zlib
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry, generate_latest

from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.contract.rejections import Rejection
from claimflow.live import snapshots, state_codec
from claimflow.live.envelopes import Forwarded, Progress
from claimflow.live.live_engine import LiveEngine, LiveSettings
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from claimflow.views.metrics import EngineCollector
from tests.live_harness import Worker, wait_until

pytestmark = pytest.mark.attack
TOPICS = Topics()
INPUTS = TOPICS.inputs()
CHANGELOG = "claimflow-detector-state-changelog"


class _Payload:
    """What an attacker puts in a pickle: unpickling calls os.system(command)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def _pickle_snapshot(marker: Path, fmt: int) -> dict[bytes, bytes]:
    """Changelog records (key -> value) of a snapshot whose state is a malicious pickle,
    with a manifest that passes every check an attacker without the key can satisfy."""
    blob = zlib.compress(pickle.dumps(_Payload(f"touch {marker}")))
    manifest: dict[str, Any] = {
        "format": fmt,
        "slot": 0,
        "chunks": 1,
        "size": len(blob),
        "label": "sequenced offset 1",
    }
    head = json.dumps([fmt, 0, 1, len(blob), manifest["label"]], separators=(",", ":")).encode()
    manifest["algorithm"] = "sha256"
    manifest["digest"] = hashlib.sha256(head + b"\n" + blob).hexdigest()
    return {b'"0/0"': blob, b'"manifest"': json.dumps(manifest).encode()}


def test_a_pickle_in_a_store_is_never_unpickled(tmp_path: Path) -> None:
    for fmt in (2, 3):
        marker = tmp_path / f"pwned-{fmt}"
        store = {json.loads(k): v for k, v in _pickle_snapshot(marker, fmt).items()}
        with pytest.raises(snapshots.SnapshotError) as refused:
            snapshots.load(store)
        assert refused.value.reason == ("format" if fmt == 2 else "content")
        assert not marker.exists()
    # The payload does work when unpickled: the test would see it.
    pickle.loads(zlib.decompress(_pickle_snapshot(tmp_path / "control", 3)[b'"0/0"']))
    assert (tmp_path / "control").exists()


def test_data_naming_a_class_outside_the_allow_list_is_refused() -> None:
    for name in ("subprocess:Popen", "os:system", "builtins:eval", "claimflow.broker:Broker"):
        tree = ["O", 0, name, [["args", ["L", 1, ["touch", "/tmp/x"]]]]]
        with pytest.raises(state_codec.StateCodecError, match="not a class"):
            state_codec.decode(msgspec.msgpack.encode(tree))
    # A struct with fields this version does not have.
    tree = ["O", 0, "claimflow.sequencer:Output", [["kind", "alert"], ["evil", 1]]]
    with pytest.raises(state_codec.StateCodecError, match="fields"):
        state_codec.decode(msgspec.msgpack.encode(tree))
    with pytest.raises(state_codec.StateCodecError):
        state_codec.decode(b"\xc1 not msgpack")


def test_with_a_key_a_forged_or_unsigned_snapshot_is_refused() -> None:
    store: dict[str, bytes] = {}
    key = b"k" * 32
    snapshots.save(store, {"open": [1, 2, 3]}, "offset 3", key=key)
    assert snapshots.load(store, key)[0] == {"open": [1, 2, 3]}  # type: ignore[index]
    with pytest.raises(snapshots.SnapshotError) as wrong:
        snapshots.load(store, b"x" * 32)
    assert wrong.value.reason == "integrity"
    unsigned: dict[str, bytes] = {}
    snapshots.save(unsigned, {"open": []}, "offset 1")  # what a forger without the key writes
    with pytest.raises(snapshots.SnapshotError) as forged:
        snapshots.load(unsigned, key)
    assert forged.value.reason == "unsigned"
    # One flipped byte in a chunk.
    chunk = bytearray(store["1/0"] if "1/0" in store else store["0/0"])
    chunk[len(chunk) // 2] ^= 1
    store["0/0"] = bytes(chunk)
    with pytest.raises(snapshots.SnapshotError) as damaged:
        snapshots.load(store, key)
    assert damaged.value.reason == "integrity"


def _envelopes(lines: list[bytes]) -> list[Any]:
    """The scenario as the sequenced topic carries it: one partition per input topic, in
    order, with a progress report every 500 records saying each partition is caught up."""
    offsets: dict[str, int] = dict.fromkeys(INPUTS, 0)
    out: list[Any] = []
    for i, line in enumerate(lines):
        topic = TOPICS.for_event(json.loads(line)["type"])
        event = decode(line, INPUTS[topic])
        assert not isinstance(event, Rejection)
        wall = 1000.0 + i * 0.001
        out.append(Forwarded(topic, 0, offsets[topic], wall, line, time=event.time.timestamp()))
        offsets[topic] += 1
        if i % 500 == 499 or i == len(lines) - 1:
            done = tuple((t, 0, offsets[t], True) for t in INPUTS)
            out.append(Progress(wall + 5, dict.fromkeys(INPUTS, 1), done))
    return out


def _series(engine: Any) -> bytes:
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: [engine]))
    return generate_latest(registry)


@pytest.mark.slow
def test_a_restored_state_continues_exactly_like_an_uninterrupted_run(
    config: Config, scenario: Any
) -> None:
    lines = Path(scenario("hub-break", 10, 1).events).read_bytes().splitlines()
    envelopes = _envelopes(lines)
    settings = LiveSettings(idle_after=2.0, max_hold=30.0, idle_clock_after=60.0)
    whole = LiveEngine(config, INPUTS, settings)
    whole.merge.expect(dict.fromkeys(INPUTS, 1))
    cut = len(envelopes) * 2 // 3
    for i, envelope in enumerate(envelopes[:cut]):
        whole.take(i, envelope)
    store: dict[str, bytes] = {}
    info = snapshots.save(store, whole, f"sequenced offset {cut}", key=b"s" * 32)
    assert info.chunks >= 1
    restored, _ = snapshots.load(store, key=b"s" * 32)  # type: ignore[misc]
    assert isinstance(restored, LiveEngine)
    fresh = LiveEngine(config, INPUTS, settings)
    assert state_codec.shape_difference(restored, fresh) is None
    # The detectors still share one alert book after the restore.
    assert restored.engine.links.book is restored.engine.book is restored.engine.backlog.book
    rest_whole = [o for i, e in enumerate(envelopes[cut:], cut) for o in whole.take(i, e)]
    rest_restored = [o for i, e in enumerate(envelopes[cut:], cut) for o in restored.take(i, e)]
    assert sum(whole.engine.accepted.values()) > len(lines) * 0.9
    assert any(o.kind == "alert" for o in rest_whole)  # the break comes after the cut
    assert rest_restored == rest_whole
    assert _series(restored.engine) == _series(whole.engine)


def _applied(worker: Worker) -> float:
    series = worker.metrics()
    return sum(
        v
        for (n, _), v in series.items()
        if n in ("claimflow_events_total", "claimflow_rejected_events_total")
    )


@pytest.mark.live
def test_a_crafted_changelog_record_does_not_run_on_take_over(
    broker: EmbeddedBroker, tmp_path: Path, config: Config
) -> None:
    out = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 2, date(2026, 11, 2), 4, 200), out)
    lines = out.read_bytes().splitlines()
    half = len(lines) // 2
    producer = make_producer(broker.bootstrap)
    worker = Worker(broker.bootstrap, tmp_path, name="before").start()
    try:
        produce(lines[:half], producer, TOPICS)
        producer.flush()
        wait_until(lambda: _applied(worker) >= half, 120, "the first half to be applied")
    finally:
        worker.stop()
    # The attacker appends a snapshot to the compacted changelog: the latest one wins.
    marker = tmp_path / "pwned"
    raw = KafkaProducer(bootstrap_servers=broker.bootstrap, batch_size=1)
    # Format 2 is what the pickle-reading version accepted: there, this ran the command.
    for key, value in _pickle_snapshot(marker, 2).items():
        raw.send(CHANGELOG, key=key, value=value, partition=0)
        raw.flush()  # a record per request: the embedded broker miscounts batches
    raw.close()

    worker = Worker(broker.bootstrap, tmp_path, name="after").start()
    try:
        produce(lines[half:], producer, TOPICS)
        producer.flush()
        producer.close()
        wait_until(lambda: _applied(worker) >= len(lines), 120, "every event to be applied")
        series = worker.metrics()
        assert not marker.exists()
        assert series[("claimflow_snapshot_refused_total", (("reason", "format"),))] == 1
        # Rebuilt from the sequenced log: every event of both halves counted once.
        assert _applied(worker) == len(lines)
        assert "snapshot format 2, this version reads 3" in worker.log.read_text()
    finally:
        worker.stop()
