"""How the worker connects and where it keeps state: environment variables, overridable by
`claimflow worker` flags. Every variable is listed in docs/worker.md (a test checks it).

Defaults suit the embedded broker on this machine; README and docs/worker.md say what to
change for Apache Kafka.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from claimflow.sequencer import LiveSettings
from claimflow.streams.topics import Topics

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SettingsError(ValueError):
    """A setting with a value the worker cannot use; the message names the variable."""


@dataclass(frozen=True)
class WorkerSettings:
    bootstrap: str = "127.0.0.1:9092"  # host:port[,host:port...]
    config: Path | None = None  # agreements YAML; None: the bundled example
    staffing: Path | None = None  # roster and skills YAML (docs/staffing.md); None: no advice
    staffing_check_every: float = 10.0  # seconds between looks at the roster file for changes
    app_id: str = "claimflow"  # the consumer group; prefixes changelog topic names
    store: str = "memory://"  # or rocksdb:// (needs the rocksdict package)
    data_dir: Path = Path("claimflow-data")
    web_host: str = "127.0.0.1"  # the address other workers and Prometheus reach this one at
    web_bind: str | None = None  # the address to listen on; None: web_host
    web_port: int = 6066
    partitions: int = 4  # for input topics the worker creates
    replication: int = 1
    session_timeout: float = 10.0
    heartbeat_interval: float = 1.0
    producer_max_batch_bytes: int = 1  # 1: a record per request, right on every broker
    commit_interval: float = 2.8
    snapshot_every: float = 10.0  # seconds of wall time between state snapshots
    progress_every: float = 1.0  # seconds between ingest progress reports
    idle_after: float = 2.0
    max_hold: float = 30.0
    idle_clock_after: float = 60.0  # 0 turns the wall-clock advance off (backfills, tests)
    log_level: str = "warn"
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    topics: Topics = field(default_factory=Topics)
    max_event_bytes: int = 256 * 1024  # larger input records are refused (`too_large`)
    future_tolerance: float = 600.0  # seconds an event may be dated ahead of the wall clock

    @property
    def live(self) -> LiveSettings:
        return LiveSettings(self.idle_after, self.max_hold, self.idle_clock_after)

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if "SSL" not in self.security_protocol:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context


# Variable -> field. Topic names: CLAIMFLOW_TOPIC_<FIELD> (e.g. CLAIMFLOW_TOPIC_ALERTS).
ENV_PREFIX = "CLAIMFLOW_"


def env_names() -> dict[str, str]:
    names = {f"{ENV_PREFIX}{f.name.upper()}": f.name for f in fields(WorkerSettings)}
    del names[f"{ENV_PREFIX}TOPICS"]
    for f in fields(Topics):
        names[f"{ENV_PREFIX}TOPIC_{f.name.upper()}"] = f"topics.{f.name}"
    return names


def from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
    """Settings from CLAIMFLOW_* variables; `overrides` (flags given) win over them."""
    env = os.environ if env is None else env
    defaults = WorkerSettings()
    values: dict[str, Any] = {}
    topic_values: dict[str, str] = {}
    types = {f.name: type(getattr(defaults, f.name)) for f in fields(WorkerSettings)}
    for var, name in env_names().items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        if name.startswith("topics."):
            topic_values[name.removeprefix("topics.")] = raw
            continue
        values[name] = _parse(var, name, raw, types[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    if topic_values:
        values["topics"] = Topics(**topic_values)
    settings = WorkerSettings(**values)
    _check(settings)
    return settings


_PATH_FIELDS = {"config", "staffing", "data_dir", "ssl_cafile", "ssl_certfile", "ssl_keyfile"}


def _parse(var: str, name: str, raw: str, kind: type) -> Any:
    if name in _PATH_FIELDS:
        return Path(raw)
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        expected = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{var}={raw!r}: expected {expected}") from None
    return raw


def _check(s: WorkerSettings) -> None:
    if not s.bootstrap_servers:
        raise SettingsError("CLAIMFLOW_BOOTSTRAP is empty: give host:port of a Kafka broker")
    if not s.store.startswith(("memory://", "rocksdb://")):
        raise SettingsError(f"CLAIMFLOW_STORE={s.store!r}: use memory:// or rocksdb://")
    if s.security_protocol not in SECURITY_PROTOCOLS:
        raise SettingsError(
            f"CLAIMFLOW_SECURITY_PROTOCOL={s.security_protocol!r}: one of "
            + ", ".join(SECURITY_PROTOCOLS)
        )
    if "SASL" in s.security_protocol:
        if s.sasl_mechanism not in SASL_MECHANISMS:
            raise SettingsError(
                f"CLAIMFLOW_SASL_MECHANISM={s.sasl_mechanism!r}: one of "
                + ", ".join(SASL_MECHANISMS)
            )
        if not s.sasl_username or s.sasl_password is None:
            raise SettingsError("SASL needs CLAIMFLOW_SASL_USERNAME and CLAIMFLOW_SASL_PASSWORD")
    for name in ("staffing", "ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(s, name)
        if path is not None and not Path(path).is_file():
            raise SettingsError(f"CLAIMFLOW_{name.upper()}={path}: no such file")
    if not 1 <= s.web_port <= 65535:
        raise SettingsError(f"CLAIMFLOW_WEB_PORT={s.web_port}: not a TCP port")
    for name in ("partitions", "replication"):
        if getattr(s, name) < 1:
            raise SettingsError(f"CLAIMFLOW_{name.upper()}={getattr(s, name)}: must be at least 1")
    if not 1024 <= s.max_event_bytes <= 900 * 1024:
        raise SettingsError(
            f"CLAIMFLOW_MAX_EVENT_BYTES={s.max_event_bytes}: between 1024 and 921600 (a "
            "forwarded record must fit in the broker's 1 MB limit)"
        )
    if not 0 <= s.future_tolerance < float("inf"):
        raise SettingsError(f"CLAIMFLOW_FUTURE_TOLERANCE={s.future_tolerance}: 0 or more seconds")
    if s.staffing_check_every <= 0:
        raise SettingsError(
            f"CLAIMFLOW_STAFFING_CHECK_EVERY={s.staffing_check_every}: must be above 0"
        )
    if s.heartbeat_interval * 3 > s.session_timeout:
        raise SettingsError(
            "CLAIMFLOW_HEARTBEAT_INTERVAL must be at most a third of CLAIMFLOW_SESSION_TIMEOUT"
        )
    if s.store.startswith("rocksdb://") and importlib.util.find_spec("rocksdict") is None:
        raise SettingsError(
            "CLAIMFLOW_STORE=rocksdb:// needs the rocksdict package: "
            "pip install 'claimflow[rocksdb]'"
        )
