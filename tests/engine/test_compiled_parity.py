"""The compiled engine (mypyc, setup.py) shows users exactly what its plain-Python sources show.

mypyc runs the same sources, but trusts their annotations: a value annotated `float` is a C
double, so an int that plain Python would print as `448` comes out as `448.0`. This replays a
multi-week scenario, with bad lines mixed in, through the installed (compiled) engine in this
process and through a copy of the package's plain `.py` files in a subprocess, and compares
every alert, refused line, /metrics scrape and IT view byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import claimflow
from claimflow import _compiled
from claimflow.config import Config
from tests.parity_dump import dump, resume, write_snapshot

HERE = Path(__file__).resolve().parents[1]  # tests/


def _compiled_engine() -> bool:
    import claimflow.engine  # noqa: F401 (imported for _compiled.running)

    return _compiled.running() != "pure Python"


def _with_bad_lines(source: Path, target: Path) -> None:
    """The scenario with what a replay refuses mixed in: garbage, a duplicate, a late event
    (its own id, dated at the start of the stream) and one dated far ahead."""
    lines = source.read_bytes().splitlines()
    first = lines[0]
    late = first.replace(b'"event_id":"', b'"event_id":"late-', 1)
    ahead = (
        lines[200]
        .replace(b'"event_id":"', b'"event_id":"ahead-', 1)
        .replace(b'"2026-11-', b'"2027-11-')
    )
    at = len(lines) // 2
    lines[at:at] = [b"{not json", lines[at - 10], late, b'{"type": "claim_arrived"}', ahead]
    target.write_bytes(b"\n".join(lines) + b"\n")


def _pure_copy(target: Path) -> Path:
    """The installed package's plain sources: its `.py` files, no compiled extensions. The
    top-level sub-packages of a source checkout (agents/, streams/, dashboards/) are not
    needed by a replay; the editable install still finds them if anything asks."""
    package = Path(claimflow.__file__).resolve().parent
    shutil.copytree(
        package, target / "claimflow", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__")
    )
    return target


@pytest.mark.slow
def test_compiled_and_pure_engines_show_the_same(scenario, config: Config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if not _compiled_engine():
        pytest.skip(
            "the engine is installed as plain Python (CLAIMFLOW_PURE_PYTHON=1, or no compiled "
            "build): both sides would run the same code"
        )
    events = tmp_path / "events.jsonl"
    _with_bad_lines(scenario("mixed").events, events)

    pure = _pure_copy(tmp_path / "pure")
    out = tmp_path / "pure.txt"
    done = subprocess.run(
        [sys.executable, str(HERE / "parity_dump.py"), str(events), str(out)],
        env={**os.environ, "PYTHONPATH": str(pure)},
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert done.stderr.decode().strip().endswith("pure Python"), done.stderr.decode()[-500:]

    compiled = dump(events)
    assert "refused line" in compiled and "InflowDrop" in compiled  # the run covers both
    pure_text = out.read_text()
    if compiled != pure_text:
        (tmp_path / "compiled.txt").write_text(compiled)
        differing = [
            (a, b)
            for a, b in zip(compiled.splitlines(), pure_text.splitlines(), strict=False)
            if a != b
        ]
        pytest.fail(
            f"compiled and pure replays differ in {len(differing)} lines; first:\n"
            f"compiled: {differing[0][0] if differing else '(length)'}\n"
            f"pure:     {differing[0][1] if differing else '(length)'}\n"
            f"(both in {tmp_path})"
        )


def test_version_says_which_engine_runs() -> None:
    """`claimflow --version` names the build, compiled or pure, as the import system would
    pick it (an extension next to its source wins)."""
    done = subprocess.run(
        [sys.executable, "-m", "claimflow.cli", "--version"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = "compiled (mypyc)" if _compiled.compiled_on_disk() else "pure Python"
    assert done.stdout.decode().strip().endswith(f"engine {expected}")


def test_stale_compiled_module_is_found(tmp_path: Path) -> None:
    """An extension older than its source (an edited module, not rebuilt) is reported; one
    built after its source is not."""
    engine = tmp_path / "claimflow" / "engine"
    engine.mkdir(parents=True)
    source = engine / "windows.py"
    extension = engine / f"windows{EXTENSION_SUFFIXES[0]}"
    source.write_text("")
    extension.write_bytes(b"")
    for path, mtime in ((source, 1_000_000), (extension, 2_000_000)):
        os.utime(path, (mtime, mtime))
    assert _compiled.stale(tmp_path / "claimflow") == []
    os.utime(source, (3_000_000, 3_000_000))  # edited after the build
    assert _compiled.stale(tmp_path / "claimflow") == ["claimflow.engine.windows"]
    assert "pip install -e ." in _compiled.stale_message(["claimflow.engine.windows"])


@pytest.mark.slow
def test_a_snapshot_moves_between_compiled_and_pure(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A worker upgraded from one build to the other restores the other's snapshot: taken
    half-way through a multi-week scenario by either build, restored by the other, it gives
    the same alerts for the second half as the compiled engine going on with its own."""
    if not _compiled_engine():
        pytest.skip("the engine is installed as plain Python: both sides would be the same code")
    events = scenario("mixed").events
    pure = _pure_copy(tmp_path / "pure")

    def pure_side(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, str(HERE / "parity_dump.py"), str(events), *args],
            env={**os.environ, "PYTHONPATH": str(pure)},
            capture_output=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        assert done.stderr.decode().strip().endswith("pure Python")

    write_snapshot(events, tmp_path / "compiled.snapshot")
    expected = resume(events, tmp_path / "compiled.snapshot")
    assert expected.count("firing") >= 5  # the second half has alerts to compare

    pure_side(str(tmp_path / "pure.snapshot"), "--write-snapshot")
    assert resume(events, tmp_path / "pure.snapshot") == expected  # pure -> compiled

    pure_side(str(tmp_path / "resumed.txt"), "--resume", str(tmp_path / "compiled.snapshot"))
    assert (tmp_path / "resumed.txt").read_text() == expected  # compiled -> pure
