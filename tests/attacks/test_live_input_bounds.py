"""Items 3 and 5 on a real `claimflow worker` and the embedded broker: one record dated
ahead, or one very large record, must neither blind the detectors nor vanish."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.contract.rejections import Rejection
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import Worker, read_topic, reference, reference_series, wait_until

pytestmark = [pytest.mark.attack, pytest.mark.live]
TOPICS = Topics()
MB = 1024 * 1024


def _dated_ahead(line: bytes, days: float) -> bytes:
    """A copy of a real arrival, dated `days` ahead of the wall clock, with a fresh id."""
    event = json.loads(line)
    at = datetime.now(UTC) + timedelta(days=days)
    event["arrived_at"] = at.isoformat().replace("+00:00", "Z")
    event["event_id"] = "a-ahead-1"
    return json.dumps(event).encode()


def _judged(series: dict[Any, float]) -> float:
    """Events the engine accepted or refused."""
    names = ("claimflow_events_total", "claimflow_rejected_events_total")
    return sum(v for k, v in series.items() if k[0] in names)


def _events_total(series: dict[Any, float]) -> dict[Any, float]:
    return {k: v for k, v in series.items() if k[0] == "claimflow_events_total"}


def test_an_event_dated_ahead_and_oversized_records_are_refused_not_obeyed(
    broker: EmbeddedBroker, tmp_path: Path, config: Config
) -> None:
    events = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 2, date(2026, 11, 2), 1, 800), events)
    lines = events.read_bytes().splitlines()
    arrival = next(line for line in lines if b'"claim_arrived"' in line)
    survey = json.loads(next(line for line in lines if b'"survey_response"' in line))
    survey["event_id"] = "s-huge"
    huge = b"{" + b" " * (3 * MB // 2) + json.dumps(survey).encode()[1:]  # valid, 1.5 MB
    assert not isinstance(decode(huge), Rejection)
    broken = b"{" + b"y" * (600 * 1024)  # 600 KB that is not JSON

    worker = Worker(broker.bootstrap, tmp_path).start()
    try:
        producer = make_producer(broker.bootstrap, max_request_size=4 * MB)
        # The very first event the worker sees is the outlier: nothing came before it to
        # compare with, only the wall clock that read it.
        ahead = _dated_ahead(arrival, 20)
        producer.send(TOPICS.claim_arrived, key=b"ahead", value=ahead).get(timeout=30)
        wait_until(lambda: _judged(worker.metrics()) == 1, 60, "the outlier to be judged")
        producer.send(TOPICS.survey_response, key=b"huge", value=huge).get(timeout=30)
        producer.send(TOPICS.survey_response, key=b"broken", value=broken).get(timeout=30)
        produce(lines, producer, TOPICS)
        producer.flush()
        producer.close()

        engine, _ = reference(config, lines)
        expected = _events_total(reference_series(engine))
        wait_until(
            lambda: _events_total(worker.metrics()) == expected,
            180,
            "every real event applied (none refused as late behind the outlier)",
        )
        time.sleep(2)  # let the dead letters land
        letters = [json.loads(r.value) for r in read_topic(broker.bootstrap, TOPICS.deadletter)]
        by_reason = Counter(d["reason"] for d in letters)
        assert by_reason == {"future_timestamp": 1, "too_large": 2}, by_reason
        (future,) = [d for d in letters if d["reason"] == "future_timestamp"]
        assert future["original"] == ahead.decode()
        large = {d["original_size"]: d for d in letters if d["reason"] == "too_large"}
        assert set(large) == {len(huge), len(broken)}
        for raw in (huge, broken):
            letter = large[len(raw)]
            assert letter["original_truncated"] is True
            assert letter["original_sha256"] == hashlib.sha256(raw).hexdigest()
            assert raw.startswith(letter["original"].encode())
        assert all(len(r.value) < MB for r in read_topic(broker.bootstrap, TOPICS.deadletter))
        rejected = {
            dict(labels)["reason"]: v
            for (name, labels), v in worker.metrics().items()
            if name == "claimflow_rejected_events_total"
        }
        assert rejected == {"future_timestamp": 1, "too_large": 2}
        assert worker.process is not None and worker.process.poll() is None
    finally:
        worker.stop()
