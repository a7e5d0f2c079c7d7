"""Log lines: text (UTC timestamps with their zone) or one JSON object a line, both carrying the request id.

The request id lives in a context variable that the access-log middleware sets for each request; FastAPI's
thread pool copies the context, so every line logged while serving a request (access, audit, errors) names it.
Audit events arrive with their fields in `record.audit` and become fields of the JSON object.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import json
import logging
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("pocketca_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or '-') on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class UTCFormatter(logging.Formatter):
    """`2026-12-01T21:51:24.123Z INFO pocketca.access GET /healthz 200 ... request_id=3f0c…`: UTC, with its zone,
    whatever the machine's TZ; the request id last, on the lines logged for a request."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{line} request_id={rid}" if rid and rid != "-" else line

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record.created)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "message": record.getMessage(),
        }
        audit = getattr(record, "audit", None)
        if isinstance(audit, dict):
            document["message"] = f"{audit.get('action')} {audit.get('outcome')}"
            document.update({k: v for k, v in audit.items() if k not in document})
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            document.update({k: v for k, v in fields.items() if k not in document})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, separators=(",", ":"))


def _utc(created: float) -> str:
    """`2026-12-01T21:51:24.123Z`; the part up to the second is made once a second, not once a line."""
    second = int(created)
    prefix = _second_prefix(second)
    return f"{prefix}.{int((created - second) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _second_prefix(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def lighten_records() -> None:
    """Neither format prints a record's thread, process or source line, so no record gathers them: the logging
    HOWTO's "Optimization" settings, about a fifth of what a log line costs (the access line is on every request)."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the HOWTO's own switch for caller lookups


def log_config(log_format: str = "text", level: str = "info") -> dict[str, Any]:
    """The logging dictConfig `serve` gives uvicorn (and so every worker)."""
    lighten_records()
    formatter = {"()": JSONFormatter} if log_format == "json" else {"()": UTCFormatter, "format": TEXT_FORMAT}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "stream": "ext://sys.stderr",
        "filters": ["request_id"],
    }
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"main": formatter},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level if level != "DEBUG" else "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "pocketca": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }
