"""The harness leaves nothing running when a live test fails half-way (tests/processes.py).

A small test file is run by its own pytest, as a user runs the suite: it starts a real
broker and a real worker through the harness, a process with a child, and a process whose
parent has already exited (an orphan), notes their PIDs, and fails before any clean-up of
its own. Afterwards none of those PIDs may still run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import alive, become_subreaper, descendants, stop, terminate

pytestmark = pytest.mark.live  # a real broker, worker, Prometheus, Alertmanager or Chromium

ROOT = Path(__file__).resolve().parents[2]

FAILING = """
import json
import os
import subprocess
import time
from pathlib import Path

from claimflow.tools.broker import EmbeddedBroker
from tests.live_harness import Worker
from tests.processes import alive, descendants


def test_fails_with_everything_running(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log=tmp_path / "broker.log").start()  # no `with`, no `finally`
    worker = Worker(broker.bootstrap, tmp_path).start()
    family = subprocess.Popen(["sh", "-c", "sleep 600 & sleep 600"])
    # sh forks its two sleeps a moment after it starts (longer on a loaded machine, with the
    # suite on several processes): note the family once both are there.
    deadline = time.monotonic() + 30
    while len(descendants(family.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    orphaner = subprocess.run(
        ["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
    )
    pids = {
        "broker": [broker.pid],
        "worker": [worker.process.pid, *descendants(worker.process.pid)],
        "family": [family.pid, *descendants(family.pid)],
        "orphan": [int(orphaner.stdout)],
    }
    Path(os.environ["PIDS_FILE"]).write_text(json.dumps(pids))
    assert all(alive(pid) for group in pids.values() for pid in group)
    assert False, "a live test that fails half-way, its processes running"
"""


def test_a_failed_live_test_leaves_no_process_behind(tmp_path: Path) -> None:
    become_subreaper()  # should the inner pytest itself die, its orphans come to us
    (tmp_path / "test_fails.py").write_text(FAILING)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    pids_file = tmp_path / "pids.json"
    inner = subprocess.Popen(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.processes", "-p", "no:cacheprovider"),
            *("-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-q"),
            str(tmp_path / "test_fails.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "PIDS_FILE": str(pids_file)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = inner.communicate(timeout=180)
    finally:
        below = descendants(inner.pid)
        stop(inner, timeout=1)
    pids = json.loads(pids_file.read_text())
    started = [pid for group in pids.values() for pid in group]
    left = [pid for pid in started if alive(pid)]
    terminate(left + below)
    assert inner.returncode == 1, output  # the one test failed, the run did not crash
    assert "1 failed" in output
    assert "a live test that fails half-way" in output
    assert len(pids["family"]) == 3  # sh and its two sleeps
    assert left == [], (left, output)
    assert "the test left processes running; stopped them" in output
