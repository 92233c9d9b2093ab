"""Attack: environment settings that make no sense.

NaN, 0, infinity and negative values for the intervals, a progress report every 0 seconds
(1,013 records in 10 s while idle), an output topic that is also an input topic (the worker
feeds itself): each used to be accepted. Now each stops the worker before it starts, with a
message naming the variable.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from claimflow.streams.settings import SettingsError, from_env

pytestmark = pytest.mark.attack
INTERVALS = (
    "SNAPSHOT_EVERY",
    "SNAPSHOT_BEHIND_EVERY",
    "MAX_HOLD",
    "COMMIT_INTERVAL",
    "HEARTBEAT_INTERVAL",
    "PROGRESS_EVERY",
    "SESSION_TIMEOUT",
    "STAFFING_CHECK_EVERY",
    "CONFIG_CHECK_EVERY",
    "FETCH_MAX_WAIT",
)


@pytest.mark.parametrize("name", INTERVALS)
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "0", "-1", "1e309", "ten"])
def test_nonsense_intervals_are_refused_naming_the_variable(name: str, value: str) -> None:
    var = f"CLAIMFLOW_{name}"
    with pytest.raises(SettingsError, match=f"^{var}="):
        from_env({var: value})


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "1e309", "ten"])
def test_nonsense_margins_are_refused_and_zero_is_not(value: str) -> None:
    """CLAIMFLOW_IDLE_AFTER is a margin for clocks between workers: 0 is a choice (one
    worker, one clock), the rest is nonsense."""
    with pytest.raises(SettingsError, match=r"^CLAIMFLOW_IDLE_AFTER="):
        from_env({"CLAIMFLOW_IDLE_AFTER": value})
    assert from_env({"CLAIMFLOW_IDLE_AFTER": "0"}).idle_after == 0.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLAIMFLOW_TOPIC_ALERTS": "claims.arrived"}, "CLAIMFLOW_TOPIC_ALERTS='claims.arrived'"),
        ({"CLAIMFLOW_TOPIC_DEADLETTER": "claims.surveys"}, "also an input topic"),
        ({"CLAIMFLOW_TOPIC_SEQUENCED": "claims.completed"}, "CLAIMFLOW_TOPIC_SEQUENCED"),
        ({"CLAIMFLOW_TOPIC_ALERTS": "claimflow.deadletter"}, "must be different topics"),
        ({"CLAIMFLOW_TOPIC_CLAIM_ARRIVED": "claims.completed"}, "different names"),
        ({"CLAIMFLOW_TOPIC_ALERTS": "two words"}, "CLAIMFLOW_TOPIC_ALERTS='two words'"),
        ({"CLAIMFLOW_PARTITIONS": "-3"}, "CLAIMFLOW_PARTITIONS=-3: must be at least 1"),
        ({"CLAIMFLOW_MAX_HOLD": "1", "CLAIMFLOW_IDLE_AFTER": "5"}, "CLAIMFLOW_MAX_HOLD must be"),
        ({"CLAIMFLOW_ALIGN_DRIFT": "-1"}, "CLAIMFLOW_ALIGN_DRIFT=-1"),
        ({"CLAIMFLOW_ALIGN_DRIFT": "nan"}, "CLAIMFLOW_ALIGN_DRIFT=nan"),
        ({"CLAIMFLOW_VIEW_TOKEN": "short"}, "CLAIMFLOW_VIEW_TOKEN(_FILE): at least 16"),
        ({"CLAIMFLOW_LOG_LEVEL": "loud"}, "CLAIMFLOW_LOG_LEVEL='loud'"),
        ({"CLAIMFLOW_PRODUCER_MAX_BATCH_BYTES": "0"}, "CLAIMFLOW_PRODUCER_MAX_BATCH_BYTES=0"),
    ],
)
def test_inconsistent_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        from_env(env)
    assert message in str(error.value)


def test_a_secret_never_appears_in_an_error_or_the_repr() -> None:
    with pytest.raises(SettingsError) as error:
        from_env({"CLAIMFLOW_VIEW_TOKEN": "tiny-secret"})
    assert "tiny-secret" not in str(error.value)
    settings = from_env(
        {"CLAIMFLOW_VIEW_TOKEN": "a-long-view-token-123", "CLAIMFLOW_SNAPSHOT_KEY": "k" * 32}
    )
    assert "a-long-view-token-123" not in repr(settings) and "k" * 32 not in repr(settings)


def test_the_worker_stops_before_starting_on_progress_every_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claimflow.cli", "worker"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CLAIMFLOW_PROGRESS_EVERY": "0"},
    )
    assert done.returncode == 2
    assert "CLAIMFLOW_PROGRESS_EVERY=0: must be a finite number, at least 0.1" in done.stderr
    assert "Traceback" not in done.stderr
