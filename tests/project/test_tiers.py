"""The `live` mark's safety nets (tests/tiers.py), run in a pytest of their own.

A small test file uses a stand-in `promtool` (a shell script of that name on PATH: what counts
is the program a test starts) and is run by its own pytest with the hooks loaded, as
tests/conftest.py loads them: an unmarked test that starts it fails saying how to mark it, a
marked one passes, and so does one that starts an ordinary program; a test that uses a
module fixture which started it fails too, not only the first; a test that uses a `broker`
fixture is marked live and so left out by `-m "not live"`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiers import live_program

ROOT = Path(__file__).resolve().parents[2]

INNER = """
import subprocess

import pytest


def test_unmarked():
    subprocess.run(["promtool", "check", "metrics"], check=True)


@pytest.mark.live
def test_marked():
    subprocess.run(["promtool", "check", "metrics"], check=True)


def test_offline():
    subprocess.run(["true"], check=True)


@pytest.fixture(scope="module")
def service():
    subprocess.run(["promtool", "check", "config"], check=True)


@pytest.mark.live
def test_first_user(service):
    pass


def test_second_user(service):
    pass


@pytest.fixture
def broker():
    return "a broker"


def test_uses_the_broker_fixture(broker):
    pass
"""


def _inner(tmp_path: Path, *args: str) -> str:
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    live: live\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "promtool").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "promtool").chmod(0o755)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.tiers", "-p", "no:cacheprovider"),
            *("-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-rA", "-v"),
            *(*args, str(tmp_path / "test_inner.py")),
        ],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def test_an_unmarked_test_that_starts_a_live_program_fails_saying_how_to_mark_it(
    tmp_path: Path,
) -> None:
    output = _inner(tmp_path)
    assert "test_inner.py::test_unmarked FAILED" in output, output
    assert "test_inner.py::test_unmarked is not marked live but started promtool" in output
    assert "Mark it `@pytest.mark.live`" in output
    assert "test_inner.py::test_second_user FAILED" in output, output
    assert "through the fixture `service`" in output
    for passed in ("test_marked", "test_offline", "test_first_user"):
        assert f"test_inner.py::{passed} PASSED" in output, output
    assert "2 failed, 4 passed" in output, output


def test_the_broker_fixture_makes_a_test_live(tmp_path: Path) -> None:
    output = _inner(tmp_path, "-m", "not live")
    assert "test_uses_the_broker_fixture" not in output.split("short test summary")[0], output
    assert "3 deselected" in output, output  # test_marked, test_first_user, the broker's


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["/root/.calfkit/bin/tansu-v0.6.0-510f3e2", "broker"], "the embedded broker (Tansu)"),
        (["/usr/bin/prometheus-alertmanager", "--config.file=x"], "Alertmanager"),
        (["amtool", "check-config", "x"], "amtool (Alertmanager)"),
        (["chromium", "--headless"], "Chromium"),
        ([sys.executable, "-m", "claimflow.cli", "demo", "--speed", "0"], "`claimflow demo`"),
        (["/venv/bin/claimflow", "broker", "--port", "1"], "`claimflow broker`"),
        ("promtool check metrics", "promtool (Prometheus)"),
        ([sys.executable, "-m", "claimflow.cli", "replay", "--input", "x"], None),
        ([sys.executable, "-m", "claimflow.cli", "worker"], None),  # a start-up check
        (["kubectl", "kustomize", "deploy"], None),
        ([sys.executable, "-m", "pytest", "-p", "tests.tiers"], None),
    ],
)
def test_which_programs_make_a_test_live(argv: list[str] | str, what: str | None) -> None:
    found = live_program(argv)
    if what is None:
        assert found is None
    else:
        assert found is not None and found.startswith(what)
