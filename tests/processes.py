"""Processes the tests start are stopped, with their children, whatever the test's outcome.

Live tests start real processes (`claimflow worker`, `claimflow demo`, the embedded broker,
Prometheus, Chromium), and those start their own. A test that fails between a start and its
`finally`, or a `finally` that only signals the process it holds, left them running for as
long as the machine ran: a demo's broker and worker for a quarter of an hour, taking ports
and CPU from the next run. Two things here close that:

- `stop(process)` signals a process, waits, and then SIGKILLs it and every descendant it
  had (found through /proc before the signal: once the parent is gone its children are
  adopted elsewhere and can no longer be found from it).
- `no_process_left_behind`, an autouse fixture (tests/conftest.py imports it): around every
  test it notes the pytest process's descendants; at teardown whatever the test started and
  left running is stopped (SIGTERM, then SIGKILL) and named in a warning. The pytest process
  makes itself a child subreaper (Linux `prctl`), so a process whose parent died (the broker
  of a demo killed with SIGKILL) is adopted by pytest, not by init, and is found too.

Processes that module- or session-scoped fixtures started are set up before this fixture and
so are left alone. Linux only, like the rest of the live tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

PR_SET_CHILD_SUBREAPER = 36
GRACE = 10.0  # seconds a left-over process has to stop on SIGTERM before SIGKILL


def alive(pid: int) -> bool:
    """Whether a process still runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def children(pid: int) -> list[int]:
    """The direct children of `pid`, from every thread's /proc children list."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread or the process ended meanwhile
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, parents before their children."""
    out: list[int] = []
    todo = children(pid)
    while todo:
        child = todo.pop(0)
        if child not in out and alive(child):
            out.append(child)
            todo += children(child)
    return out


def command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            continue


def _reap(pids: Iterable[int]) -> None:
    """Collect the exit status of those that are our children (adopted or not), so that
    they do not stay as zombies of the pytest process."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue


def terminate(pids: list[int], grace: float = GRACE) -> None:
    """SIGTERM to all, SIGKILL to those still running after `grace` seconds."""
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pids)
        if not any(alive(pid) for pid in pids):
            break
        time.sleep(0.1)
    _signal([pid for pid in pids if alive(pid)], signal.SIGKILL)
    time.sleep(0.05)
    _reap(pids)


def stop(
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    sig: int = signal.SIGTERM,
    timeout: float = 30,
) -> int | None:
    """Send `sig`, wait up to `timeout` seconds, then make sure that neither the process nor
    any process it had started still runs (SIGTERM, then SIGKILL). The exit code when the
    process stopped within `timeout`, None when it had to be killed."""
    below = descendants(process.pid)
    code: int | None = None
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    else:
        code = process.returncode
    leftover = [pid for pid in below if alive(pid)]
    if leftover:
        terminate(leftover, grace=2.0)
    return code


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux 3.4+); False if it cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Stop whatever this test started and left running, children and orphans included."""
    become_subreaper()
    me = os.getpid()
    before = set(descendants(me))
    yield
    left = [pid for pid in descendants(me) if pid not in before]
    if not left:
        return
    names = [f"{pid}: {command(pid)[:120]}" for pid in left]
    terminate(left)
    warnings.warn(
        "the test left processes running; stopped them: " + "; ".join(names),
        pytest.PytestWarning,
        stacklevel=1,
    )
