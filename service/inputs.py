"""What a client sends, refused at the edge when no handler could use it: JSON nested deeper than any of our
documents, and text holding a NUL or a lone surrogate.

Every JSON body and every JSON part of one (an ACME JWS's protected header and payload, a keyChange's inner JWS,
an external account binding, a renewal token's header) is read by `load_json`, or checked by `json_too_deep`
before a framework parses it. A NUL cannot be stored by PostgreSQL and a lone surrogate cannot be encoded as
UTF-8: either would fail far from the edge (a 503 "database not usable", a 500 while rendering the answer), so
both are refused where text enters.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Final

MAX_JSON_DEPTH: Final = 32  # our deepest document (an ACME newAccount with its binding) nests 4 levels
# one left-to-right pass: a string (to its closing quote, or to the end) is one token, so its brackets do not count
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JSONInputError(ValueError):
    """JSON we do not read; a ValueError, as `json.loads`'s own errors, so callers catch both alike."""


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `data` nests arrays and objects deeper than `limit` (brackets inside strings do not count).
    Linear, without parsing: what a parser would do with `[` x 20,000 is recurse until it fails."""
    if data.count(b"[") + data.count(b"{") <= limit:  # the common case, decided in C
        return False
    depth = 0
    for token in _TOKENS.findall(data):
        depth += _STEP.get(token[0], 0)
        if depth > limit:
            return True
    return False


def text_problem(value: str) -> str | None:
    """Why `value` may not enter as text (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "holds a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (not a Unicode character)"
    return None


def load_json(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` for what a client sent: UTF-8, at most `limit` levels deep, and no string (key or value)
    with a NUL or a lone surrogate. Raises JSONInputError (or UnicodeDecodeError), both ValueErrors."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if json_too_deep(raw, limit):
        raise JSONInputError(f"the JSON nests deeper than {limit} levels")
    try:
        value = json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"not JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:  # not reachable after the depth check; kept so that no parser recursion is a 500
        raise JSONInputError(f"the JSON nests deeper than {limit} levels") from None
    _check_strings(value)
    return value


def _check_strings(value: Any) -> None:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise JSONInputError(f"a JSON string {problem}")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def as_utc(when: dt.datetime) -> dt.datetime:
    """An aware time in UTC; ValueError when it has no zone, or when UTC takes it out of the years 1 to 9999
    (`9999-12-31T23:59:59-23:59` is in the year 10000 there)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("needs a time zone (RFC 3339, e.g. 2030-01-01T00:00:00Z)")
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{when.isoformat()} is outside the years 1 to 9999 in UTC") from None
