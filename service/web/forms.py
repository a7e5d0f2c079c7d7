"""What a person types into the console: urlencoded forms, counts and dates, and the refusals that name the
field and what was typed (the detail is built from them when the page shows it)."""

from __future__ import annotations

import datetime as dt
import urllib.parse

from fastapi import Request

from service.errors import InvalidRequestError, UnsupportedMediaTypeError
from service.inputs import text_problem

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 50


class FormFieldError(InvalidRequestError):
    """A field whose name or value is no text (a NUL, a lone surrogate...)."""

    shown_as_parent = True

    def __init__(self, name: str, problem: str) -> None:
        super().__init__()
        self.name = name
        self.problem = problem

    @property
    def detail(self) -> str:
        return f"the form's field {self.name[:40]!r} {self.problem}"


class NotAWholeNumberError(InvalidRequestError):
    shown_as_parent = True

    def __init__(self, what: str, maximum: int) -> None:
        super().__init__()
        self.what = what
        self.maximum = maximum

    @property
    def detail(self) -> str:
        return f"{self.what} must be a whole number from 1 to {self.maximum}"


class UnreadableDateError(InvalidRequestError):
    shown_as_parent = True

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    @property
    def detail(self) -> str:
        return f"expires before {self.text!r}: use a date such as 2030-01-31"


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form (the body is already bounded by the request limits); the first value of each field."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM:
        raise UnsupportedMediaTypeError(f"send the form as {FORM}")
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        pairs = urllib.parse.parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise UnsupportedMediaTypeError(f"a form has at most {MAX_FIELDS} fields") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        problem = text_problem(name) or text_problem(value)
        if problem:
            raise FormFieldError(name, problem)
        form.setdefault(name, value)
    return form


def parse_count(text: str, what: str, maximum: int) -> int | None:
    """A whole number from 1 to `maximum` typed into a form or a query, or None for nothing; ASCII digits only
    (`³` is a digit to str.isdigit, not to int)."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= maximum:
        raise NotAWholeNumberError(what, maximum)
    return int(text)


def parse_when(text: str) -> dt.datetime | None:
    """A date (2030-01-31, from <input type=date>: midnight UTC) or an RFC 3339 time with a zone."""
    if not text:
        return None
    try:
        if len(text) == 10:
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UnreadableDateError(text) from None
    if when.tzinfo is None:
        raise InvalidRequestError("expires before needs a time zone (RFC 3339, e.g. 2030-01-01T00:00:00Z)")
    return when
