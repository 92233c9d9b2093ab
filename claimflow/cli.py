"""The `claimflow` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import BinaryIO

from claimflow.config import ConfigError, load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"claimflow: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("claimflow: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claimflow",
        description="Streaming monitor for the flow of insurance claims through a service center.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("replay", help="run the detectors over a file of events, print alerts")
    p.add_argument("--config", type=Path, help="agreements YAML (default: the bundled example)")
    p.add_argument("--input", required=True, help="events, one JSON object a line; - for stdin")
    p.add_argument("--quiet", action="store_true", help="no progress line, no per-line errors")
    p.set_defaults(run=_replay)

    p = sub.add_parser("simulate", help="generate a realistic scenario of contract events")
    p.add_argument(
        "--scenario",
        default="normal",
        help="normal, hub-break, partial-hub-break, "
        "hub-silent, team-capacity-loss, feedback-surge or mixed",
    )
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--out", required=True, type=Path, help="events file (JSON lines)")
    p.add_argument("--config", type=Path, help="agreements YAML (default: the bundled example)")
    p.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2026, 11, 2),
        help="first day, YYYY-MM-DD (default 2026-11-02, a Monday)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--claims-per-day", type=int, default=2000)
    p.set_defaults(run=_simulate)

    p = sub.add_parser("schemas", help="write the events' JSON Schema files")
    p.add_argument("--out", type=Path, default=Path("schemas"), help="folder (default: schemas)")
    p.add_argument("--check", action="store_true", help="fail if the files differ from the models")
    p.set_defaults(run=_schemas)
    return parser


def _lines(source: str) -> Iterator[bytes]:
    stream: BinaryIO
    if source == "-":
        stream = sys.stdin.buffer
        yield from stream
        return
    with open(source, "rb") as stream:
        yield from stream


def _replay(args: argparse.Namespace) -> int:
    from claimflow.engine import Alert
    from claimflow.rejections import Rejection
    from claimflow.replay import ReplaySummary, replay

    config = load_config(args.config)
    if args.input != "-" and not Path(args.input).is_file():
        print(f"claimflow replay: no such file: {args.input}", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty() and not args.quiet
    out = sys.stdout

    def on_alert(alert: Alert) -> None:
        out.write(alert.to_json() + "\n")
        out.flush()

    def on_reject(line: int, problem: Rejection) -> None:
        if args.quiet:
            return
        if tty:
            sys.stderr.write("\r\033[K")
        print(f"line {line}: {problem.reason.value}: {problem.detail}", file=sys.stderr)

    def on_progress(summary: ReplaySummary) -> None:
        if tty:
            sys.stderr.write(
                f"\r\033[K{summary.lines:>12,} lines  {summary.events_per_second:>9,.0f} lines/s  "
                f"{sum(summary.alerts.values())} alerts"
            )

    summary = replay(config, _lines(args.input), on_alert, on_reject, on_progress)
    if tty:
        sys.stderr.write("\r\033[K")
    print(summary.render(), file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from claimflow.simulate import SimulationError, Simulator, write_scenario

    config = load_config(args.config)
    try:
        sim = Simulator(
            config, args.scenario, args.days, args.start, args.seed, args.claims_per_day
        )
    except SimulationError as exc:
        print(f"claimflow simulate: {exc}", file=sys.stderr)
        return 2
    print(f"simulating {args.days} days of scenario {args.scenario!r}...", file=sys.stderr)
    count, truth = write_scenario(
        sim, args.out, lambda n: print(f"  {n:,} events written", file=sys.stderr)
    )
    print(f"wrote {count:,} events to {args.out} and the ground truth to {truth}", file=sys.stderr)
    for fault in sim.truth()["faults"]:
        print(
            f"  fault {fault['kind']} {fault['labels']} {fault['start']} .. {fault['end']}",
            file=sys.stderr,
        )
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from claimflow.schema_export import check_schemas, write_schemas

    if args.check:
        stale = check_schemas(args.out)
        for name in stale:
            print(f"claimflow schemas: {args.out / name} differs from the model", file=sys.stderr)
        if stale:
            print("run `claimflow schemas` to regenerate", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas(args.out):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
