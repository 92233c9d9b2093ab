"""Attack: configuration files a careless edit or a hostile hand produces.

Invalid UTF-8, binary content and deep nesting used to raise UnicodeDecodeError or
RecursionError out of the loaders: a traceback at start-up, and a crashed detector agent on a
roster reload. Every such file is now a ConfigError naming the file, the place and the
problem; a live reload keeps the last good version and counts the error, for the roster and
the agreements alike.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from claimflow.config import ConfigError, ConfigFile, load_config
from claimflow.staffing.roster import RosterFile, load_roster
from claimflow.streams.topics import Topics
from claimflow.timeutil import ManualClock
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import Worker, wait_until

pytestmark = pytest.mark.attack
DATA = resources.files("claimflow") / "data"
BAD_FILES = {
    "invalid-utf8": (b"teams:\n  - motor\n  - caf\xe9\n", "line 3: not UTF-8 text"),
    "binary": (os.urandom(64) + b"\x00" + os.urandom(64), None),
    "deep-flow": (b"teams: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper than 40"),
    "deep-block": (
        b"".join(b"  " * i + b"k:\n" for i in range(3000)) + b"  " * 3000 + b"v\n",
        "nested deeper than 40",
    ),
    "anchors": (b"a: &a [1]\nb: *a\nteams: *b\n", "not valid YAML"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_agreements_or_roster_file_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    content, expected = BAD_FILES[kind]
    config = load_config()
    for loader in ("agreements", "roster"):
        path = tmp_path / f"{loader}-{kind}.yaml"
        path.write_bytes(content)
        with pytest.raises(ConfigError) as error:
            if loader == "agreements":
                load_config(path)
            else:
                load_roster(path, config)
        message = str(error.value)
        assert message.startswith(f"{path}:"), message
        if expected is not None:
            assert expected in message, message
        assert len(message) < 2000


def test_reloads_keep_the_last_good_version_and_count_each_bad_one(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    agreements = tmp_path / "claimflow.yaml"
    roster = tmp_path / "staffing.yaml"
    agreements.write_bytes((DATA / "claimflow.yaml").read_bytes())
    roster.write_bytes((DATA / "staffing.yaml").read_bytes())
    config_file = ConfigFile(agreements, check_every=1, clock=clock)
    good = config_file.current()
    roster_file = RosterFile(roster, good, check_every=1, clock=clock)
    kept = roster_file.current()
    for n, (content, _) in enumerate(BAD_FILES.values(), 1):
        agreements.write_bytes(content)
        roster.write_bytes(content)
        os.utime(agreements, ns=(n * 10**9, n * 10**9))
        os.utime(roster, ns=(n * 10**9, n * 10**9))
        clock.advance(2)
        assert config_file.current() is good
        assert roster_file.current() is kept
        assert (config_file.errors, roster_file.errors) == (n, n)
    # A good file again is taken; an unchanged one is not reloaded.
    shutil.copyfile(DATA / "claimflow.yaml", agreements)
    clock.advance(2)
    assert config_file.current() == good and config_file.errors == len(BAD_FILES)


def _series(worker: Worker, name: str) -> float:
    return worker.metrics().get((name, ()), -1.0)


@pytest.mark.live
def test_the_live_worker_survives_bad_roster_and_agreements_reloads(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = load_config()
    agreements = tmp_path / "claimflow.yaml"
    roster = tmp_path / "staffing.yaml"
    shutil.copyfile(DATA / "claimflow.yaml", agreements)
    shutil.copyfile(DATA / "staffing.yaml", roster)
    out = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 2, date(2026, 11, 2), 5, 150), out)
    lines = out.read_bytes().splitlines()
    third = len(lines) // 3
    producer = make_producer(broker.bootstrap)
    env = {
        "CLAIMFLOW_CONFIG": str(agreements),
        "CLAIMFLOW_STAFFING": str(roster),
        "CLAIMFLOW_STAFFING_CHECK_EVERY": "0.5",
        "CLAIMFLOW_CONFIG_CHECK_EVERY": "0.5",
    }
    worker = Worker(broker.bootstrap, tmp_path, env=env).start()

    def applied() -> float:
        series = worker.metrics()
        return sum(
            v
            for (n, _), v in series.items()
            if n in ("claimflow_events_total", "claimflow_rejected_events_total")
        )

    try:
        produce(lines[:third], producer, Topics())
        producer.flush()
        wait_until(lambda: applied() >= third, 120, "the first third")
        roster.write_bytes(BAD_FILES["invalid-utf8"][0])
        wait_until(
            lambda: _series(worker, "claimflow_roster_reload_errors_total") == 1,
            60,
            "the invalid roster to be counted",
        )
        roster.write_bytes(BAD_FILES["deep-flow"][0])
        wait_until(
            lambda: _series(worker, "claimflow_roster_reload_errors_total") == 2,
            60,
            "the deep roster to be counted",
        )
        agreements.write_bytes(BAD_FILES["binary"][0])
        wait_until(
            lambda: _series(worker, "claimflow_config_reload_errors_total") == 1,
            60,
            "the binary agreements to be counted",
        )
        agreements.write_bytes(BAD_FILES["deep-block"][0])
        wait_until(
            lambda: _series(worker, "claimflow_config_reload_errors_total") == 2,
            60,
            "the deep agreements to be counted",
        )
        produce(lines[third:], producer, Topics())
        producer.flush()
        producer.close()
        # The detector agent is alive and judges every event with the last good files.
        wait_until(lambda: applied() >= len(lines), 120, "every event to be applied")
        assert worker.process is not None and worker.process.poll() is None
        text = worker.log.read_text()
        assert f"{roster}: line 3: not UTF-8 text" in text
        assert "Traceback" not in text
        # A good file again, with one threshold changed: applied by a rebuild from the log,
        # which counts every event once again.
        changed = (DATA / "claimflow.yaml").read_text() + (
            "detectors:\n  sla_at_risk:\n    min_misses: 6\n"
        )
        agreements.write_text(changed)
        wait_until(
            lambda: "changed: applying them" in worker.log.read_text(),
            60,
            "the new agreements to be applied",
        )
        wait_until(lambda: applied() == len(lines), 120, "the rebuild with the new agreements")
        assert "configuration changed since the snapshot" in worker.log.read_text()
        assert _series(worker, "claimflow_config_reload_errors_total") == 2
    finally:
        worker.stop()


@pytest.mark.parametrize("kind", ["binary", "deep-flow", "invalid-utf8"])
def test_the_worker_refuses_a_bad_agreements_file_at_start_without_a_traceback(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "claimflow.yaml"
    path.write_bytes(BAD_FILES[kind][0])
    done = subprocess.run(
        [sys.executable, "-m", "claimflow.cli", "worker"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CLAIMFLOW_CONFIG": str(path)},
    )
    assert done.returncode != 0
    assert f"{path}:" in done.stderr
    assert "Traceback" not in done.stderr
