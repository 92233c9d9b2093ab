"""Detection delays and false alarms on the generated scenarios. Run by hand:

    python benchmarks/detection_delays.py [--days 21] [--seeds 1 2 3]

For each fault scenario and seed: when the expected alert fired after the fault began, and
how many alerts no fault explains. For the normal scenario (14 days): the false alarms.
The README quotes this output.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date
from pathlib import Path

from claimflow.config import load_config
from claimflow.engine import Alert
from claimflow.tools.replay import replay
from claimflow.tools.scoring import score
from claimflow.tools.simulate import Simulator, write_scenario

FAULTS = ("hub-break", "partial-hub-break", "hub-silent", "team-capacity-loss", "feedback-surge")


def run(name: str, days: int, seed: int, folder: Path) -> tuple[list[Alert], dict]:  # type: ignore[type-arg]
    config = load_config()
    sim = Simulator(config, name, days, date(2026, 11, 2), seed)
    path = folder / f"{name}-{seed}.jsonl"
    write_scenario(sim, path)
    alerts: list[Alert] = []
    with path.open("rb") as fh:
        replay(config, fh, alerts.append, lambda n, r, raw: None)
    return alerts, sim.truth()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{'scenario':<20} {'seed':>4}  {'expected alert':<22} {'delay':>8}  false alarms")
        for name in FAULTS:
            for seed in args.seeds:
                alerts, truth = run(name, args.days, seed, folder)
                result = score(alerts, truth)
                for d in result.detections:
                    delay = "missed" if d.delay is None else f"{d.delay / 60:.0f} min"
                    print(
                        f"{name:<20} {seed:>4}  {d.fault['expect']:<22} {delay:>8}  "
                        f"{len(result.false_alarms)}"
                    )
        for seed in args.seeds:
            alerts, truth = run("normal", 14, seed, folder)
            firing = [a for a in alerts if a.state == "firing"]
            print(f"{'normal (14 days)':<20} {seed:>4}  {'(none)':<22} {'':>8}  {len(firing)}")


if __name__ == "__main__":
    main()
