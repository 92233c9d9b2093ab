"""Item 7: records in claimflow's own topics that claimflow did not write are skipped and
counted, never fatal. Read back on the real embedded broker."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from faust.serializers import codecs
from kafka import KafkaProducer

from claimflow.config import Config
from claimflow.streams.log_reader import SEQ_HEADER, LogReader
from claimflow.streams.table_keys import TableKeyCodec
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import ensure_topics, make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import Worker, wait_until

pytestmark = pytest.mark.attack
ALERTS = "claimflow.alerts"
TOPICS = Topics()


@pytest.mark.live
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


CHANGELOG = "claimflow-detector-state-changelog"


def _applied(worker: Worker) -> float:
    series = worker.metrics()
    names = ("claimflow_events_total", "claimflow_rejected_events_total")
    return sum(v for (n, _), v in series.items() if n in names)


@pytest.mark.live
@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_changelog_records_with_keys_the_worker_never_writes_do_not_stop_take_over(
    broker: EmbeddedBroker, tmp_path: Path, config: Config, store: str
) -> None:
    if store == "rocksdb://":
        pytest.importorskip("rocksdict", reason="the rocksdb store needs rocksdict")
    env = {"CLAIMFLOW_STORE": store, "CLAIMFLOW_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 2, date(2026, 11, 2), 4, 200), out)
    lines = out.read_bytes().splitlines()
    half = len(lines) // 2
    producer = make_producer(broker.bootstrap)
    worker = Worker(broker.bootstrap, tmp_path, "before", env).start()
    try:
        produce(lines[:half], producer, TOPICS)
        producer.flush()
        wait_until(lambda: _applied(worker) >= half, 120, "the first half to be applied")
    finally:
        worker.stop()
    # Records the worker never writes, appended to its state table's changelog: a key that
    # is not JSON (the case), not text, JSON but not a string or not a snapshot's
    # name; no key at all (the rocksdb store refused it on every recovery attempt).
    raw = KafkaProducer(bootstrap_servers=broker.bootstrap, batch_size=1)
    foreign = [b"not json", b"\xff\xfe\x00", b'{"slot": 0}', b"42", b'"0/x"', None]
    for key in foreign:
        raw.send(CHANGELOG, key=key, value=b"x", partition=0)
        raw.flush()  # a record per request: the embedded broker miscounts batches
    raw.close()

    # Before: "Error in recovery ... unhashable type: 'dict'" every 5 s, never ready.
    worker = Worker(broker.bootstrap, tmp_path, "after", env)
    try:
        worker.start()
        produce(lines[half:], producer, TOPICS)
        producer.flush()
        producer.close()
        wait_until(lambda: _applied(worker) >= len(lines), 120, "every event to be applied")
        series = worker.metrics()
        # The snapshot written before is restored (none refused), every event counted once.
        assert _applied(worker) == len(lines)
        refused = [v for (n, _), v in series.items() if n == "claimflow_snapshot_refused_total"]
        assert not any(refused)
        assert series[("claimflow_foreign_records_skipped_total", ())] == len(foreign)
        assert "did not write (key b'not json')" in worker.log.read_text()
    finally:
        if worker.process is not None:
            worker.stop()


def test_the_table_key_codec_writes_what_json_writes_and_reads_anything() -> None:
    json_codec = codecs.get_codec("json")
    codec = TableKeyCodec()
    for key in ("manifest", "0/0", "1/12"):
        assert codec.dumps(key) == json_codec.dumps(key)
        assert codec.loads(codec.dumps(key)) == key
    odd = [b"", b"not json", b"\xff", b"[1, 2]", b'{"a": 1}', b"null", b'"manifest2"']
    names = [codec.loads(raw) for raw in odd + odd]
    assert all(isinstance(n, str) and n.startswith("foreign/") for n in names)
    assert len(set(names)) == len(odd) and codec.foreign == len(odd)  # each counted once
