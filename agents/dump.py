"""A dump of everything the worker is waiting on, for diagnosing a stall (`kill -USR1 <pid>`).

A stalled worker logs nothing: it waits. Which await each agent, timer and client task sits
in is the question, and neither asyncio nor mode answers it in full: `Task.get_stack()` gives
one frame per coroutine, and mode's own SIGUSR1 dump stops at the first async generator
(every Faust stream and timer is one) and prints each frame's local variables (settings,
credentials). This walks the whole chain of awaits of every task of every event loop in the
process (the main one and the consumer thread's), through coroutines, async generators and
the `asend`/`athrow` objects between them, down to the future at the bottom and what that
future is (a task, a queue's getter, a lock's waiter), and prints every thread's stack. No
local variables: only file, line, function and the source line.

The worker installs it in place of mode's SIGUSR1 handler (agents/worker.py); nothing runs
until the signal comes. docs/worker.md, Diagnosing a stall.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import IO, Any


def _frame_line(frame: FrameType) -> str:
    code = frame.f_code
    line = frame.f_lineno or 0
    text = linecache.getline(code.co_filename, line).strip()
    return f'  File "{code.co_filename}", line {line}, in {code.co_name}\n    {text}'


def _inner(awaitable: Any) -> Any:
    """What `awaitable` (a coroutine, generator, async generator or its asend/athrow
    object) is waiting on now, or None."""
    for name in ("cr_await", "gi_yieldfrom", "ag_await"):
        if hasattr(awaitable, name):
            return getattr(awaitable, name)
    # An async generator's asend/athrow object, a coroutine's __await__ wrapper (Faust's
    # Cython-compiled streams): no attribute leads on, the garbage collector's referents do.
    for referent in gc.get_referents(awaitable):
        if any(hasattr(referent, n) for n in ("cr_await", "ag_await", "gi_yieldfrom")):
            return referent
    return None


def _passes_on(awaitable: Any) -> bool:
    """Whether `awaitable` is a wrapper that only passes on what it wraps."""
    kind = type(awaitable).__name__
    return kind in ("async_generator_asend", "async_generator_athrow", "coroutine_wrapper")


def _frame_of(awaitable: Any) -> FrameType | None:
    for name in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(awaitable, name, None)
        if frame is not None:
            return frame  # type: ignore[no-any-return]
    return None


def await_chain(start: Any, limit: int = 200) -> Iterator[str]:
    """The frames of a coroutine chain, outermost first, then what the innermost awaits."""
    current, seen, last = start, 0, None
    while current is not None and seen < limit:
        seen += 1
        frame = _frame_of(current)
        if frame is not None:
            last = frame
            yield _frame_line(frame)
        elif (
            code := getattr(current, "cr_code", None) or getattr(current, "ag_code", None)
        ) is not None:
            yield f"  (compiled) {code.co_filename}, in {code.co_name}"
        elif not _passes_on(current):
            yield f"  awaiting {current!r:.300}"
            break
        current = _inner(current)
    owner = last.f_locals.get("self") if last is not None else None
    if owner is not None:  # the queue, lock or event the innermost frame waits in
        yield f"  in {_described(owner)}"


def _described(owner: Any) -> str:
    """What a frame waits in, without its contents: a queue's repr lists the items it
    holds (a Faust stream buffer's are events, claim ids and comments included)."""
    if isinstance(owner, asyncio.Queue):
        return (
            f"<{type(owner).__name__} at {id(owner):#x} maxsize={owner.maxsize} "
            f"qsize={owner.qsize()}>"
        )
    return f"{owner!r:.300}"


def _loops() -> list[asyncio.AbstractEventLoop]:
    """Every event loop alive in the process (Faust's consumer thread runs its own)."""
    found = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    return [loop for loop in found if not loop.is_closed()]


def _queues() -> Iterator[str]:
    """Every bounded or non-empty asyncio queue: size, bound, waiting getters and putters,
    and (mode's flow-control queues, Faust's stream buffers) pressure callbacks pending."""
    for queue in gc.get_objects():
        if not isinstance(queue, asyncio.Queue) or not (queue.maxsize or queue.qsize()):
            continue
        pending = len(getattr(queue, "_pending_pressure_drop_callbacks", ()))
        yield (
            f"  {type(queue).__name__} at {id(queue):#x}: {queue.qsize()} of {queue.maxsize}, "
            f"{len(getattr(queue, '_getters', ()))} getters, "
            f"{len(getattr(queue, '_putters', ()))} putters, {pending} pressure-drop pending"
        )


def faust_state(app: Any) -> list[str]:
    """What Faust's consumer will fetch from and hand on: flow, partitions active, paused
    by Faust, held back because their stream buffer is under pressure."""
    consumer = app.consumer

    def tps(name: str) -> str:
        found = getattr(consumer, name, None)
        return ", ".join(sorted(f"{t.topic}/{t.partition}" for t in found or ()))

    lines = [
        f"  rebalancing {app.rebalancing}, in recovery {app.in_recovery}, flow active "
        f"{getattr(consumer, 'flow_active', None)}, flow control active "
        f"{app.flow_control.is_active()}, generation {app.consumer_generation_id}",
    ]
    lines += [f"  {name}: {tps(name)}" for name in ("_active_partitions", "_paused_partitions")]
    lines.append(f"  _buffered_partitions: {tps('_buffered_partitions')}")
    client = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    if client is None:
        return lines
    # aiokafka's consumer (in Faust's consumer thread): per assigned partition, its position,
    # whether paused or awaiting an offset reset, the high-water mark; what the fetcher holds.
    assignment = client._subscription.subscription
    assignment = assignment.assignment if assignment is not None else None
    fetcher = client._fetcher
    held = {f"{t.topic}/{t.partition}": type(r).__name__ for t, r in fetcher._records.items()}
    lines.append(f"  aiokafka fetcher holds: {held}")
    lines.append(f"  aiokafka fetch tasks: {len(getattr(fetcher, '_fetch_tasks', ()))}")
    for tp in sorted(client.assignment()):
        state = assignment.state_value(tp) if assignment is not None else None
        if state is None:
            continue
        lines.append(
            f"  aiokafka {tp.topic}/{tp.partition}: position "
            f"{state._position if state.has_valid_position else None}, paused {state.paused}, "
            f"awaiting reset {state.awaiting_reset}, highwater {state.highwater}"
        )
    return lines


def dump(file: IO[str], app: Any = None) -> None:
    """Write every thread's stack and every task's full chain of awaits to `file`."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = [f"==== claimflow task dump at {time.strftime('%Y-%m-%d %H:%M:%S')} ===="]
    for ident, frame in sys._current_frames().items():
        out.append(f"---- thread {names.get(ident, ident)}")
        stack: list[FrameType] = []
        walk: FrameType | None = frame
        while walk is not None:
            stack.append(walk)
            walk = walk.f_back
        out.extend(_frame_line(f) for f in reversed(stack))
    for loop in _loops():
        tasks = list(asyncio.tasks._all_tasks)  # type: ignore[attr-defined]
        mine = [t for t in tasks if t.get_loop() is loop and not t.done()]
        out.append(f"---- loop {loop!r}: {len(mine)} tasks")
        for task in mine:
            out.append(f"-- task {task.get_name()}: {task.get_coro()!r:.200}")
            out.extend(await_chain(task.get_coro()))
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is not None:
                out.append(f"  task waits on {waiter!r:.400}")
    out.append("---- queues")
    out.extend(_queues())
    if app is not None:
        out.append("---- faust")
        try:
            out.extend(faust_state(app))
        except Exception as exc:  # a diagnostic must not take the worker down
            out.append(f"  unavailable: {exc!r}")
    out.append("==== end of task dump ====")
    print("\n".join(out), file=file, flush=True)
