"""`claimflow worker` and `claimflow demo` stop on SIGINT and SIGTERM, with what they started,
also when started with SIGINT ignored (as a shell starts a background job: Python then
installs no KeyboardInterrupt handler, and before `cli._stop_on_signals` a `kill -INT` during
start-up was lost and the demo went on to start its broker and worker).

Each signal is sent at a point the process announces, not after a delay: the worker's first
log line (before Faust runs), its web server answering (Faust's handlers are installed by
then), the demo's first line (generating history, before its broker starts), and the demo's
ready lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from claimflow.tools.broker import EmbeddedBroker, free_port
from tests.live_harness import CLI, wait_until
from tests.processes import alive, descendants, stop

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

# An interrupted Python exits 130 from `cli.main`; CPython reports a death by SIGINT (-2)
# instead when the KeyboardInterrupt was raised inside code it ran through `exec` (as
# dataclasses do at import), even though `main` caught it. Both mean "stopped by the signal".
INTERRUPTED = (130, -signal.SIGINT)


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Started the way a shell starts a background job: SIGINT ignored across exec."""
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with log.open("wb") as out:
            return subprocess.Popen(
                [*CLI, *args], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
            )
    finally:
        signal.signal(signal.SIGINT, ignored)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def _stopped(process: subprocess.Popen[bytes], sig: int, log: Path) -> int:
    """Send `sig`; the exit code (the test fails, after killing it, if it does not stop)."""
    process.send_signal(sig)
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        stop(process, signal.SIGKILL)
        raise AssertionError(f"did not stop on signal {sig}: {log.read_text()[-1500:]}") from None


def test_worker_stops_on_sigint_during_start_up_and_once_running(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = {"CLAIMFLOW_BOOTSTRAP": broker.bootstrap, "CLAIMFLOW_SESSION_TIMEOUT": "6"}
    log = tmp_path / "starting.log"
    worker = _start(["worker", "--web-port", str(free_port())], log, env)
    wait_until(lambda: "created topics" in log.read_text(), 60, f"the topics ({log})", 0.05)
    assert _stopped(worker, signal.SIGINT, log) in INTERRUPTED

    port = free_port()
    log = tmp_path / "running.log"
    worker = _start(["worker", "--web-port", str(port)], log, env)
    # Faust installs its signal handlers before it starts its web server: once /metrics
    # answers, SIGINT is Faust's (a clean stop, exit 0), not the start-up handler's (130).
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/metrics"), 90, f"the worker ({log})")
    assert _stopped(worker, signal.SIGINT, log) == 0


def test_demo_stops_on_sigint_before_its_broker_starts(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    demo = _start(["demo", "--speed", "0", "--web-port", str(free_port())], log, {})
    wait_until(lambda: "generating" in log.read_text(), 60, f"the demo to start ({log})", 0.05)
    assert _stopped(demo, signal.SIGINT, log) in INTERRUPTED
    assert "broker" not in log.read_text()  # it stopped before starting anything


def test_demo_stops_its_broker_and_worker_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    demo = _start(
        ["demo", "--speed", "0", "--claims-per-day", "300", "--web-port", str(free_port())],
        log,
        {},
    )
    wait_until(lambda: "wall page" in log.read_text(), 120, f"the demo to be ready ({log})")
    started = descendants(demo.pid)
    assert len(started) >= 2  # the broker and the worker
    assert _stopped(demo, signal.SIGTERM, log) == 0
    assert "nothing left running" in log.read_text()
    assert [pid for pid in started if alive(pid)] == []
