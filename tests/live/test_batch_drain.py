"""The poll hand-over (streams/batch_drain.py) installs on the Faust consumer the worker runs
and on nothing else. What it does with records is tested end to end on the real broker:
tests/live/test_worker.py (`claimflow_ingest_batches_total{path="poll"}`, nothing through the
per-record path, same tables and alerts as replay, SIGKILL and restart, two workers)."""

from __future__ import annotations

from typing import Any

import faust

from claimflow.streams import batch_drain


def _app() -> Any:
    app = faust.App(
        "drain-test", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False
    )
    app.topic("inputs")
    return app


def test_it_installs_on_fausts_aiokafka_consumer_once() -> None:
    app = _app()
    queue = app.FlowControlQueue(maxsize=2, clear_on_resume=True)
    consumer = app.consumer
    original = consumer._drain_messages
    assert batch_drain.install(consumer, ["inputs"], queue)
    installed = consumer._drain_messages
    assert installed is not original
    assert batch_drain.install(consumer, ["inputs"], queue)  # a second time: a no-op
    assert consumer._drain_messages is installed


def test_a_consumer_without_what_it_relies_on_is_left_alone() -> None:
    class Elsewhere:  # another transport's consumer: no Faust internals to take over
        def _drain_messages(self, fetcher: Any) -> None:
            raise AssertionError("not called")

    other = Elsewhere()
    before = other._drain_messages
    assert not batch_drain.install(other, ["inputs"], object())
    assert other._drain_messages == before
