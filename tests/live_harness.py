"""Running real `claimflow worker` processes against the embedded broker, for the live tests.

Nothing here imitates Kafka or Faust: workers are separate processes started the way a user
starts them, read through their web port and the topics they write.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.engine import Alert, Engine
from claimflow.engine.feed import feed
from claimflow.tools.broker import free_port
from claimflow.views.metrics import EngineCollector
from tests.processes import alive, stop  # noqa: F401 (alive: tests import it from here)

CLI = [sys.executable, "-m", "claimflow.cli"]
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
# Per-worker figures, not engine state: left out when comparing with a reference engine.
WORKER_ONLY = (
    "claimflow_detector_active",
    "claimflow_input_lag_messages",
    "claimflow_ingest_seconds",
    "claimflow_ingest_batches",
    "claimflow_input_pause",  # alignment: claimflow_input_paused_partitions, _pauses_total
    "claimflow_worker_errors",
    "claimflow_merge_",
    "claimflow_snapshot_bytes",
    "claimflow_broker_resets",
    "claimflow_produce_retries",
    "claimflow_foreign_records_skipped",
    "claimflow_input_gap_records",
    "claimflow_snapshot_refused",
    "claimflow_config_reload_errors",
    # What every service exports about itself (metrics.register_service_metrics).
    "claimflow_build_info",
    "process_",
    "python_",
)


def tool(*names: str) -> str:
    """The first of `names` on PATH; the test is skipped, saying why, when none is."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.skip(f"{names[0]} is not installed (.ci/run installs it)")


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Worker:
    bootstrap: str
    folder: Path
    name: str = "w1"
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self) -> Worker:
        env = {
            **os.environ,
            "CLAIMFLOW_BOOTSTRAP": self.bootstrap,
            "CLAIMFLOW_WEB_PORT": str(self.port),
            "CLAIMFLOW_SESSION_TIMEOUT": "6",
            "CLAIMFLOW_IDLE_CLOCK_AFTER": "0",  # replayed history: no wall-clock advance
            # ... produced far faster than real time: the merge must hold for the producer's
            # reordering across partitions, in wall time (claimflow/tools/demo.py says why).
            "CLAIMFLOW_IDLE_AFTER": "2",
            "CLAIMFLOW_SNAPSHOT_EVERY": "2",
            "CLAIMFLOW_LOG_LEVEL": "info",
            **self.env,
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*CLI, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_until(self.ready, 60, f"worker {self.name} to be ready ({self.log})")
        except BaseException:
            # The caller's `try`/`finally` has not begun: a worker that never got ready
            # would otherwise run on after the failed test.
            stop(self.process, signal.SIGKILL)
            raise
        return self

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                body = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        text = body.decode()
        return status, json.loads(text) if text.startswith(("{", "[")) else text

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited: {self.log.read_text()[-3000:]}")
        try:
            status, _ = self.get("/readyz")
        except (OSError, ValueError, http.client.HTTPException):
            # HTTPException: polled before anything listens, a connection to a port in the
            # ephemeral range can be the socket's own (a TCP self-connect): it reads back
            # its own request (BadStatusLine). Not ready yet; the next poll asks again.
            return False
        return status == 200

    def metrics(self) -> Series:
        _, text = self.get("/metrics")
        return parse_metrics(text)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` and wait for the exit code; a worker that has not stopped after
        `timeout` seconds is killed (with anything it started) and the test fails."""
        assert self.process is not None
        code = stop(self.process, sig, timeout)
        if code is None:
            raise AssertionError(f"worker {self.name} did not stop in {timeout:.0f}s; killed")
        return code


def parse_metrics(text: str) -> Series:
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series


def engine_series(series: Series) -> Series:
    return {k: v for k, v in series.items() if not k[0].startswith(WORKER_ONLY)}


def summed(*workers: Series) -> Series:
    """Series of several workers combined the way Prometheus `sum by` would add them."""
    out: Series = {}
    for series in workers:
        for key, value in engine_series(series).items():
            out[key] = out.get(key, 0.0) + value
    return out


def reference(config: Config, lines: Iterable[bytes]) -> tuple[Engine, list[Alert]]:
    """An uninterrupted in-process run over the same events, left unfinished like a live
    engine (no end-of-input flush): its state is what the worker must end with."""
    engine = Engine(config)
    alerts: list[Alert] = []
    for line in lines:
        feed(engine, decode(line))
        alerts.extend(engine.drain_alerts())
    return engine, alerts


def reference_series(engine: Engine) -> Series:
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: [engine]))
    return engine_series(parse_metrics(generate_latest(registry).decode()))


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`, partition by partition, in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records: list[Any] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


@dataclass
class TakeoverRun:
    """One two-worker run where the worker running the detectors is SIGKILLed mid-flow."""

    expected: int  # events the reference run accepted
    applied: int  # events the survivor's engine accepted in the end
    recovered: int  # input records the survivor re-read to fill offset gaps
    lost: int  # input records the survivor counted as lost
    seconds: float  # from the kill to every event applied (or the timeout)

    @property
    def missing(self) -> int:
        return self.expected - self.applied


def takeover_run(
    bootstrap: str,
    folder: Path,
    config: Config,
    lines: list[bytes],
    produce_lines: Callable[[str, list[bytes]], None],
    timeout: float = 240,
) -> TakeoverRun:
    """Two workers share the input partitions; while events flow, SIGKILL the one that owns
    the sequenced partition; wait for the survivor to take over and apply everything."""
    import threading

    engine, _ = reference(config, lines)
    expected = int(sum(engine.accepted.values()))
    workers = [Worker(bootstrap, folder, "first").start(), Worker(bootstrap, folder, "second")]
    workers[1].start()

    def applied(series: Series) -> int:
        return int(sum(v for k, v in series.items() if k[0] == "claimflow_events_total"))

    def owner() -> Worker | None:
        for w in workers:
            if w.metrics().get(("claimflow_detector_active", ()), 0) == 1:
                return w
        return None

    producing = threading.Thread(target=produce_lines, args=(bootstrap, lines))
    producing.start()
    try:
        victim = wait_until(
            lambda: (w := owner()) is not None and applied(w.metrics()) >= expected * 0.3 and w,
            180,
            "the detector worker to apply 30% of the events",
        )
        victim.stop(signal.SIGKILL)
        killed = time.monotonic()
        survivor = workers[1] if victim is workers[0] else workers[0]
        series: Series = {}

        def done() -> bool:
            nonlocal series
            try:
                series = survivor.metrics()
            except (OSError, ValueError, http.client.HTTPException):
                return False
            return applied(series) >= expected

        with contextlib.suppress(AssertionError):  # reported as missing
            wait_until(done, timeout, "the survivor to apply every event")
        gap = {
            dict(labels).get("outcome"): v
            for (name, labels), v in series.items()
            if name == "claimflow_input_gap_records_total"
        }
        return TakeoverRun(
            expected,
            applied(series),
            int(gap.get("recovered", 0)),
            int(gap.get("lost", 0)),
            time.monotonic() - killed,
        )
    finally:
        producing.join()
        for w in workers:
            if w.process is not None:
                stop(w.process)  # never raises: the second is stopped even if the first hangs
