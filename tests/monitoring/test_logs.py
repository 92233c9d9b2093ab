"""The worker's log formats (claimflow/logs.py): JSON is one object a line with the record's
fields and its exception, text has no escape codes; an unknown format is refused up front.
The live worker's log is read as JSON in tests/monitoring/test_observability_e2e.py."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest

from claimflow.logs import logging_config, say


def _logged(fmt: str) -> str:
    out = io.StringIO()
    config = logging_config(fmt, "info")
    config["handlers"]["default"]["stream"] = out
    logging.config.dictConfig(config)
    log = logging.getLogger("claimflow.test")
    log.info("took over %s", "claimflow.sequenced/0", extra={"partition": 0})
    try:
        raise ValueError("bad snapshot")
    except ValueError:
        log.exception("snapshot refused")
    logging.config.dictConfig(logging_config("text", "warn"))
    return out.getvalue()


def test_json_logs_are_one_object_a_line_with_fields_and_exception() -> None:
    lines = _logged("json").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "took over claimflow.sequenced/0"
    assert (first["level"], first["logger"], first["partition"]) == ("info", "claimflow.test", 0)
    assert first["time"].endswith("Z")
    assert second["level"] == "error" and "ValueError: bad snapshot" in second["exception"]


def test_text_logs_have_no_escape_codes() -> None:
    text = _logged("text")
    assert "took over claimflow.sequenced/0" in text and "\x1b" not in text


def test_unknown_format_is_refused_and_startup_lines_follow_the_format() -> None:
    with pytest.raises(ValueError, match="json"):
        logging_config("yaml", "info")
    out = io.StringIO()
    say("json", "claimflow worker claimflow: ready", out, port=6066)
    entry = json.loads(out.getvalue())
    assert entry["message"] == "claimflow worker claimflow: ready" and entry["port"] == 6066


def test_worker_refuses_an_unknown_log_format_before_starting() -> None:
    import os
    import subprocess

    from tests.live_harness import CLI

    env = {**os.environ, "CLAIMFLOW_LOG_FORMAT": "yaml", "CLAIMFLOW_BOOTSTRAP": "127.0.0.1:1"}
    done = subprocess.run(
        [*CLI, "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "CLAIMFLOW_LOG_FORMAT" in done.stderr and "json" in done.stderr


def test_the_faust_worker_leaves_debug_off() -> None:
    """Faust's progress spinner set the root logger to DEBUG whatever the level asked for,
    so every faust/aiokafka debug call on the hot path built a LogRecord to throw away
    (about 3-7% of a draining worker). The worker claimflow builds, once it has set up
    logging as it does at start, must leave debug off at the default level (warn)."""
    import sys

    from claimflow.agents.app import create_app
    from claimflow.agents.worker import faust_worker
    from claimflow.config import load_config
    from claimflow.streams.settings import WorkerSettings

    settings = WorkerSettings()
    root = logging.getLogger()
    saved = (sys.stdout, sys.stderr, root.level, list(root.handlers))
    try:
        app = create_app(settings, load_config())
        worker = faust_worker(app, settings, logging_config("text", settings.log_level))
        worker._setup_logging()  # what the worker runs first when it starts
        levels = {
            name: logging.getLogger(name).isEnabledFor(logging.DEBUG)
            for name in ("", "aiokafka.consumer.fetcher", "faust.transport", "claimflow.detect")
        }
        effective = root.getEffectiveLevel()
    finally:
        sys.stdout, sys.stderr = saved[0], saved[1]
        root.setLevel(saved[2])
        root.handlers[:] = saved[3]
    assert effective == logging.WARNING
    assert not any(levels.values()), levels
