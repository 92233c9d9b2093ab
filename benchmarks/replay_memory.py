"""Replay memory over a long run: is the engine's footprint flat once warmed up? A benchmark,
not a test: run it by hand.

    python benchmarks/replay_memory.py [--days 90] [--claims-per-day 2000] [--trace]

Generates a scenario with `claimflow simulate` (in its own process, so the generator's memory
does not count; its peak RSS is printed: `simulate` streams its output, and the acceptance is
90 days at 20,000 claims a day under 300 MB), then replays it here, line by line, and prints
this process's resident set size each time event time crosses a checkpoint (by default day
30, 60 and 90). Everything the engine keeps is bounded by event time (windows, claim memory,
dedupe horizon, the deadline cache), so after the first weeks of warm-up the figure should
stay flat: the acceptance is day 90 within 10% of day 30. It also prints the peak RSS, and
which of the engine's containers (dicts, lists, sets and deques reached from the engine's
attributes, nested ones counted with their contents) grew most between the first and the
last checkpoint: a bounded engine shows no steady growth there. `--trace` also runs
tracemalloc and prints the ten allocation sites that grew most (slow: use it to find a leak,
not for the figures).
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import tempfile
import tracemalloc
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from claimflow.config import load_config
from claimflow.engine import Engine
from claimflow.tools.replay import ReplaySummary, replay

DAY = 86400.0
_CONTAINERS = (dict, list, set, frozenset, deque)


def rss_mb() -> float:
    """This process's resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * 4096 / 1e6


def nested_len(container: Any) -> int:
    """Items in a container, those of the containers it holds included."""
    n = len(container)
    for value in container.values() if isinstance(container, dict) else container:
        if isinstance(value, _CONTAINERS):
            n += nested_len(value)
    return n


def _attributes(obj: object) -> Iterator[tuple[str, Any]]:
    yield from getattr(obj, "__dict__", {}).items()
    for cls in type(obj).__mro__:
        # a class compiled by mypyc (setup.py) lists its attributes in __mypyc_attrs__
        for name in (*getattr(cls, "__slots__", ()), *getattr(cls, "__mypyc_attrs__", ())):
            if hasattr(obj, name) and name != "__dict__":
                yield name, getattr(obj, name)


def container_sizes(root: object) -> dict[str, int]:
    """Items held per container reached from `root` through the attributes of claimflow's
    own objects (the engine, its detectors and their parts), by attribute path."""
    out: dict[str, int] = {}
    seen = {id(root)}

    def walk(obj: object, path: str, depth: int) -> None:
        for name, value in _attributes(obj):
            where = f"{path}.{name}"
            if isinstance(value, _CONTAINERS):
                out[where] = nested_len(value)
            elif (
                type(value).__module__.startswith("claimflow")
                and id(value) not in seen
                and depth < 5
            ):
                seen.add(id(value))
                walk(value, where, depth + 1)

    walk(root, "engine", 0)
    return out


def main() -> None:  # noqa: PLR0915 - a benchmark's script: runs, then prints its tables in order
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--claims-per-day", type=int, default=2000)
    parser.add_argument("--scenario", default="mixed")
    parser.add_argument("--checkpoints", default="30,60,90", help="days, comma-separated")
    parser.add_argument("--trace", action="store_true", help="tracemalloc growth sites")
    args = parser.parse_args()
    checkpoints = [int(d) for d in args.checkpoints.split(",")]

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        print(
            f"generating {args.days} days of '{args.scenario}' at {args.claims_per_day:,} "
            "claims a day (claimflow simulate)...",
            flush=True,
        )
        subprocess.run(
            [
                *(sys.executable, "-m", "claimflow.cli", "simulate", "--scenario", args.scenario),
                *("--days", str(args.days), "--claims-per-day", str(args.claims_per_day)),
                *("--out", str(path)),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # the only child so far: its peak is the generator's (the acceptance for `simulate`
        # is 90 days at 20,000 claims a day under 300 MB)
        simulate_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6
        print(f"claimflow simulate: peak RSS {simulate_peak:.1f} MB", flush=True)
        engine = Engine(load_config())
        figures: dict[int, float] = {}
        held: dict[int, dict[str, int]] = {}
        snapshots: dict[int, tracemalloc.Snapshot] = {}
        pending = list(checkpoints)
        if args.trace:
            tracemalloc.start(8)

        def lines() -> Iterator[bytes]:
            with path.open("rb") as fh:  # streamed: the input file is never held whole
                yield from fh

        def on_progress(summary: ReplaySummary) -> None:
            if engine.history_start == float("inf") or not pending:
                return
            day = (engine.watermark - engine.history_start) / DAY
            if day >= pending[0]:
                checkpoint = pending.pop(0)
                gc.collect()
                figures[checkpoint] = rss_mb()
                held[checkpoint] = container_sizes(engine)
                if args.trace:
                    snapshots[checkpoint] = tracemalloc.take_snapshot()
                print(
                    f"day {checkpoint:>3}: RSS {figures[checkpoint]:7.1f} MB "
                    f"({summary.lines:,} lines, {sum(held[checkpoint].values()):,} items held)",
                    flush=True,
                )

        summary = replay(
            engine.config, lines(), lambda a: None, lambda n, r, raw: None, on_progress, engine
        )
        gc.collect()
        end_day = (engine.watermark - engine.history_start) / DAY
        for checkpoint in pending:  # the last one may fall on the final event
            if end_day >= checkpoint - 1:
                figures[checkpoint] = rss_mb()
                held[checkpoint] = container_sizes(engine)
                if args.trace:
                    snapshots[checkpoint] = tracemalloc.take_snapshot()
                print(
                    f"day {checkpoint:>3}: RSS {figures[checkpoint]:7.1f} MB (end of input, "
                    f"{sum(held[checkpoint].values()):,} items held)"
                )
        print(f"replayed {summary.lines:,} lines over {end_day:.1f} days of event time")

    first, last = checkpoints[0], checkpoints[-1]
    if first in figures and last in figures:
        growth = figures[last] / figures[first] - 1
        verdict = "flat (within 10%)" if abs(growth) <= 0.10 else "NOT flat"
        print(
            f"day {last} vs day {first}: RSS ratio {figures[last] / figures[first]:.3f} "
            f"({growth:+.1%}): {verdict}"
        )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6:.1f} MB")
    if first in held and last in held:
        keys = held[first].keys() | held[last].keys()
        change = {k: held[last].get(k, 0) - held[first].get(k, 0) for k in keys}
        print(f"engine containers that grew most, day {first} to day {last} (items):")
        for key in sorted(change, key=lambda k: -change[k])[:8]:
            sizes = " -> ".join(f"{held[c].get(key, 0):,}" for c in checkpoints if c in held)
            print(f"  {change[key]:+9,}  {key}  ({sizes})")
    if args.trace and first in snapshots and last in snapshots:
        print(f"allocation sites that grew most, day {first} to day {last}:")
        for stat in snapshots[last].compare_to(snapshots[first], "traceback")[:10]:
            print(f"  {stat.size_diff / 1e3:+9.1f} KB  {stat.count_diff:+8,} blocks")
            for line in stat.traceback.format()[-6:]:
                print("     ", line)


if __name__ == "__main__":
    main()
