"""The audit trail: a row in the same transaction as each change (or its own, for a refusal),
and one structured log line per event once it is committed."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from service.authority.callers import Caller, TokenCaller
from service.authority.paging import check_limit, decode_cursor, encode_cursor
from service.authority.values import AuditEntry, Page
from service.db import audit as audit_rows
from service.db.session import Database
from service.db.sql import Transaction
from service.errors import ServiceError
from service.logs import request_id

log = logging.getLogger("pocketca.audit")
UNAUTHENTICATED = "unauthenticated"  # the actor of refusals before authentication


class Auditor:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock

    def record(
        self,
        transaction: Transaction,
        action: str,
        caller: Caller,
        *,
        outcome: str = "ok",
        serial: str | None = None,
        token_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Adds the row to the change's transaction (a group-commit unit or `Database.transaction()`); the log
        line waits for the commit."""
        self._write(transaction, self._values(action, caller, outcome, serial, token_id, detail))

    def _write(self, transaction: Transaction, values: dict[str, Any]) -> None:
        row_id = audit_rows.insert(transaction, values)
        fields = {"id": row_id, **values}  # AuditEntry's fields, in its order: the row's values, not rebuilt
        rid = request_id.get()  # the committer thread logs it: the request's id goes along
        transaction.after_commit.append(lambda: _log_fields(fields, rid))

    @contextlib.contextmanager
    def refusing(self, action: str, caller: Caller, serial: str | None = None) -> Iterator[None]:
        """Around a change: a ServiceError raised in the block is audited as refused (in its own transaction: the
        change rolled back) and raised again."""
        try:
            yield
        except ServiceError as exc:
            self.refused(action, caller, exc.detail, serial=serial)
            raise

    def refusal(
        self, action: str, caller: Caller, detail: str, *, serial: str | None = None
    ) -> Callable[[Transaction], None]:
        """`refused` as a group-commit unit, for callers on the event loop."""
        return lambda transaction: self.record(
            transaction, action, caller, outcome="refused", serial=serial, detail=detail
        )

    def _values(
        self,
        action: str,
        caller: Caller,
        outcome: str,
        serial: str | None,
        token_id: str | None,
        detail: str | None,
    ) -> dict[str, Any]:
        if token_id is None and isinstance(caller, TokenCaller):
            token_id = caller.token_id
        return {
            "at": self.clock(),
            "action": action,
            "outcome": outcome,
            "actor": caller.label,
            "token_id": token_id,
            "serial": serial,
            "client_address": caller.address,
            "detail": detail,
        }

    def refused(
        self, action: str, caller: Caller, detail: str, *, serial: str | None = None, token_id: str | None = None
    ) -> None:
        """A refusal is recorded in a transaction of its own: the refused change rolled back."""
        with self.db.transaction() as transaction:
            self.record(transaction, action, caller, outcome="refused", serial=serial, token_id=token_id, detail=detail)

    def unattributed(self, action: str, address: str | None, detail: str) -> None:
        """A refusal before anyone was authenticated, written in aggregate (service.authority.throttle): its actor
        is `unauthenticated`, never the identity a failed credential claimed."""
        values = {
            "at": self.clock(),
            "action": action,
            "outcome": "refused",
            "actor": UNAUTHENTICATED,
            "token_id": None,
            "serial": None,
            "client_address": address,
            "detail": detail,
        }
        with self.db.transaction() as transaction:
            self._write(transaction, values)

    def page(self, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        rows_wanted = check_limit(limit)
        rows = audit_rows.page(self.db, before_id=decode_cursor(cursor), limit=rows_wanted + 1)
        items = rows[:rows_wanted]
        next_cursor = encode_cursor(items[-1].id) if len(rows) > rows_wanted else None
        return Page(items=items, next_cursor=next_cursor)


def _log_fields(fields: dict[str, Any], rid: str | None = None) -> None:
    """The audit line; `fields` are an AuditEntry's, in order (shallow: every value is a scalar)."""
    # the text line is the event as JSON; a JSON log (POCKETCA_LOG_FORMAT=json) gets the fields as fields
    extra: dict[str, Any] = {"audit": fields}
    if rid is not None:
        extra["request_id"] = rid
    log.info(json.dumps(fields, default=str, separators=(",", ":")), extra=extra)

