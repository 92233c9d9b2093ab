"""Replay throughput and memory per open claim. A benchmark, not a test: run it by hand.

    python benchmarks/replay_throughput.py [--claims-per-day 20000] [--days 21]

Prints, for one generated mixed scenario (all four event types, five faults):
* a baseline measured in the same run: a bare loop that reads the lines and json-decodes
  them (the least any consumer does), in events per second;
* validation by the contract's pydantic models alone (what decoding cost before the msgspec
  fast path), claimflow's decode (the fast path, falling back to those models), and the full
  replay (decode + engine + detectors), in events per second and as a ratio to the baseline;
* bytes of engine state per open claim and per claim in transit (tracemalloc), and the
  event-id memory that dedupe holds per event within its horizon.
Everything runs on one core, in this process. The engine is compiled with mypyc unless the
package was built with CLAIMFLOW_PURE_PYTHON=1 (setup.py); the output says which ran.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from claimflow import _compiled
from claimflow.config import load_config
from claimflow.contract.events import ClaimArrived, HubDispatched, decode
from claimflow.contract.models import validate
from claimflow.engine import Engine
from claimflow.tools.replay import replay
from claimflow.tools.simulate import Simulator, write_scenario


def _best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def throughput(path: Path, runs: int) -> None:
    config = load_config()
    lines = path.read_bytes().splitlines()
    n = len(lines)

    def bare() -> None:
        loads = json.loads
        for line in lines:
            loads(line)

    def contract() -> None:
        for line in lines:
            validate(line)

    def fast_decode() -> None:
        for line in lines:
            decode(line)

    def full() -> None:
        replay(config, lines, lambda a: None, lambda k, r, raw: None)

    t_bare = _best_of(runs, bare)
    t_contract = _best_of(runs, contract)
    t_decode = _best_of(runs, fast_decode)
    t_full = _best_of(runs, full)
    # setup.py compiles the engine with mypyc unless CLAIMFLOW_PURE_PYTHON=1: say which ran.
    print(f"engine: {_compiled.running()}")
    print(f"events: {n:,} (mixed scenario, all four types)")
    print(f"baseline  bare json.loads loop : {n / t_bare:>10,.0f} events/s")
    print(
        f"contract models (pydantic)     : {n / t_contract:>10,.0f} events/s  "
        f"({t_bare / t_contract:.2f}x baseline)"
    )
    print(
        f"claimflow decode (fast path)   : {n / t_decode:>10,.0f} events/s  "
        f"({t_bare / t_decode:.2f}x baseline)"
    )
    print(
        f"claimflow full replay          : {n / t_full:>10,.0f} events/s  "
        f"({t_bare / t_full:.2f}x baseline)"
    )


def memory(claims: int) -> None:
    config = load_config()
    t0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def arrivals(k: int) -> ClaimArrived:
        at = t0 + timedelta(milliseconds=20 * k)
        return ClaimArrived(
            event_id=f"a-CLM-{k:08d}",
            claim_id=f"CLM-{k:08d}",
            client_id="northwind-mutual",
            hub_id="hub-1",
            team="motor",
            claim_type="motor",
            hub_received_at=at - timedelta(minutes=3),
            arrived_at=at,
        )

    def dispatches(k: int) -> HubDispatched:
        at = t0 + timedelta(milliseconds=20 * k)
        return HubDispatched(
            event_id=f"d-CLM-{k:08d}",
            claim_id=f"CLM-{k:08d}",
            client_id="northwind-mutual",
            hub_id="hub-1",
            center_id="center-1",
            hub_received_at=at - timedelta(minutes=1),
            dispatched_at=at,
        )

    for label, make in (("open claim", arrivals), ("claim in transit", dispatches)):
        engine = Engine(config)
        engine.ingest(make(-1))  # warm up with the oldest event, so none of the rest is late
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for k in range(claims):  # built in the traced region: kept strings are counted
            assert engine.ingest(make(k)) is None
        engine.advance_to(make(claims - 1).time.timestamp() + 60)  # applied, none yet missing
        gc.collect()
        with_ids = tracemalloc.get_traced_memory()[0] - before
        ids = len(engine.seen)
        engine.seen._current.clear()
        engine.seen._previous.clear()
        gc.collect()
        state = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert not engine._buffer
        print(
            f"memory per {label:<16}: {state / claims:>6.0f} bytes of claim state "
            f"(+{(with_ids - state) / ids:.0f} bytes per event id held for dedupe)"
        )
        del engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claims-per-day", type=int, default=20000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--runs", type=int, default=2, help="best of N timings")
    parser.add_argument("--memory-claims", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mixed.jsonl"
        print(f"generating {args.days} days at {args.claims_per_day:,} claims a day...", flush=True)
        sim = Simulator(
            load_config(), "mixed", args.days, date(2026, 11, 2), 1, args.claims_per_day
        )
        write_scenario(sim, path)
        throughput(path, args.runs)
    memory(args.memory_claims)


if __name__ == "__main__":
    main()
