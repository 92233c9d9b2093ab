"""Take-over under fire: two workers, SIGKILL the one running the detectors while events
flow, N times in a row on a fresh embedded broker each time. A benchmark, not a test.

    python benchmarks/takeover.py [--runs 5] [--days 3] [--claims-per-day 400]

Per run it prints the events the survivor applied against an uninterrupted in-process run of
the same events, the input records it re-read to fill offset gaps (recovered) and those it
could not (lost), and the seconds from the kill to all applied. Exit status 1 when any run
ended short or lost a record (issue 14 item 4: 3 of 7 runs ended short before the fix).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from claimflow.config import load_config
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import takeover_run


def _produce(bootstrap: str, lines: list[bytes]) -> None:
    producer = make_producer(bootstrap)
    produce(lines, producer, Topics())
    producer.flush()
    producer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--claims-per-day", type=int, default=400)
    args = parser.parse_args()
    config = load_config()
    failed = 0
    seconds: list[float] = []
    tmp = tempfile.mkdtemp(prefix="claimflow-takeover-")
    events = Path(tmp) / "events.jsonl"
    sim = Simulator(config, "normal", args.days, date(2026, 11, 2), 1, args.claims_per_day)
    write_scenario(sim, events)
    lines = events.read_bytes().splitlines()
    print(f"{len(lines)} events, {args.runs} runs")
    for n in range(1, args.runs + 1):
        folder = Path(tmp) / f"run-{n}"
        folder.mkdir()
        with EmbeddedBroker(log=folder / "broker.log") as broker:
            run = takeover_run(broker.bootstrap, folder, config, lines, _produce)
        ok = run.missing == 0 and run.lost == 0
        failed += not ok
        seconds.append(run.seconds)
        print(
            f"run {n}: applied {run.applied}/{run.expected}, re-read {run.recovered}, "
            f"lost {run.lost}, {run.seconds:.1f}s from kill to all applied"
            + ("" if ok else f"  FAILED (logs in {folder})")
        )
    print(
        f"{args.runs - failed}/{args.runs} runs complete with 0 lost; "
        f"kill to all applied: median {statistics.median(seconds):.1f}s"
    )
    if failed:
        print(f"worker and broker logs kept in {tmp}")
    else:
        shutil.rmtree(tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
