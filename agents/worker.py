"""Starting the live worker: checks that fail fast with a clear message, then Faust."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import TYPE_CHECKING, Any

from claimflow.config import load_config
from claimflow.logs import logging_config, say
from claimflow.streams.settings import WorkerSettings

if TYPE_CHECKING:
    import faust
    from faust.worker import Worker


class WorkerError(RuntimeError):
    """The worker cannot start; the message says why and what to do."""


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise WorkerError(
                f"web port {host}:{port} is taken ({exc.strerror}): "
                "stop what uses it or give --web-port"
            ) from None


def check_broker(settings: WorkerSettings, timeout: float = 10.0) -> None:
    """A broker that does not answer at all is a configuration problem, said up front; Faust
    would otherwise retry silently for a long time."""
    last: OSError | None = None
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return
        except (OSError, ValueError) as exc:
            last = exc if isinstance(exc, OSError) else OSError(str(exc))
    raise WorkerError(
        f"no Kafka broker answers at {settings.bootstrap} ({last}); start one "
        "(`claimflow broker`) or set CLAIMFLOW_BOOTSTRAP / --bootstrap"
    )


def views_note(settings: WorkerSettings) -> str:
    """Who may see the claim-level views, said at start (docs/operations.md, Security)."""
    from claimflow.agents.web import is_loopback

    if settings.secret("view_token") is not None:
        return "wall and IT views: with the view token (CLAIMFLOW_VIEW_TOKEN)"
    if is_loopback(settings.listen_host):
        return "wall and IT views: this machine only (loopback bind, no view token)"
    return (
        f"wall and IT views: refused (listening on {settings.listen_host} without "
        "CLAIMFLOW_VIEW_TOKEN); /metrics and health answer"
    )


def run_worker(settings: WorkerSettings) -> int:
    from claimflow.agents.app import create_app, kafka_auth
    from claimflow.streams.declare import TopicError, ensure_topics

    try:
        log_config = logging_config(settings.log_format, settings.log_level)
    except ValueError as exc:
        raise WorkerError(f"CLAIMFLOW_LOG_FORMAT: {exc}") from None
    config = load_config(settings.config)
    check_port_free(settings.web_bind or settings.web_host, settings.web_port)
    check_broker(settings)
    try:
        created = asyncio.run(ensure_topics(settings, kafka_auth(settings)))
    except TopicError as exc:
        raise WorkerError(str(exc)) from None
    fmt = settings.log_format
    if created:
        say(fmt, f"created topics: {', '.join(created)}", topics=",".join(created))
    app = create_app(settings, config)
    say(fmt, views_note(settings))
    say(
        fmt,
        f"claimflow worker {settings.app_id}: Kafka {settings.bootstrap}, "
        f"metrics {settings.web_url}/metrics, IT views {settings.web_url}/it/routes",
    )
    worker = faust_worker(app, settings, log_config)
    worker.execute_from_commandline()  # returns only through SystemExit
    return 0


def faust_worker(app: faust.App, settings: WorkerSettings, log_config: dict[str, Any]) -> Worker:
    """The Faust worker that runs `app`, logging with `log_config` at the settings' level."""
    from faust.worker import Worker

    from claimflow.agents.dump import dump

    class _Worker(Worker):
        def _on_sigusr1(self) -> None:
            """`kill -USR1`: every task's whole chain of awaits (agents/dump.py), in place
            of mode's dump, which stops at the first async generator and prints locals."""
            dump(sys.stderr, self.app)

    worker = _Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=log_config,
    )
    # Faust's progress spinner hooks a handler onto the root logger and sets that logger to
    # DEBUG, so every debug call in faust and aiokafka built a LogRecord to throw away: about
    # 3-7% of a busy worker (py-spy), whatever the log level asked for. No spinner, no cost.
    # tests/monitoring/test_logs.py checks that debug stays off once the worker has set up logging.
    worker.spinner = None
    return worker
