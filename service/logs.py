"""Log lines: text (UTC timestamps with their zone) or one JSON object a line, both carrying the request id.

The request id lives in a context variable that the access-log middleware sets for each request; FastAPI's
thread pool copies the context, so every line logged while serving a request (access, audit, errors) names it.
Audit events arrive with their fields in `record.audit` and become fields of the JSON object.

A text line is one record: whatever a client sent that a line carries (a path, a header, a CN, a user agent, a
problem's detail) cannot start another. The text formatter escapes, in one place, every control character
(C0, DEL, C1 such as U+0085), format character (U+202E...), line and paragraph separator (U+2028, U+2029) and lone
surrogate of the message, as `\n`, `\x85`, `\u2028`; a traceback's lines are escaped the same way and indented,
so every line that starts at its first column starts a record. JSON lines need nothing more: json.dumps escapes
all of these.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import json
import logging
import unicodedata
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("pocketca_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or '-') on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_line(text: str) -> str:
    """`text` as one line: controls, format characters, separators and lone surrogates written as escapes."""
    if text.isprintable():  # decided in C: nothing to escape (the access line, nearly always)
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _ESCAPED_CATEGORIES else c for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _continuation(text: str) -> str:
    """A traceback or stack under its record: each line escaped and indented, so none can pass for a record."""
    return "\n".join("    " + escape_line(line) for line in text.split("\n"))


class UTCFormatter(logging.Formatter):
    """`2026-12-01T21:51:24.123Z INFO pocketca.access GET /healthz 200 ... request_id=3f0c…`: UTC, with its zone,
    whatever the machine's TZ; the request id last, on the lines logged for a request; the message escaped
    (escape_line), a traceback indented below it."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_line(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + _continuation(record.exc_text)
        if record.stack_info:
            line += "\n" + _continuation(self.formatStack(record.stack_info))
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
