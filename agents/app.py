"""The worker: one Faust app, built from WorkerSettings. `claimflow worker` runs it.

    input topics (4, keyed by claim / client)
        -> ingest (any worker, by partition, a poll at a time)   validate, stamp, forward
        -> claimflow.sequenced (1 partition)
        -> detector agent (the one worker owning it) merge by event time, engine, outputs
        -> claimflow.alerts, claimflow.deadletter
    table <app_id>-detector-state: snapshots of the detector state (changelog-backed)

Why one sequenced partition: the detectors judge a team's, hub's or client's whole flow, and
claims of one team are spread over every input partition; the design notes
(docs/design-live-pipeline.md) weigh the alternatives. The volume is small (20,000 claims a
day is under one event a second; one engine takes 116,000 to 146,000 a second).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from functools import partial
from typing import Any

import faust
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types import TP
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from claimflow.agents import web
from claimflow.agents.detect import Detector, GapFiller
from claimflow.agents.ingest import BUSY_REPORTS_FOR, Ingest
from claimflow.agents.watch import WATCH_EVERY, BrokerWatch, Resets
from claimflow.config import Config, ConfigFile, load_config
from claimflow.live.envelopes import BUNDLE_RECORDS
from claimflow.staffing.roster import RosterFile
from claimflow.streams import batch_drain, from_start, table_keys
from claimflow.streams.declare import ensure_topics
from claimflow.streams.delivery import Delivery
from claimflow.streams.log_reader import LogReader
from claimflow.streams.settings import WorkerSettings
from claimflow.timeutil import Clock, SystemClock
from claimflow.views.metrics import EngineCollector, register_service_metrics

log = logging.getLogger("claimflow.worker")
STATE_TABLE = "detector-state"
INGEST_BATCH = BUNDLE_RECORDS  # input records forwarded together at most
INGEST_WITHIN = 0.05  # seconds a batch waits to fill
FETCH_BYTES = 512 * 1024  # per partition and fetch (see create_app)
POLL_RECORDS = 2000  # records one poll of the consumer hands over at most
INGEST_BUFFER = 4 * INGEST_BATCH  # input records waiting for the ingest agent at most
INGEST_POLLS = INGEST_BUFFER // POLL_RECORDS  # polls of input records waiting for ingest
SEQUENCED_BUFFER = 16  # sequenced records (bundles) waiting for the detector agent at most


def _credentials(settings: WorkerSettings) -> Any:
    context = settings.ssl_context()
    if "SASL" in settings.security_protocol:
        return SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


def kafka_auth(settings: WorkerSettings) -> dict[str, Any]:
    """Connection security in aiokafka's terms, for the direct (non-Faust) clients."""
    return dict(credentials_to_aiokafka_auth(_credentials(settings)))


def create_app(
    settings: WorkerSettings, config: Config | None = None, clock: Clock | None = None
) -> faust.App:
    clock = clock or SystemClock()
    config_file = (
        ConfigFile(settings.config, settings.config_check_every, clock)
        if settings.config is not None
        else None
    )
    config = config or (config_file.config if config_file is not None else load_config(None))
    topics = settings.topics
    credentials = _credentials(settings)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
        broker_credentials=credentials,
        store=settings.store,
        datadir=str(settings.data_dir),
        web_enabled=True,
        # Faust's own views are off: /table/ served the detector state (claim ids,
        # comments), /router/ the workers' addresses, / statistics and the graph. The
        # table router that forwards a view to the worker holding the state still works.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        web_bind=settings.web_bind or settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_interval=settings.commit_interval,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        consumer_auto_offset_reset="earliest",
        # Per partition and fetch, and per poll. Which partitions are read during a backlog
        # is up to ingest's event-time alignment (claimflow/live/alignment.py), which pauses the
        # ones ahead, so chunks can be large; a larger record still comes, alone (KIP-74;
        # checked on the embedded broker). On a 90-day catch-up, 64 KiB drained about 40%
        # slower than 512 KiB, and Faust's unbounded poll with 4,096 records buffered per
        # agent handed a paused partition's whole backlog (some 10,000 records) to the agent
        # before the pause took effect.
        consumer_max_fetch_size=FETCH_BYTES,
        broker_max_poll_records=POLL_RECORDS,
        table_standby_replicas=0,
        autodiscover=False,
    )
    input_types = topics.inputs()

    def raw_topic(name: str, partitions: int, maxsize: int | None = None) -> Any:
        return app.topic(
            name,
            partitions=partitions,
            key_serializer="raw",
            value_serializer="raw",
            maxsize=maxsize,
        )

    for name in input_types:
        raw_topic(name, settings.partitions)
    # Bounded buffers between the consumer and the agents: records handed to an agent cannot
    # be held back by pausing their partition (claimflow/live/alignment.py), and Faust's default
    # of 4,096 per agent would be 4,096 bundles (millions of records) before the detector.
    inputs = app.topic(
        *input_types, key_serializer="raw", value_serializer="raw", maxsize=INGEST_BUFFER
    )
    sequenced = raw_topic(topics.sequenced, 1, SEQUENCED_BUFFER)
    outputs = {"alert": raw_topic(topics.alerts, 1), "deadletter": raw_topic(topics.deadletter, 1)}
    table = app.Table(
        STATE_TABLE,
        partitions=1,
        key_type=str,
        value_type=bytes,  # Faust stores bytes raw, in the changelog and on recovery
        # Written only while the detector agent handles a sequenced record (partition 0),
        # so the changelog partition is the current record's.
    )
    table_keys.tolerate_foreign_keys(table)  # a foreign changelog key is skipped, not fatal
    reader = LogReader(settings.bootstrap_servers, kafka_auth(settings))
    resets = Resets()
    delivery = Delivery()  # sends awaited until acknowledged, resends counted

    def input_partitions() -> dict[str, int]:
        counts = {name: app.consumer.topic_partitions(name) for name in input_types}
        return {name: n for name, n in counts.items() if n}

    ingest = Ingest(
        app,
        input_types,
        sequenced,
        clock,
        settings.max_event_bytes,
        settings.future_tolerance,
        busy_for=settings.idle_after + BUSY_REPORTS_FOR,
        align_drift=settings.align_drift,
        align_records=settings.align_records,
        fetch_max_wait=settings.fetch_max_wait,
        fetch_max_bytes=settings.fetch_max_bytes,
        delivery=delivery,
    )
    detector = Detector(
        config,
        input_types,
        settings.live,
        table,
        outputs,
        reader,
        topics.sequenced,
        settings.snapshot_every,
        input_partitions,
        RosterFile(settings.staffing, config, settings.staffing_check_every, clock)
        if settings.staffing is not None
        else None,
        snapshot_key=_encoded(settings.secret("snapshot_key")),
        config_file=config_file,
        gaps=GapFiller(reader, input_types, settings.max_event_bytes, settings.future_tolerance),
        resets=resets,
        delivery=delivery,
        snapshot_behind_every=settings.snapshot_behind_every,
    )
    sequenced_tp = TP(topics.sequenced, 0)

    async def recreate_topics() -> list[str]:
        created = await ensure_topics(settings, kafka_auth(settings))
        if created:  # the watch says why, in its one warning
            log.info("created topics: %s", ", ".join(created))
        return created

    watch = BrokerWatch(
        app,
        resets,
        recreate_topics,
        set(input_types),
        lambda: ingest.forwarded_next,
        (sequenced_tp, lambda: detector.live.next_offset if detector.live is not None else None),
    )

    @app.timer(WATCH_EVERY)  # type: ignore[untyped-decorator]
    async def watch_broker() -> None:
        try:
            await watch.check()
        except Exception:  # the watch must never stop the worker
            log.exception("checking for a broker reset failed")

    _ingest_agents(app, inputs, input_types, ingest)

    @app.agent(sequenced, name="detect")
    async def detect_agent(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            await detector.take(message.offset, event.value, message.headers)

    @app.timer(settings.progress_every)  # type: ignore[untyped-decorator]
    async def report_progress() -> None:
        try:
            await ingest.report()
        except Exception:  # a timer that raises stops the worker: log, count, go on
            detector.errors += 1
            log.exception("the ingest progress report failed")

    # Before the seek to committed offsets that ends every rebalance: partitions with
    # nothing committed go back to the start of their log (streams/from_start.py).
    agent_topics = {*input_types, topics.sequenced}

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        from_start.install(app.consumer, agent_topics)
        revoked: set[TP] = args[0] if args else kwargs.get("revoked", set())
        if sequenced_tp in revoked:
            detector.drop()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        from_start.install(app.consumer, agent_topics)

    def owned_engines() -> list[Any]:
        owns = sequenced_tp in app.assignor.assigned_actives()
        return [detector.live.engine] if owns and detector.live is not None else []

    registry = CollectorRegistry()
    registry.register(EngineCollector(owned_engines))
    registry.register(_WorkerCollector(ingest, detector, owned_engines))
    register_service_metrics(registry, settings.app_id)
    web.register(
        app,
        detector,
        registry,
        watch.not_ready,
        table,
        token=settings.secret("view_token"),
        bind=settings.web_bind or settings.web_host,
        port=settings.web_port,
    )
    return app


def _ingest_agents(
    app: faust.App, inputs: Any, input_types: Mapping[str, str], ingest: Ingest
) -> None:
    """Stage one's agents: input records reach ingest a poll at a time, past Faust's
    per-record hand-over (streams/batch_drain.py), on every consumer Faust creates for this
    app; the ingest agent subscribes the input topics and is the path when that cannot be
    installed."""
    # Bounded like an agent's buffer, and cleared with the agents' buffers on a rebalance.
    polls = app.FlowControlQueue(maxsize=INGEST_POLLS, clear_on_resume=True)
    new_consumer = app._new_consumer

    def _new_consumer() -> Any:
        consumer = new_consumer()
        if not batch_drain.install(consumer, input_types, polls):
            log.warning(
                "cannot hand input records over a poll at a time on this Faust: they take "
                "Faust's per-record path to the ingest agent (slower, same results)"
            )
        return consumer

    app._new_consumer = _new_consumer  # type: ignore[method-assign] # Faust has no hook for it

    async def queued() -> AsyncIterator[list[Any]]:
        while True:
            messages = await polls.get()
            batch_drain.track(app.consumer, messages)  # a rebalance waits for these now
            yield messages

    @app.task  # type: ignore[untyped-decorator]
    async def ingest_polls() -> None:
        # A list that fails to forward is tried again (logged, counted), never skipped: a
        # later list's acknowledgement must not let a commit pass records not forwarded.
        await ingest.consume(queued(), partial(batch_drain.ack, app.consumer), retry_after=1.0)

    @app.agent(inputs, name="ingest")
    async def ingest_agent(stream: Any) -> None:
        # Subscribes the consumer to the input topics. Records reach this stream only when
        # the drain above could not be installed. In batches (issue 15): what is waiting
        # goes on in one sequenced record per INGEST_BATCH; a lone record waits at most
        # INGEST_WITHIN; events are acknowledged (their offsets committed) only after their
        # batch was forwarded.
        async def messages() -> AsyncIterator[list[Any]]:
            async for events in stream.take_events(INGEST_BATCH, within=INGEST_WITHIN):
                yield [event.message for event in events]

        await ingest.consume(messages(), path="stream")


def _encoded(secret: str | None) -> bytes | None:
    return secret.encode() if secret is not None else None


def _by_label(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    label: str,
    values: Mapping[str, float],
    sort: bool = True,
) -> CounterMetricFamily | GaugeMetricFamily:
    """A family with one sample per value of its one label (bounded: the keys are topics,
    stages, reasons or signals the worker names itself)."""
    family = kind(name, documentation, labels=[label])
    for key, n in sorted(values.items()) if sort else values.items():
        family.add_metric([key], n)
    return family


class _WorkerCollector(Collector):
    """What this worker does for the pipeline, beside the engine state."""

    def __init__(self, ingest: Ingest, detector: Detector, owned: Any) -> None:
        self.ingest = ingest
        self.detector = detector
        self.owned = owned

    def collect(self) -> Iterator[Metric]:
        running = bool(self.owned())
        yield GaugeMetricFamily(
            "claimflow_detector_active",
            "1 on the worker that runs the detectors (owns the sequenced partition), else 0.",
            value=1 if running else 0,
        )
        yield _by_label(
            GaugeMetricFamily,
            "claimflow_input_lag_messages",
            "Input records waiting to be read, over the input partitions this worker owns.",
            "topic",
            self.ingest.lag,
        )
        alignment = self.ingest.alignment
        yield GaugeMetricFamily(
            "claimflow_input_paused_partitions",
            "Input partitions held back (at their hand-out limit, or paused) because they ran "
            "ahead in event time of the slowest one with records waiting (catch-up of a "
            "backlog; CLAIMFLOW_ALIGN_DRIFT, CLAIMFLOW_ALIGN_RECORDS).",
            value=len(alignment.paused),
        )
        yield CounterMetricFamily(
            "claimflow_input_pauses",
            "Times an input partition was held back (at its hand-out limit, or paused) to keep "
            "the partitions aligned in event time.",
            value=alignment.pauses,
        )
        yield _by_label(
            CounterMetricFamily,
            "claimflow_ingest_seconds",
            "Seconds the ingest agent spent waiting for Faust to hand it input records, and "
            "forwarding them (judging, bundling, sending, the broker's acknowledgement): while "
            "a backlog drains, waiting far above forwarding means the sequenced hop is not the "
            "limit (Faust's consumer or the detector sharing the process is).",
            "stage",
            self.ingest.seconds,
        )
        yield _by_label(
            CounterMetricFamily,
            "claimflow_ingest_batches",
            "Batches of input records ingest forwarded, by how they reached it: poll (a "
            "consumer poll handed over whole) or stream (Faust's per-record path, about a "
            "third as fast: only when this Faust lacks what the poll hand-over relies on; the "
            "worker logs a warning at start).",
            "path",
            self.ingest.batches,
        )
        yield CounterMetricFamily(
            "claimflow_worker_errors",
            "Sequenced records the engine failed on, snapshot writes, progress reports and "
            "forwards of input records (tried again) that failed (logged with a traceback); "
            "anything above 0 is a bug to report.",
            value=self.detector.errors + self.ingest.errors,
        )
        yield _by_label(
            CounterMetricFamily,
            "claimflow_produce_retries",
            "Sends the broker refused and that were sent again (bundles to the sequenced "
            "topic, alerts, dead letters), by topic: none is counted done before the broker "
            "acknowledged it.",
            "topic",
            self.detector.delivery.retries,
        )
        yield _by_label(
            CounterMetricFamily,
            "claimflow_broker_resets",
            "Times the broker came back empty (topics gone, a log ending below what was "
            "read or applied), by the signal that saw it first: topics recreated, positions "
            "reset to the start of the new logs, detector state kept.",
            "signal",
            self.detector.resets.counts,
            sort=False,
        )
        gaps = self.detector.gaps
        yield _by_label(
            CounterMetricFamily,
            "claimflow_input_gap_records",
            "Input records the sequenced topic skipped (an offset gap after a rebalance): "
            "re-read from the input log (recovered) or no longer there (lost: alert).",
            "outcome",
            {"recovered": gaps.recovered, "lost": gaps.lost},
            sort=False,
        )
        yield CounterMetricFamily(
            "claimflow_foreign_records_skipped",
            "Records read back from claimflow's output topics (no or a malformed "
            "sequence-number header) or state changelog (a key it never writes) that "
            "claimflow did not write: skipped, not fatal.",
            value=self.detector.reader.foreign + table_keys.CODEC.foreign,
        )
        roster = self.detector.roster
        if roster is not None:
            yield CounterMetricFamily(
                "claimflow_roster_reload_errors",
                "Times the staffing roster file changed but did not load (the last good "
                "roster stays in use; the worker log says why).",
                value=roster.errors,
            )
        yield _by_label(
            CounterMetricFamily,
            "claimflow_snapshot_refused",
            "Detector-state snapshots refused on take-over (the state was rebuilt from the "
            "sequenced log instead), by reason: format, missing, damaged, integrity, "
            "unsigned, content.",
            "reason",
            self.detector.snapshots_refused,
        )
        if self.detector.config_file is not None:
            yield CounterMetricFamily(
                "claimflow_config_reload_errors",
                "Times the agreements file changed but did not load (the last good "
                "agreements stay in use; the worker log says why).",
                value=self.detector.config_file.errors,
            )
        live = self.detector.live
        if not running or live is None:
            return
        yield GaugeMetricFamily(
            "claimflow_merge_pending_events",
            "Events held until every input partition has passed their event time.",
            value=len(live.merge.pending),
        )
        yield CounterMetricFamily(
            "claimflow_merge_repeated_records",
            "Input records forwarded a second time (after an ingest restart) and skipped.",
            value=live.merge.repeats,
        )
        yield GaugeMetricFamily(
            "claimflow_snapshot_bytes",
            "Size of the last detector-state snapshot written to the state table (compressed).",
            value=self.detector.last_snapshot_bytes,
        )
