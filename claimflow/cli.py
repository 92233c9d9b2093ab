"""The `claimflow` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from claimflow.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from claimflow.engine import Engine


def main(argv: Sequence[str] | None = None) -> int:
    from claimflow import _compiled

    if stale := _compiled.stale():  # an edited engine module would not run: say so
        print(_compiled.stale_message(stale), file=sys.stderr)
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


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - the argparse declarations, one statement per option
    parser = argparse.ArgumentParser(
        prog="claimflow",
        description="Streaming monitor for the flow of insurance claims through a service center.",
    )
    parser.add_argument("--version", action="version", version=f"claimflow {_version()}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("replay", help="run the detectors over a file of events, print alerts")
    p.add_argument("--config", type=Path, help="agreements YAML (default: the bundled example)")
    p.add_argument("--input", required=True, help="events, one JSON object a line; - for stdin")
    p.add_argument("--quiet", action="store_true", help="no progress line, no per-line errors")
    p.add_argument(
        "--dead-letters",
        type=Path,
        metavar="FILE",
        help="write every refused line there as a dead-letter record (JSON lines)",
    )
    p.add_argument(
        "--truth",
        type=Path,
        help="a scenario's ground truth (from simulate): also print detection "
        "delays and false alarms",
    )
    p.add_argument(
        "--roster",
        type=Path,
        help="staffing roster YAML (docs/staffing.md): SlaAtRisk alerts then carry who "
        "could help, and their resolutions who can go back",
    )
    p.set_defaults(run=_replay)

    p = sub.add_parser("simulate", help="generate a realistic scenario of contract events")
    p.add_argument(
        "--scenario",
        default="normal",
        help="normal, hub-break, partial-hub-break, back-to-back-break, "
        "hub-silent, team-capacity-loss, feedback-surge, inflow-drop or mixed",
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
    p.add_argument(
        "--stragglers", type=float, default=0.001, help="share of claims delayed (default 0.001)"
    )
    p.add_argument(
        "--duplicates", type=float, default=0.0, help="share of dispatches sent twice (default 0)"
    )
    p.add_argument(
        "--batching-hub",
        action="append",
        default=[],
        metavar="HUB[=MINUTES]",
        help="a hub that dispatches one file every MINUTES (default 15); repeatable",
    )
    p.add_argument(
        "--overnight-hold",
        action="append",
        default=[],
        metavar="HUB",
        help="a hub that holds claims from 22:00 and sends them at 06:00; repeatable",
    )
    p.add_argument(
        "--holiday",
        action="append",
        default=[],
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="a public holiday besides the configuration's (weekend inflow); repeatable",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on standard error")
    p.set_defaults(run=_simulate)

    p = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu) here")
    p.add_argument("--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092)")
    p.set_defaults(run=_broker)

    p = sub.add_parser("produce", help="send contract events from a file to their Kafka topics")
    p.add_argument("--input", required=True, help="events, one JSON object a line; - for stdin")
    p.add_argument(
        "--bootstrap",
        default=os.environ.get("CLAIMFLOW_BOOTSTRAP", "127.0.0.1:9092"),
        help="Kafka bootstrap servers (default $CLAIMFLOW_BOOTSTRAP or 127.0.0.1:9092)",
    )
    p.add_argument(
        "--rate", type=float, help="events per second at most (default: as fast as it can)"
    )
    p.add_argument(
        "--partitions",
        type=int,
        default=4,
        help="partitions for input topics that do not exist yet (default 4)",
    )
    p.add_argument(
        "--max-batch-bytes",
        type=int,
        default=0,
        help="producer batch size; 0 (default) sends one record per request, which "
        "every broker counts right (the embedded one miscounts batches)",
    )
    p.set_defaults(run=_produce)

    p = sub.add_parser(
        "worker",
        help="run the live worker: Faust agents on Kafka, /metrics and IT views on its web port",
        description="Settings come from CLAIMFLOW_* environment variables (docs/worker.md); "
        "these flags override them.",
    )
    p.add_argument("--config", type=Path, help="agreements YAML (default: the bundled example)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default 127.0.0.1:9092)")
    p.add_argument("--web-host", help="address of the web port (default 127.0.0.1)")
    p.add_argument("--web-port", type=int, help="web port: /metrics, /it/* (default 6066)")
    p.add_argument("--store", help="table store: memory:// (default) or rocksdb://")
    p.add_argument("--data-dir", type=Path, help="where rocksdb:// keeps its files")
    p.add_argument("--app-id", help="consumer group and table prefix (default claimflow)")
    p.set_defaults(run=_worker)

    p = sub.add_parser(
        "demo",
        help="the whole story on this machine: broker, worker, a day with a hub-link break, "
        "and the wall page",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=300.0,
        help="how much faster than real time the day plays (default 300: a day in under 5 "
        "minutes; 0: as fast as it goes)",
    )
    p.add_argument("--web-port", type=int, default=6066, help="wall page and metrics (6066)")
    p.add_argument("--broker-port", type=int, help="embedded broker port (default: any free)")
    p.add_argument(
        "--stop-at",
        type=_clock,
        metavar="HH:MM",
        help="stop playing at this time of the day and hold the picture",
    )
    p.add_argument("--claims-per-day", type=int, default=1000)
    p.add_argument(
        "--exit-when-done", action="store_true", help="stop once the day is played (no wait)"
    )
    p.set_defaults(run=_demo)

    p = sub.add_parser(
        "staffing", help="who could help a team that will miss a deadline, and who can go back"
    )
    staff = p.add_subparsers(required=True, metavar="ACTION")
    d = staff.add_parser(
        "suggest",
        help="replay events up to a moment: moves for teams at risk, people to hand "
        "back, teams with capacity for the next day's claims",
    )
    d.add_argument("--roster", type=Path, required=True, help="roster and skills YAML")
    d.add_argument("--config", type=Path, help="agreements YAML (default: the bundled example)")
    d.add_argument("--input", required=True, help="events, one JSON object a line; - for stdin")
    d.add_argument(
        "--at",
        type=datetime.fromisoformat,
        help="the moment, RFC 3339 with an offset (default: the end of the input)",
    )
    d.add_argument("--json", action="store_true", help="print JSON instead of text")
    d.set_defaults(run=_staffing)

    p = sub.add_parser("dashboards", help="the Grafana boards (grafanalib)")
    dash = p.add_subparsers(required=True, metavar="ACTION")
    d = dash.add_parser("build", help="write the boards as JSON (dashboards/generated/)")
    d.add_argument(
        "--out",
        type=Path,
        default=Path("dashboards/generated"),
        help="folder, relative to here (default: dashboards/generated)",
    )
    d.add_argument("--check", action="store_true", help="fail if the files are stale")
    d.set_defaults(run=_dashboards)

    p = sub.add_parser(
        "rules", help="Prometheus rules, Alertmanager config, PrometheusRule, ServiceMonitor"
    )
    rules = p.add_subparsers(required=True, metavar="ACTION")
    d = rules.add_parser("build", help="write them into deploy/ (from dashboards/mixin.py)")
    d.add_argument("--root", type=Path, default=Path("."), help="repository root (default: here)")
    d.add_argument(
        "--receivers",
        type=Path,
        help="YAML values file: receivers by name (oncall, operations, account-managers) "
        "and clients (client_id: receiver)",
    )
    d.add_argument("--check", action="store_true", help="fail if the files are stale")
    d.set_defaults(run=_rules)

    p = sub.add_parser("alerts", help="read the alerts topic: a table, or JSON lines")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: CLAIMFLOW_BOOTSTRAP)")
    p.add_argument("--topic", help="alerts topic (default: claimflow.alerts)")
    p.add_argument(
        "--since",
        type=_since,
        help="alerts whose event time is this moment or later: RFC 3339, or a duration back "
        "from now (30m, 2h, 1d)",
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep waiting for new alerts")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(run=_alerts)

    p = sub.add_parser("schemas", help="write the events' JSON Schema files")
    p.add_argument("--out", type=Path, default=Path("schemas"), help="folder (default: schemas)")
    p.add_argument("--check", action="store_true", help="fail if the files differ from the models")
    p.set_defaults(run=_schemas)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from claimflow import _compiled

    try:
        number = version("claimflow")
    except PackageNotFoundError:
        number = "unknown (not installed)"
    return f"{number}, engine {_compiled.running()}"  # compiled (mypyc) or pure Python


def _lines(source: str) -> Iterator[bytes]:
    stream: BinaryIO
    if source == "-":
        stream = sys.stdin.buffer
        yield from stream
        return
    with open(source, "rb") as stream:
        yield from stream


def _replay(args: argparse.Namespace) -> int:
    from claimflow.contract.deadletter import dead_letter, dead_letter_json
    from claimflow.contract.rejections import Rejection
    from claimflow.engine import Alert, Engine
    from claimflow.staffing.advice import attach
    from claimflow.staffing.roster import load_roster
    from claimflow.tools.replay import ReplaySummary, replay
    from claimflow.views.hub_links import break_episodes

    config = load_config(args.config)
    for path in (args.input, args.truth):
        if path is not None and path != "-" and not Path(path).is_file():
            print(f"claimflow replay: no such file: {path}", file=sys.stderr)
            return 2
    tty = sys.stderr.isatty() and not args.quiet
    out = sys.stdout
    alerts: list[Alert] = []

    def on_alert(alert: Alert) -> None:
        alerts.append(alert)
        out.write(alert.to_json() + "\n")
        out.flush()

    dead = args.dead_letters.open("wb") if args.dead_letters else None
    source = "-" if args.input == "-" else str(Path(args.input).resolve())

    def on_reject(line: int, problem: Rejection, raw: bytes) -> None:
        if dead is not None:
            record = dead_letter(raw.rstrip(b"\r\n"), problem, source, 0, line)
            dead.write(dead_letter_json(record) + b"\n")
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

    engine = Engine(config)
    attach(engine, load_roster(args.roster, config) if args.roster else None)
    try:
        summary = replay(config, _lines(args.input), on_alert, on_reject, on_progress, engine)
    finally:
        if dead is not None:
            dead.close()
    if tty:
        sys.stderr.write("\r\033[K")
    print(summary.render(), file=sys.stderr)
    episodes = break_episodes(engine)
    if episodes:
        print("hub link breaks (for IT):", file=sys.stderr)
    for e in reversed(episodes):
        ended = f"ended {e['ended_at']}" if e["ended_at"] else "still open"
        print(
            f"  {e['hub_id']} -> {e['center_id']}: since {e['since']}, detected "
            f"{e['detected_at']}, {ended}; up to {e['max_missing_claims']} claims missing "
            f"({', '.join(e['evidence'])})",
            file=sys.stderr,
        )
    if args.truth is not None:
        import json

        from claimflow.tools.scoring import score

        print("against the ground truth:", file=sys.stderr)
        print(score(alerts, json.loads(args.truth.read_text())).render(), file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from claimflow.tools.simulate import Realism, SimulationError, Simulator, write_scenario

    if str(args.out) == "-":
        print(
            "claimflow simulate: --out needs a file: the ground truth is written beside it",
            file=sys.stderr,
        )
        return 2
    config = load_config(args.config)
    try:
        batching = {}
        for spec in args.batching_hub:
            hub, _, minutes = spec.partition("=")
            batching[hub] = float(minutes or 15) * 60
        unknown = (set(batching) | set(args.overnight_hold)) - set(config.hub_centers)
        if unknown:
            raise SimulationError(f"unknown hub(s) {', '.join(sorted(unknown))}")
        realism = Realism(
            straggler_share=args.stragglers,
            duplicate_share=args.duplicates,
            batching=batching,
            overnight_hold=tuple(args.overnight_hold),
            holidays=tuple(args.holiday),
        )
        sim = Simulator(
            config,
            args.scenario,
            args.days,
            args.start,
            args.seed,
            args.claims_per_day,
            realism=realism,
        )
    except (SimulationError, ValueError) as exc:
        print(f"claimflow simulate: {exc}", file=sys.stderr)
        return 2
    print(f"simulating {args.days} days of scenario {args.scenario!r}...", file=sys.stderr)
    expected = round(args.claims_per_day * args.days * 0.8)  # weekends are quieter
    with tqdm(
        total=expected, unit="claim", file=sys.stderr, disable=args.no_progress, mininterval=1
    ) as bar:

        def tick(claims: int) -> None:
            bar.update(claims)

        count, truth = write_scenario(
            sim,
            args.out,
            None,
            lambda message: bar.write(f"  {message}", file=sys.stderr),
            tick,
        )
        bar.total = bar.n
        bar.refresh()
    print(f"wrote {count:,} events to {args.out} and the ground truth to {truth}", file=sys.stderr)
    for fault in sim.truth()["faults"]:
        print(
            f"  fault {fault['kind']} {fault['labels']} {fault['start']} .. {fault['end']}",
            file=sys.stderr,
        )
    return 0


def _broker(args: argparse.Namespace) -> int:
    from claimflow.tools.broker import BrokerError, EmbeddedBroker

    broker = EmbeddedBroker(args.port)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"claimflow broker: {exc}", file=sys.stderr)
        return 2
    print(
        f"Kafka-protocol broker (Tansu, in memory) on {broker.bootstrap}; Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    status = 0
    try:
        while not stopping.wait(0.5):
            if broker.process is None or broker.process.poll() is not None:
                print(f"claimflow broker: the broker exited; see {broker.log}", file=sys.stderr)
                status = 1
                break
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    print("broker stopped", file=sys.stderr)
    return status


def _stop_on_signals() -> None:
    """SIGINT and SIGTERM stop this process (KeyboardInterrupt) from here on.

    A process started as a background job (`claimflow demo &`, a test's subprocess) inherits
    SIGINT ignored, and Python then installs no KeyboardInterrupt handler: Ctrl-C or `kill -INT`
    would do nothing, and a demo would keep its broker and worker running. SIGTERM's default
    kills without a `finally`, so the same demo would leave them behind too. Called first
    thing by the long-running commands, so that no start-up step (generating the demo's
    history, importing Faust) is a window where a signal is lost. The worker's Faust loop
    installs its own handlers for both once it runs (a clean stop, exit 0)."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def _worker(args: argparse.Namespace) -> int:
    _stop_on_signals()
    from claimflow.agents.worker import WorkerError, run_worker
    from claimflow.streams.settings import SettingsError, from_env

    try:
        settings = from_env(
            config=args.config,
            bootstrap=args.bootstrap,
            web_host=args.web_host,
            web_port=args.web_port,
            store=args.store,
            data_dir=args.data_dir,
            app_id=args.app_id,
        )
    except SettingsError as exc:
        print(f"claimflow worker: {exc}", file=sys.stderr)
        return 2
    try:
        return run_worker(settings)
    except WorkerError as exc:
        print(f"claimflow worker: {exc}", file=sys.stderr)
        return 2


def _produce(args: argparse.Namespace) -> int:
    from claimflow.streams.topics import Topics
    from claimflow.tools.produce import ProduceSummary, ensure_topics, make_producer, produce

    if args.input != "-" and not Path(args.input).is_file():
        print(f"claimflow produce: no such file: {args.input}", file=sys.stderr)
        return 2
    topics = Topics()
    try:
        created = ensure_topics(args.bootstrap, topics.inputs(), args.partitions)
        producer = make_producer(args.bootstrap, args.max_batch_bytes)
    except Exception as exc:  # kafka-python raises many kinds: say which
        print(
            f"claimflow produce: cannot reach Kafka at {args.bootstrap}: {exc!r}", file=sys.stderr
        )
        return 2
    for name in created:
        print(f"created topic {name} ({args.partitions} partitions)", file=sys.stderr)
    tty = sys.stderr.isatty()

    def on_skip(line: int, why: str) -> None:
        print(f"line {line}: not sent: {why}", file=sys.stderr)

    def on_progress(summary: ProduceSummary) -> None:
        if tty:
            sys.stderr.write(f"\r\033[K{sum(summary.sent.values()):>10,} sent")

    def on_fail(line: int, why: str) -> None:
        if tty:
            sys.stderr.write("\r\033[K")
        print(f"line {line}: not sent: {why}", file=sys.stderr)

    try:
        summary = produce(
            _lines(args.input), producer, topics, args.rate, on_skip, on_progress, on_fail
        )
    finally:
        producer.close()
    if tty:
        sys.stderr.write("\r\033[K")
    print(summary.render(), file=sys.stderr)
    return 1 if summary.failed else 0


def _clock(value: str) -> dt_time:
    try:
        return dt_time.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not HH:MM") from None


def _demo(args: argparse.Namespace) -> int:
    _stop_on_signals()
    from claimflow.tools.demo import DemoError, DemoOptions, run_demo

    options = DemoOptions(
        speed=args.speed,
        web_port=args.web_port,
        broker_port=args.broker_port,
        claims_per_day=args.claims_per_day,
        stop_at=args.stop_at,
        exit_when_done=args.exit_when_done,
    )
    try:
        return run_demo(options)
    except DemoError as exc:
        print(f"claimflow demo: {exc}", file=sys.stderr)
        return 2


def _staffing(args: argparse.Namespace) -> int:
    import json

    from claimflow.staffing.advice import report
    from claimflow.staffing.roster import load_roster

    config = load_config(args.config)
    roster = load_roster(args.roster, config)
    if args.at is not None and args.at.tzinfo is None:
        print("claimflow staffing: --at needs an offset (e.g. Z or +01:00)", file=sys.stderr)
        return 2
    engine = floor_at(config, _lines(args.input), args.at)
    if engine is None:
        print("claimflow staffing: no events before --at: nothing to judge", file=sys.stderr)
        return 2
    result = report(engine, roster)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.render())
    return 0


def floor_at(config: Config, lines: Iterable[bytes], at: datetime | None) -> Engine | None:
    """The engine as it stands at `at` (None: the end of the input), as the live worker would
    show it, for `staffing suggest`; None when no event is dated up to `at`.

    The events dated up to `at` go through the replay (the same `feed`, the same hold of
    events dated far ahead), then event time is moved on to `at` itself, so the deadlines
    between the last event and `at` are judged. Before, it judged at the last event minus
    the allowed lateness, and lines that did not decode went uncounted."""
    from claimflow.engine import Engine
    from claimflow.tools.replay import replay

    engine = Engine(config)
    replay(
        config,
        lines if at is None else _until(lines, at),
        lambda alert: None,
        lambda number, problem, line: None,
        engine=engine,
    )
    if engine.newest == float("-inf"):
        return None
    if at is not None:
        engine.advance_to(at.timestamp())
    return engine


def _until(lines: Iterable[bytes], moment: datetime) -> Iterator[bytes]:
    """The lines of events dated up to `moment`, in input order, and the lines that do not
    decode (to be counted and refused like any other). An event dated later is left out,
    not taken as the end: one wrong date must not cut the input short."""
    from claimflow.contract.events import decode
    from claimflow.contract.rejections import Rejection

    for line in lines:
        event = decode(line)
        if isinstance(event, Rejection) or event.time <= moment:
            yield line


def _since(text: str) -> datetime:
    from datetime import UTC, timedelta

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset")
    return moment


def _alerts(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from claimflow.agents.app import kafka_auth
    from claimflow.streams.alert_reader import TABLE_HEADER, read_alerts, table_row
    from claimflow.streams.settings import SettingsError, from_env

    try:
        settings = from_env(bootstrap=args.bootstrap)
    except SettingsError as exc:
        print(f"claimflow alerts: {exc}", file=sys.stderr)
        return 2
    topic = args.topic or settings.topics.alerts

    async def run() -> None:
        if not args.json:
            print(TABLE_HEADER, flush=True)
        async for alert in read_alerts(
            settings.bootstrap_servers, kafka_auth(settings), topic, args.since, args.follow
        ):
            line = json.dumps(alert, ensure_ascii=False) if args.json else table_row(alert)
            print(line, flush=True)

    try:
        asyncio.run(run())
    except LookupError as exc:
        print(f"claimflow alerts: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _rules(args: argparse.Namespace) -> int:
    import yaml

    from claimflow.dashboards.mixin import build

    values = yaml.safe_load(args.receivers.read_text()) if args.receivers else None
    stale = build(args.root, check=args.check, values=values)
    if args.check:
        for name in stale:
            print(f"claimflow rules: {name} is stale", file=sys.stderr)
        if stale:
            print("run `claimflow rules build`", file=sys.stderr)
        return 1 if stale else 0
    print(
        f"wrote the rules, Alertmanager and operator files under {args.root}/deploy",
        file=sys.stderr,
    )
    return 0


def _dashboards(args: argparse.Namespace) -> int:
    from claimflow.dashboards.boards import BOARDS, build

    out = args.out
    stale = build(out, check=args.check)
    if args.check:
        if stale:
            print(
                f"claimflow dashboards: stale in {out}: {', '.join(stale)}; "
                "run `claimflow dashboards build`",
                file=sys.stderr,
            )
            return 1
        print(f"{len(BOARDS)} boards up to date in {out}", file=sys.stderr)
        return 0
    print(f"wrote {len(BOARDS)} boards to {out}", file=sys.stderr)
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from claimflow.tools.schema_export import check_schemas, write_schemas

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
