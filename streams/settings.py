"""How the worker connects and where it keeps state: environment variables, overridable by
`claimflow worker` flags. Every variable is listed in docs/worker.md (a test checks it).

Read and validated by pydantic-settings: every value has a type and bounds, and an error names
the variable, its value and what is wrong (`CLAIMFLOW_SNAPSHOT_EVERY='nan': ...`), before
anything starts. Defaults suit the embedded broker on this machine; README and docs/worker.md
say what to change for Apache Kafka.
"""

from __future__ import annotations

import importlib.util
import math
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from claimflow.live.live_engine import LiveSettings
from claimflow.streams.topics import Topics

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
LOG_LEVELS = ("crit", "critical", "error", "warn", "warning", "info", "debug")
ENV_PREFIX = "CLAIMFLOW_"
TOPIC_PREFIX = "topic_"


class SettingsError(ValueError):
    """A setting with a value the worker cannot use; the message names the variable."""


def _at_least(low: float) -> Any:
    def check(value: float) -> float:
        if not math.isfinite(value) or value < low:
            raise ValueError(f"must be a finite number, at least {low:g}")
        return value

    return AfterValidator(check)


def _above_zero(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a finite number above 0")
    return value


def _whole_at_least(low: int, high: int) -> Any:
    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"must be at least {low}")
        if value > high:
            raise ValueError(f"must be at most {high}")
        return value

    return AfterValidator(check)


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("not a TCP port")
    return value


def _topic(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 249 or any(c.isspace() for c in value):
        raise ValueError("not a Kafka topic name (1 to 249 characters, no spaces)")
    return value


Seconds = Annotated[float, AfterValidator(_above_zero)]
TopicName = Annotated[str, AfterValidator(_topic)]


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    bootstrap: str = "127.0.0.1:9092"  # host:port[,host:port...]
    config: Path | None = None  # agreements YAML; None: the bundled example
    staffing: Path | None = None  # roster and skills YAML (docs/staffing.md); None: no advice
    staffing_check_every: Seconds = 10.0  # seconds between looks at the roster file for changes
    config_check_every: Seconds = 10.0  # seconds between looks at the agreements file
    app_id: Annotated[str, Field(min_length=1, max_length=200)] = "claimflow"
    store: str = "memory://"  # or rocksdb:// (needs the rocksdict package)
    data_dir: Path = Path("claimflow-data")
    web_host: str = "127.0.0.1"  # the address other workers and Prometheus reach this one at
    web_bind: str | None = None  # the address to listen on; None: web_host
    web_port: Annotated[int, AfterValidator(_port)] = 6066
    # Bearer token for the views that show claim ids and comments (agents/web.py); without
    # one those views answer only on a loopback bind.
    view_token: str | None = Field(default=None, repr=False)
    view_token_file: Path | None = None
    # Key of the HMAC-SHA256 that signs detector-state snapshots (claimflow/live/snapshots.py).
    snapshot_key: str | None = Field(default=None, repr=False)
    snapshot_key_file: Path | None = None
    partitions: Annotated[int, _whole_at_least(1, 10_000)] = 4  # for input topics it creates
    replication: Annotated[int, _whole_at_least(1, 100)] = 1
    session_timeout: Annotated[float, _at_least(1.0)] = 10.0
    heartbeat_interval: Annotated[float, _at_least(0.05)] = 1.0
    producer_max_batch_bytes: Annotated[int, _whole_at_least(1, 64 * 1024 * 1024)] = 1
    commit_interval: Annotated[float, _at_least(0.1)] = 2.8
    snapshot_every: Annotated[float, _at_least(0.5)] = 10.0  # wall seconds between snapshots
    # ... while records wait (a catch-up): a snapshot costs a memory transient and a pause
    # (once 30 MB and 5-10% of a catch-up), and redoing the work since the last one after a
    # crash is engine-fast.
    snapshot_behind_every: Annotated[float, _at_least(0.5)] = 300.0
    progress_every: Annotated[float, _at_least(0.1)] = 0.25  # s between reports (while busy)
    # Seconds after a record was read that a partition must be known caught up *as of* (the
    # send time of the fetch that gave its end: streams/fetch_times.py) to vouch for it: a
    # margin for the wall clocks of different workers, no longer for stale partition ends
    # (2 s did that, and 0.5 s misordered records in CI when fetch responses were processed
    # late under load).
    idle_after: Annotated[float, _at_least(0.0)] = 0.25
    # Seconds a fetch waits at the broker for records (Faust fixes aiokafka's at 1.5 s): how
    # often an idle partition's end is refreshed (so part of the live latency), and what a
    # backlog read waits for each time the partitions being read share a fetch with ones
    # that are not.
    fetch_max_wait: Annotated[float, _at_least(0.01)] = 0.1
    # Bytes one fetch response may carry (aiokafka's default is 50 MB): what partitions held
    # back in a catch-up keep buffered is at most about this much each (agents/ingest.py).
    # At least 512 KiB, so that a bundle of forwarded records always fits.
    fetch_max_bytes: Annotated[int, _whole_at_least(512 * 1024, 64 * 1024 * 1024)] = 1024 * 1024
    max_hold: Annotated[float, _at_least(0.5)] = 30.0
    idle_clock_after: Annotated[float, _at_least(0.0)] = 60.0  # 0 turns the wall-clock advance off
    log_level: str = "warn"
    log_format: str = "text"  # or json: one object a line (claimflow/logs.py)
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = Field(default=None, repr=False)
    # Topic names: CLAIMFLOW_TOPIC_<FIELD of claimflow.streams.topics.Topics>.
    topic_hub_dispatched: TopicName = Topics.hub_dispatched
    topic_claim_arrived: TopicName = Topics.claim_arrived
    topic_claim_completed: TopicName = Topics.claim_completed
    topic_survey_response: TopicName = Topics.survey_response
    topic_alerts: TopicName = Topics.alerts
    topic_deadletter: TopicName = Topics.deadletter
    topic_sequenced: TopicName = Topics.sequenced
    # Input records larger than this are refused (`too_large`); a forwarded record must fit
    # in the broker's 1 MB limit.
    max_event_bytes: Annotated[int, _whole_at_least(1024, 900 * 1024)] = 256 * 1024
    # Seconds an event may be dated ahead of the wall clock that read it (`future_timestamp`).
    future_tolerance: Annotated[float, _at_least(0.0)] = 600.0
    # Seconds of event time an input partition may run ahead of the slowest one with records
    # waiting before it is held back (claimflow/live/alignment.py); 0 turns alignment off.
    align_drift: Annotated[float, _at_least(0.0)] = 1800.0
    # Records the partitions with records waiting may forward ahead of the slowest, shared
    # among them: past the drift, a partition is held back only when its own density times
    # its lead exceeds its share (claimflow/live/alignment.py); 0 leaves the drift alone.
    align_records: Annotated[int, _whole_at_least(0, 10_000_000)] = 10_000

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (init) win over variables; no .env file, no secrets folder.
        return (init_settings, _MappingEnv(settings_cls))

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        _check(self)
        return self

    @property
    def topics(self) -> Topics:
        return Topics(
            **{
                name.removeprefix(TOPIC_PREFIX): getattr(self, name)
                for name in type(self).model_fields
                if name.startswith(TOPIC_PREFIX)
            }
        )

    @property
    def live(self) -> LiveSettings:
        return LiveSettings(self.idle_after, self.max_hold, self.idle_clock_after)

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def listen_host(self) -> str:
        return self.web_bind or self.web_host

    def secret(self, name: str) -> str | None:
        """`view_token` or `snapshot_key`: the value, or the first line of its `_file`."""
        value: str | None = getattr(self, name)
        path: Path | None = getattr(self, f"{name}_file")
        if value is None and path is not None:
            value = path.read_text("utf-8").strip()
        return value

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


_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("claimflow_settings_env", default=None)


class _MappingEnv(EnvSettingsSource):
    """The environment, or the mapping `from_env` was given (tests, embedding)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENV.get()
        if env is None:
            return super()._load_env_vars()
        return {key.lower(): value for key, value in env.items() if value != ""}


@contextmanager
def _reading(env: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENV.set(env)
    try:
        yield
    finally:
        _ENV.reset(token)


def env_names() -> dict[str, str]:
    """Variable -> field, e.g. CLAIMFLOW_TOPIC_ALERTS -> topic_alerts."""
    return {f"{ENV_PREFIX}{name.upper()}": name for name in WorkerSettings.model_fields}


_NUMBER_FIELDS = {
    name for name, info in WorkerSettings.model_fields.items() if info.annotation in (int, float)
}
_PATH_FIELDS = {
    name for name, info in WorkerSettings.model_fields.items() if "Path" in str(info.annotation)
}
_SECRET_FIELDS = {"view_token", "snapshot_key", "sasl_password"}


def from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
    """Settings from CLAIMFLOW_* variables; `overrides` (flags given) win over them."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        with _reading(env):
            return WorkerSettings(**given)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines: list[str] = []
    for error in exc.errors():
        msg = str(error["msg"]).removeprefix("Value error, ")
        loc = [str(part) for part in error["loc"]]
        if not loc:  # a check across variables: its message names them
            lines.append(msg)
            continue
        name = loc[0]
        var = f"{ENV_PREFIX}{name.upper()}"
        raw = error.get("input")
        if name in _SECRET_FIELDS:
            shown = "<hidden>"
        elif name in _PATH_FIELDS or (name in _NUMBER_FIELDS and _is_number(raw)):
            shown = str(raw)
        else:
            shown = repr(raw)
        if error["type"] == "int_parsing":
            msg = "expected a whole number"
        elif error["type"] == "float_parsing":
            msg = "expected a number"
        elif error["type"] == "extra_forbidden":
            msg = "not a setting"
        lines.append(f"{var}={shown}: {msg}")
    return "\n".join(lines)


def _is_number(raw: Any) -> bool:
    try:
        float(raw)
    except (TypeError, ValueError):
        return False
    return True


def _check(s: WorkerSettings) -> None:  # noqa: PLR0912 - one branch per cross-setting rule, each with its own message
    """Checks across fields and of the outside world; the message names the variables."""
    if not s.bootstrap_servers:
        raise ValueError("CLAIMFLOW_BOOTSTRAP is empty: give host:port of a Kafka broker")
    if not s.store.startswith(("memory://", "rocksdb://")):
        raise ValueError(f"CLAIMFLOW_STORE={s.store!r}: use memory:// or rocksdb://")
    if s.log_level.lower() not in LOG_LEVELS:
        raise ValueError(
            f"CLAIMFLOW_LOG_LEVEL={s.log_level!r}: one of crit, error, warn, info, debug"
        )
    if s.log_format not in ("text", "json"):
        raise ValueError(f"CLAIMFLOW_LOG_FORMAT={s.log_format!r}: one of text, json")
    if s.security_protocol not in SECURITY_PROTOCOLS:
        raise ValueError(
            f"CLAIMFLOW_SECURITY_PROTOCOL={s.security_protocol!r}: one of "
            + ", ".join(SECURITY_PROTOCOLS)
        )
    if "SASL" in s.security_protocol:
        if s.sasl_mechanism not in SASL_MECHANISMS:
            raise ValueError(
                f"CLAIMFLOW_SASL_MECHANISM={s.sasl_mechanism!r}: one of "
                + ", ".join(SASL_MECHANISMS)
            )
        if not s.sasl_username or s.sasl_password is None:
            raise ValueError("SASL needs CLAIMFLOW_SASL_USERNAME and CLAIMFLOW_SASL_PASSWORD")
    for name in sorted(_PATH_FIELDS - {"config", "data_dir"}):
        path = getattr(s, name)
        if path is not None and not Path(path).is_file():
            raise ValueError(f"CLAIMFLOW_{name.upper()}={path}: no such file")
    for name in ("view_token", "snapshot_key"):
        if getattr(s, name) is not None and getattr(s, f"{name}_file") is not None:
            raise ValueError(
                f"CLAIMFLOW_{name.upper()} and CLAIMFLOW_{name.upper()}_FILE are both set: give one"
            )
        try:
            secret = s.secret(name)
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"CLAIMFLOW_{name.upper()}_FILE: cannot read: {exc}") from None
        if secret is not None and len(secret) < 16:
            raise ValueError(
                f"CLAIMFLOW_{name.upper()}(_FILE): at least 16 characters (a random string)"
            )
    if s.heartbeat_interval * 3 > s.session_timeout:
        raise ValueError(
            "CLAIMFLOW_HEARTBEAT_INTERVAL must be at most a third of CLAIMFLOW_SESSION_TIMEOUT"
        )
    if s.commit_interval > s.session_timeout * 10:
        raise ValueError("CLAIMFLOW_COMMIT_INTERVAL must be at most 10 x CLAIMFLOW_SESSION_TIMEOUT")
    if s.max_hold < s.idle_after:
        raise ValueError("CLAIMFLOW_MAX_HOLD must be at least CLAIMFLOW_IDLE_AFTER")
    topics = s.topics
    inputs = list(topics.inputs())
    if len(inputs) != 4:
        raise ValueError("the four CLAIMFLOW_TOPIC_* input topics must have different names")
    for name in ("alerts", "deadletter", "sequenced"):
        value = getattr(topics, name)
        if value in inputs:
            raise ValueError(
                f"CLAIMFLOW_TOPIC_{name.upper()}={value!r} is also an input topic: "
                "the worker would read its own output"
            )
    if len({topics.alerts, topics.deadletter, topics.sequenced}) != 3:
        raise ValueError(
            "CLAIMFLOW_TOPIC_ALERTS, CLAIMFLOW_TOPIC_DEADLETTER and CLAIMFLOW_TOPIC_SEQUENCED "
            "must be different topics"
        )
    if s.store.startswith("rocksdb://") and importlib.util.find_spec("rocksdict") is None:
        raise ValueError(
            "CLAIMFLOW_STORE=rocksdb:// needs the rocksdict package: "
            "pip install 'claimflow[rocksdb]'"
        )
