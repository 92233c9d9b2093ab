"""Where the replay's time goes, in instructions per event: deterministic, unlike seconds.

    python benchmarks/instructions.py [--events 20000]

Runs short variants of the replay under `valgrind --tool=callgrind` (Debian's valgrind) and
prints the instructions each stage adds per event: decoding (pydantic), the engine's ingest
bookkeeping (and its parts: event time, type check, dedupe, counters), applying events to
state, and detector evaluation. Counts repeat within about 0.3%, so a change of 1% or more
is real: use this, not timings, to judge an optimisation on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from claimflow.config import load_config
from claimflow.tools.simulate import Simulator

STAGES = ["startup", "decode", "check", "time", "dedupe", "counter", "ingest", "apply", "full"]

VARIANT = """
import sys
from claimflow.config import load_config
from claimflow.engine import Engine
from claimflow.contract.events import decode
stage = sys.argv[1]
lines = open(sys.argv[2], "rb").read().splitlines()
engine = Engine(load_config())
if stage != "startup":
    events = [decode(line) for line in lines]
    if stage in ("check", "time", "dedupe", "counter"):
        for ev in events:
            check, when, _ = engine._handlers[type(ev)]
            if check is not None:
                check(ev)
            if stage == "check":
                continue
            t = when(ev).timestamp()
            if stage == "time":
                continue
            engine._first_time(ev.event_id, t)
            if stage == "counter":
                engine.accepted[ev.type] += 1
    elif stage in ("ingest", "apply", "full"):
        if stage in ("ingest", "apply"):
            engine._evaluate = lambda now: None
        if stage == "ingest":
            engine._handlers = {
                k: (c, w, lambda e, t, n: None) for k, (c, w, _) in engine._handlers.items()
            }
        for ev in events:
            engine.ingest(ev)
        engine.finish()
"""


def count(stage: str, events: Path, script: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                sys.executable,
                str(script),
                stage,
                str(events),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if not match:
        raise SystemExit(f"no instruction count from valgrind:\n{out.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sim = Simulator(load_config(), "normal", 3, date(2026, 11, 2), 1, 20_000)
        lines = [json.dumps(e) for _, e in sim.events()][: args.events]
        events = folder / "events.jsonl"
        events.write_text("\n".join(lines) + "\n")
        script = folder / "variant.py"
        script.write_text(VARIANT)
        n = len(lines)
        counts = {stage: count(stage, events, script) for stage in STAGES}
    per = {s: counts[s] / n for s in STAGES}
    print(f"instructions per event over {n:,} events (callgrind):")
    print(f"  decode (msgspec fast path)      {per['decode'] - per['startup']:>8,.0f}")
    print(f"  ingest bookkeeping               {per['ingest'] - per['decode']:>8,.0f}")
    print(f"    of which type check            {per['check'] - per['decode']:>8,.0f}")
    print(f"    of which event time -> epoch   {per['time'] - per['check']:>8,.0f}")
    print(f"    of which dedupe                {per['dedupe'] - per['time']:>8,.0f}")
    print(f"    of which counters              {per['counter'] - per['dedupe']:>8,.0f}")
    print(f"  applying events to state         {per['apply'] - per['ingest']:>8,.0f}")
    print(f"  detector evaluation              {per['full'] - per['apply']:>8,.0f}")
    print(f"  total engine + decode            {per['full'] - per['startup']:>8,.0f}")


if __name__ == "__main__":
    main()
