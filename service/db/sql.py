"""What every statement module of db/ writes with: statements written once for both dialects, the values as the
ORM stores them, and the open write transaction (`Transaction`), the same for the hot path and the cold one.

Issuance and authentication run a few tiny indexed statements per request. Through a Session each costs about
250 µs of SQLAlchemy machinery on SQLite, through a Core connection about 150 µs, on the DB-API connection
about 5 µs (bench/SPEED.md). So the statements are plain SQL on the driver's own connection: `:name` parameters
(sqlite3's named style) become psycopg's `%(name)s`, and the text stays the same from call to call, so both
drivers keep it prepared (sqlite3's statement cache, psycopg's automatic preparation).

The tables are still the models' and the migrations'; values are stored exactly as the ORM stores them
(SQLite: UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' and JSON text, as db.base.UTCDateTime and SQLAlchemy's JSON do;
PostgreSQL: timestamptz and json), and tests/db/test_hot.py reads what these write back through the ORM.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

DatabaseError = DBAPIError  # what a failing statement raises, on either path (the driver's error is its `orig`)
DatabaseUnreachable = OperationalError  # of those, a database that cannot be reached or opened
_PARAM = re.compile(r":([a-z_0-9]+)")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


class Statement:
    """One statement's text for each dialect: `text[postgres]`."""

    __slots__ = ("text",)

    def __init__(self, sql: str, *, postgresql: str | None = None) -> None:
        self.text = (sql, _PARAM.sub(r"%(\1)s", postgresql if postgresql is not None else sql))


@dataclass
class Transaction:
    """An open write transaction: its DB-API connection and dialect, and what to do once it is committed (audit
    log lines: never for a change that did not happen). The group committer opens one for a batch of units (the
    hot path), `Database.transaction()` for one change (the cold path); every write function of db/ takes one."""

    connection: Any
    postgres: bool
    driver_error: type[Exception]  # the driver's base exception (sqlite3.Error, psycopg.Error)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    session: Any = None  # the cold path's ORM session (the statements not yet moved to plain SQL use it)

    def execute(self, statement: Statement, params: Mapping[str, Any]) -> Any:
        return execute(self.connection, statement.text[self.postgres], params, self.driver_error)

    def time(self, value: dt.datetime) -> Any:
        return time_param(value, self.postgres)


def execute(connection: Any, sql: str, params: Mapping[str, Any], driver_error: type[Exception]) -> Any:
    """Runs one statement on a DB-API connection; the driver's errors come out as SQLAlchemy's (DBAPIError and its
    kinds: OperationalError, IntegrityError...), as they do from a Session, so callers catch one family."""
    try:
        return connection.execute(sql, params)
    except driver_error as exc:
        raise DBAPIError.instance(sql, params, exc, driver_error) from exc


def time_param(value: dt.datetime, postgres: bool) -> Any:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if not postgres:
        return value.astimezone(dt.UTC).strftime(_SQLITE_TIME)
    return value


def time_value(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
