"""Opaque cursors: the id of the last row a page showed, so the next page starts strictly after it."""

from __future__ import annotations

import base64

from service.errors import InvalidRequestError, LimitOutOfRangeError

MAX_LIMIT = 1000


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id" or not value.isdigit():
            raise ValueError
        return int(value)
    except ValueError:
        raise InvalidRequestError("the cursor is not one this service gave out") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise LimitOutOfRangeError(limit, MAX_LIMIT)
    return limit
