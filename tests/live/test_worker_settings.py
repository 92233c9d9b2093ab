"""The worker's settings and start-up checks: every mistake stops it with a message that
names the variable or the problem, before Faust starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from claimflow.streams.settings import SettingsError, from_env
from claimflow.tools.broker import free_port


def test_defaults_and_overrides() -> None:
    settings = from_env({})
    assert (settings.bootstrap_servers, settings.web_port, settings.store) == (
        ["127.0.0.1:9092"],
        6066,
        "memory://",
    )
    env = {
        "CLAIMFLOW_BOOTSTRAP": "k1:9092, k2:9092",
        "CLAIMFLOW_WEB_PORT": "7000",
        "CLAIMFLOW_TOPIC_ALERTS": "ops.alerts",
        "CLAIMFLOW_SNAPSHOT_EVERY": "2.5",
        "CLAIMFLOW_FETCH_MAX_BYTES": "2097152",
    }
    settings = from_env(env, web_port=7100)  # a flag wins over the variable
    assert settings.bootstrap_servers == ["k1:9092", "k2:9092"]
    assert settings.web_port == 7100
    assert settings.topics.alerts == "ops.alerts"
    assert settings.topics.claim_arrived == "claims.arrived"
    assert settings.snapshot_every == 2.5
    assert settings.fetch_max_bytes == 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLAIMFLOW_WEB_PORT": "http"}, "CLAIMFLOW_WEB_PORT='http': expected a whole number"),
        ({"CLAIMFLOW_WEB_PORT": "70000"}, "CLAIMFLOW_WEB_PORT=70000: not a TCP port"),
        ({"CLAIMFLOW_STORE": "redis://"}, "CLAIMFLOW_STORE='redis://'"),
        ({"CLAIMFLOW_SECURITY_PROTOCOL": "TLS"}, "CLAIMFLOW_SECURITY_PROTOCOL='TLS': one of"),
        (
            {"CLAIMFLOW_SECURITY_PROTOCOL": "SASL_SSL", "CLAIMFLOW_SASL_USERNAME": "u"},
            "SASL needs CLAIMFLOW_SASL_USERNAME and CLAIMFLOW_SASL_PASSWORD",
        ),
        (
            {
                "CLAIMFLOW_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "CLAIMFLOW_SASL_MECHANISM": "GSSAPI",
                "CLAIMFLOW_SASL_USERNAME": "u",
                "CLAIMFLOW_SASL_PASSWORD": "p",
            },
            "CLAIMFLOW_SASL_MECHANISM='GSSAPI'",
        ),
        ({"CLAIMFLOW_SSL_CAFILE": "/nonexistent/ca.pem"}, "CLAIMFLOW_SSL_CAFILE=/nonexistent"),
        ({"CLAIMFLOW_PARTITIONS": "0"}, "CLAIMFLOW_PARTITIONS=0: must be at least 1"),
        ({"CLAIMFLOW_FETCH_MAX_BYTES": "1000"}, "CLAIMFLOW_FETCH_MAX_BYTES=1000: must be at least"),
        (
            {"CLAIMFLOW_SESSION_TIMEOUT": "2", "CLAIMFLOW_HEARTBEAT_INTERVAL": "1"},
            "at most a third of CLAIMFLOW_SESSION_TIMEOUT",
        ),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("?", r"\?")):
        from_env(env)


def test_the_password_is_not_in_the_settings_repr() -> None:
    settings = from_env(
        {
            "CLAIMFLOW_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "CLAIMFLOW_SASL_USERNAME": "svc",
            "CLAIMFLOW_SASL_PASSWORD": "s3cret-value",
        }
    )
    assert "s3cret-value" not in repr(settings)


def _worker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claimflow.cli", "worker", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_worker_without_a_broker_says_so_and_how_to_fix_it() -> None:
    port = free_port()  # nothing listens there
    done = _worker("--bootstrap", f"127.0.0.1:{port}", "--web-port", str(free_port()))
    assert done.returncode == 2
    assert f"no Kafka broker answers at 127.0.0.1:{port}" in done.stderr
    assert "claimflow broker" in done.stderr


def test_worker_with_its_web_port_taken_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _worker("--web-port", str(port))
    assert done.returncode == 2
    assert f"web port 127.0.0.1:{port} is taken" in done.stderr


def test_worker_with_a_bad_variable_stops_before_starting() -> None:
    done = _worker(env={**os.environ, "CLAIMFLOW_STORE": "s3://bucket"})
    assert done.returncode == 2
    assert "CLAIMFLOW_STORE='s3://bucket': use memory:// or rocksdb://" in done.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "this machine only"),
        ({"CLAIMFLOW_WEB_BIND": "0.0.0.0"}, "refused (listening on 0.0.0.0"),
        (
            {"CLAIMFLOW_WEB_BIND": "0.0.0.0", "CLAIMFLOW_VIEW_TOKEN": "t" * 20},
            "with the view token",
        ),
    ],
)
def test_the_worker_says_who_may_see_the_views(env: dict[str, str], expected: str) -> None:
    from claimflow.agents.worker import views_note

    assert expected in views_note(from_env(env))


def test_secrets_may_come_from_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-a-file-0123456789\n")
    settings = from_env({"CLAIMFLOW_VIEW_TOKEN_FILE": str(token)})
    assert settings.secret("view_token") == "from-a-file-0123456789"
    with pytest.raises(SettingsError, match="CLAIMFLOW_VIEW_TOKEN_FILE=/nonexistent: no such file"):
        from_env({"CLAIMFLOW_VIEW_TOKEN_FILE": "/nonexistent"})
    with pytest.raises(SettingsError, match="both set"):
        from_env({"CLAIMFLOW_VIEW_TOKEN_FILE": str(token), "CLAIMFLOW_VIEW_TOKEN": "x" * 20})
