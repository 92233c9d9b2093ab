"""The worker's log format: `text` for a person at a terminal, `json` (one object a line,
no escape codes) for a log collector. CLAIMFLOW_LOG_FORMAT picks one; the deploy files set
json. Faust/mode would otherwise install its coloured handler, whose escape codes end up in
log files."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

FORMATS = ("text", "json")
# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (RFC 3339, UTC), level, logger, message, the
    exception as text, and the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        return json.dumps(entry, ensure_ascii=False)


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """A dictConfig for the root logger on stderr in `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    level = {"warn": "WARNING"}.get(level.lower(), level.upper())
    formatters = {
        "json": {"()": JsonFormatter},
        "text": {"format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {fmt: formatters[fmt]},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
    }


def say(fmt: str, message: str, out: IO[str] | None = None, **fields: Any) -> None:
    """A startup line before logging is set up, in the chosen format."""
    out = out or sys.stderr
    if fmt == "json":
        record = logging.LogRecord("claimflow.worker", logging.INFO, "", 0, message, None, None)
        record.__dict__.update(fields)
        print(JsonFormatter().format(record), file=out, flush=True)
    else:
        print(message, file=out, flush=True)
