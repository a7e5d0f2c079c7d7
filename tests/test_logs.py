"""The log formatters on their own: a text line is one record whatever its message carries (controls, C1, format
characters, line separators, a traceback whose exception message holds a forged line); JSON lines stay whole."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from service.logs import TEXT_FORMAT, JSONFormatter, UTCFormatter

FORGED = '2026-12-07T02:30:00.000Z INFO pocketca.audit {"action":"certificate.revoke","actor":"token:FORGED"}'


def record(message: str, *args: object, exc_info: bool = False) -> logging.LogRecord:
    info = sys.exc_info() if exc_info else None
    return logging.LogRecord("pocketca.access", logging.INFO, __file__, 1, message, args, info)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sent", "written"),
    [
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\t", "\\t"),
        ("\x00", "\\x00"),
        ("\x1b[2J", "\\x1b[2J"),  # a terminal escape
        ("\x7f", "\\x7f"),
        ("\x85", "\\x85"),  # NEXT LINE
        ("\x9b", "\\x9b"),  # CONTROL SEQUENCE INTRODUCER
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
        ("\u202e", "\\u202e"),  # RIGHT-TO-LEFT OVERRIDE: a line that reads backwards
        ("\u200b", "\\u200b"),
        ("\udcff", "\\udcff"),  # a lone surrogate (a path byte 0xff decoded with surrogateescape)
        ("\U000e0041", "\\U000e0041"),  # a TAG character (Cf, outside the BMP)
    ],
)
def test_the_text_formatter_escapes_what_could_break_or_disguise_a_line(sent: str, written: str) -> None:
    line = UTCFormatter(TEXT_FORMAT).format(record("%s %s %d", "GET", f"/nothere{sent}{FORGED}", 404))
    assert line.count("\n") == 0
    assert line.endswith(f"INFO pocketca.access GET /nothere{written}{FORGED} 404")


def test_ordinary_text_is_left_as_it_is() -> None:
    text = "CN=Zoë Ångström, O=Straße (東京), a\u00a0non-breaking space"
    assert UTCFormatter(TEXT_FORMAT).format(record("%s", text)).endswith(f"INFO pocketca.access {text}")


def test_a_traceback_stays_under_its_record_and_cannot_start_one() -> None:
    try:
        raise ValueError(f"bad name\n{FORGED}\u2028{FORGED}")
    except ValueError:
        line = UTCFormatter(TEXT_FORMAT).format(record("failed on %s", f"/x\n{FORGED}", exc_info=True))
    first, *rest = line.split("\n")
    assert first.endswith(f"INFO pocketca.access failed on /x\\n{FORGED}")
    assert rest and all(continuation.startswith("    ") for continuation in rest), rest
    assert any("Traceback (most recent call last):" in c for c in rest)
    assert any(c.startswith("    ValueError: bad name") for c in rest)
    assert "\\u2028" in line and "\u2028" not in line


def test_the_json_formatter_keeps_one_object_a_line() -> None:
    line = JSONFormatter().format(record("%s %s", "GET", f"/nothere\n{FORGED}\u2028\x85"))
    assert "\n" not in line and "\u2028" not in line and "\x85" not in line
    assert json.loads(line)["message"] == f"GET /nothere\n{FORGED}\u2028\x85"
