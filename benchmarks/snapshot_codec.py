"""Snapshot cost: the data codec (claimflow/live/state_codec.py) against pickle, in the same run.
A benchmark, not a test: run it by hand.

    python benchmarks/snapshot_codec.py [--claims-per-day 2000] [--days 14] [--repeat 5]

Builds the live state (LiveEngine) of a generated mixed scenario, then times, medians over
`--repeat` runs: writing a snapshot (encode + zlib level 1, what `snapshots.save` does) and
reading it back (inflate + decode), with the state codec and with pickle (the baseline, what
snapshots were before; unsafe to read from a topic). Prints both, their ratio and the sizes.
Snapshots are written every CLAIMFLOW_SNAPSHOT_EVERY seconds (10) of wall time, so the
write time is the share of one core they take: time / 10 s.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from claimflow.config import load_config
from claimflow.contract.events import decode
from claimflow.contract.rejections import Rejection
from claimflow.live import state_codec
from claimflow.live.envelopes import Forwarded, Progress
from claimflow.live.live_engine import LiveEngine, LiveSettings
from claimflow.streams.topics import Topics
from claimflow.tools.simulate import Simulator, write_scenario


def _state(claims_per_day: int, days: int) -> LiveEngine:
    config = load_config()
    inputs = Topics().inputs()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "events.jsonl"
        write_scenario(Simulator(config, "mixed", days, date(2026, 11, 2), 1, claims_per_day), out)
        lines = out.read_bytes().splitlines()
    live = LiveEngine(config, inputs, LiveSettings(idle_clock_after=0))
    live.merge.expect(dict.fromkeys(inputs, 1))
    offsets = dict.fromkeys(inputs, 0)
    n = 0
    for i, line in enumerate(lines):
        topic = Topics().for_event(json.loads(line)["type"])
        event = decode(line, inputs[topic])
        if isinstance(event, Rejection):
            continue
        record = Forwarded(
            topic, 0, offsets[topic], 1000.0 + i / 1000, line, time=event.time.timestamp()
        )
        offsets[topic] += 1
        live.take(n, record)
        n += 1
        if i % 500 == 499:
            done = tuple((t, 0, offsets[t], True) for t in inputs)
            live.take(n, Progress(1005.0 + i / 1000, dict.fromkeys(inputs, 1), done))
            n += 1
    return live


def _median(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims-per-day", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    live = _state(args.claims_per_day, args.days)
    open_claims = sum(len(q.open) for q in live.engine.backlog.teams.values())
    data_blob = zlib.compress(state_codec.encode(live), 1)
    pickle_blob = zlib.compress(pickle.dumps(live, protocol=pickle.HIGHEST_PROTOCOL), 1)
    write_codec = _median(lambda: zlib.compress(state_codec.encode(live), 1), args.repeat)
    write_pickle = _median(
        lambda: zlib.compress(pickle.dumps(live, protocol=pickle.HIGHEST_PROTOCOL), 1), args.repeat
    )
    read_codec = _median(lambda: state_codec.decode(zlib.decompress(data_blob)), args.repeat)
    read_pickle = _median(lambda: pickle.loads(zlib.decompress(pickle_blob)), args.repeat)
    print(f"state: {args.days} days x {args.claims_per_day} claims/day, {open_claims} open claims")
    print(
        f"size compressed: codec {len(data_blob):,} B, pickle {len(pickle_blob):,} B "
        f"({len(data_blob) / len(pickle_blob):.2f}x)"
    )
    print(
        f"write (median of {args.repeat}): codec {write_codec * 1000:.1f} ms, pickle "
        f"{write_pickle * 1000:.1f} ms ({write_codec / write_pickle:.2f}x); "
        f"{write_codec / 10 * 100:.2f}% of a core at one snapshot per 10 s"
    )
    print(
        f"read (median of {args.repeat}): codec {read_codec * 1000:.1f} ms, pickle "
        f"{read_pickle * 1000:.1f} ms ({read_codec / read_pickle:.2f}x)"
    )


if __name__ == "__main__":
    main()
