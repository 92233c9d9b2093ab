"""Starting the live worker: checks that fail fast with a clear message, then Faust."""

from __future__ import annotations

import asyncio
import socket
import sys

from claimflow.config import load_config
from claimflow.streams.settings import WorkerSettings


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
    from faust.worker import Worker

    from claimflow.agents.app import create_app, kafka_auth
    from claimflow.streams.declare import TopicError, ensure_topics

    config = load_config(settings.config)
    check_port_free(settings.web_bind or settings.web_host, settings.web_port)
    check_broker(settings)
    try:
        created = asyncio.run(ensure_topics(settings, kafka_auth(settings)))
    except TopicError as exc:
        raise WorkerError(str(exc)) from None
    if created:
        print(f"created topics: {', '.join(created)}", file=sys.stderr)
    app = create_app(settings, config)
    print(views_note(settings), file=sys.stderr, flush=True)
    print(
        f"claimflow worker {settings.app_id}: Kafka {settings.bootstrap}, "
        f"metrics {settings.web_url}/metrics, IT views {settings.web_url}/it/routes",
        file=sys.stderr,
        flush=True,
    )
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()  # returns only through SystemExit
    return 0
