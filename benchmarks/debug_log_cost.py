"""What a debug call in faust/aiokafka costs the live worker while debug logging is off.
A benchmark, not a test: run it by hand.

    python benchmarks/debug_log_cost.py [--calls 100000] [--rounds 5]

Faust's progress spinner (on whenever the level is warn or above, the default) hooks a
handler onto the root logger and sets that logger to DEBUG, so every debug call made by
faust and aiokafka on the per-record path builds a LogRecord and hands it to the spinner,
to be thrown away. claimflow's worker turns the spinner off
(`claimflow.agents.worker.faust_worker`).
This builds both workers as they would start (logging set up, default level), each in its
own process because logging is global, and times an aiokafka-style debug call in each:
median of `--rounds`, and the ratio between them, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import timeit

from faust.worker import Worker

from claimflow.agents.app import create_app
from claimflow.agents.worker import faust_worker
from claimflow.config import load_config
from claimflow.logs import logging_config
from claimflow.streams.settings import WorkerSettings


def measure(kind: str, calls: int, rounds: int) -> None:
    """In a child process: build the worker `kind` ('faust' or 'claimflow'), set up its
    logging, time debug calls; print the median ns per call as JSON on the real stdout."""
    out = sys.__stdout__  # Faust redirects sys.stdout into its logger
    settings = WorkerSettings()
    app = create_app(settings, load_config())
    log_config = logging_config("text", settings.log_level)
    if kind == "faust":  # as Faust builds it by default: the spinner on
        worker = Worker(app, loglevel=settings.log_level, quiet=True, logging_config=log_config)
    else:
        worker = faust_worker(app, settings, log_config)
    worker._setup_logging()  # what the worker runs first when it starts
    log = logging.getLogger("aiokafka.consumer.fetcher")

    def call() -> None:
        log.debug("Adding fetch request for partition %s at offset %d", "claims-0", 1234)

    times = timeit.repeat(call, number=calls, repeat=rounds)
    ns = statistics.median(times) / calls * 1e9
    print(json.dumps({"ns": ns, "root": logging.getLogger().level}), file=out, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=("faust", "claimflow"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.child, args.calls, args.rounds)
        return
    figures = {}
    for kind in ("faust", "claimflow"):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                kind,
                "--calls",
                str(args.calls),
                "--rounds",
                str(args.rounds),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        # the spinner writes escape codes to the terminal before the figures
        found = [line[line.index("{") :] for line in done.stdout.splitlines() if "{" in line]
        figures[kind] = json.loads(found[-1])
    for kind, label in (("faust", "Faust's default worker"), ("claimflow", "claimflow's worker")):
        level = logging.getLevelName(figures[kind]["root"])
        print(f"{label:>24}: {figures[kind]['ns']:8.0f} ns per debug call (root logger {level})")
    ratio = figures["faust"]["ns"] / figures["claimflow"]["ns"]
    print(f"a debug call costs {ratio:.0f}x less in claimflow's worker (median of {args.rounds})")


if __name__ == "__main__":
    main()
