"""The audit trail: a row in the same transaction as each change (or its own, for a refusal),
and one structured log line per event once it is committed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from service.authority.callers import Caller, TokenCaller
from service.authority.paging import check_limit, decode_cursor, encode_cursor
from service.authority.values import AuditEntry, Page
from service.db.groupcommit import Transaction
from service.db.models import AuditRecord
from service.db.repositories import AuditRepository
from service.db.session import Database
from service.logs import request_id

log = logging.getLogger("pocketca.audit")
_PENDING = "pocketca_audit"
UNAUTHENTICATED = "unauthenticated"  # the actor of refusals before authentication


class Auditor:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock

    def record(
        self,
        session: Session,
        action: str,
        caller: Caller,
        *,
        outcome: str = "ok",
        serial: str | None = None,
        token_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Adds the row to the caller's transaction; the log line waits for `emit` after the commit."""
        record = AuditRecord(**self._values(action, caller, outcome, serial, token_id, detail))
        AuditRepository(session).add(record)
        session.info.setdefault(_PENDING, []).append(record)

    def record_in(
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
        """`record` for a group-commit unit (the hot path): the row now, the log line once it is committed."""
        values = self._values(action, caller, outcome, serial, token_id, detail)
        row_id = transaction.sql.insert_audit(transaction.connection, values)
        fields = {"id": row_id, **values}  # AuditEntry's fields, in its order: the row's values, not rebuilt
        rid = request_id.get()  # the committer thread logs it: the request's id goes along
        transaction.after_commit.append(lambda: _log_fields(fields, rid))

    def refusal(
        self, action: str, caller: Caller, detail: str, *, serial: str | None = None
    ) -> Callable[[Transaction], None]:
        """`refused` as a group-commit unit, for callers on the event loop."""
        return lambda transaction: self.record_in(
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
        with self.db.writer() as session:
            self.record(session, action, caller, outcome="refused", serial=serial, token_id=token_id, detail=detail)
        self.emit(session)

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
        with self.db.writer() as session:
            record = AuditRecord(**values)
            AuditRepository(session).add(record)
            session.info.setdefault(_PENDING, []).append(record)
        self.emit(session)

    def emit(self, session: Session) -> None:
        for record in session.info.pop(_PENDING, []):
            _log(_entry(record))

    def page(self, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        rows_wanted = check_limit(limit)
        with self.db.reader() as session:
            rows = AuditRepository(session).page(before_id=decode_cursor(cursor), limit=rows_wanted + 1)
        items = [_entry(r) for r in rows[:rows_wanted]]
        next_cursor = encode_cursor(items[-1].id) if len(rows) > rows_wanted else None
        return Page(items=items, next_cursor=next_cursor)


def _log(entry: AuditEntry, rid: str | None = None) -> None:
    _log_fields({f.name: getattr(entry, f.name) for f in _ENTRY_FIELDS}, rid)


_ENTRY_FIELDS = dataclasses.fields(AuditEntry)


def _log_fields(fields: dict[str, Any], rid: str | None = None) -> None:
    """The audit line; `fields` are an AuditEntry's, in order (shallow: every value is a scalar)."""
    # the text line is the event as JSON; a JSON log (POCKETCA_LOG_FORMAT=json) gets the fields as fields
    extra: dict[str, Any] = {"audit": fields}
    if rid is not None:
        extra["request_id"] = rid
    log.info(json.dumps(fields, default=str, separators=(",", ":")), extra=extra)


def _entry(record: AuditRecord) -> AuditEntry:
    return AuditEntry(
        id=record.id,
        at=record.at,
        action=record.action,
        outcome=record.outcome,
        actor=record.actor,
        token_id=record.token_id,
        serial=record.serial,
        client_address=record.client_address,
        detail=record.detail,
    )
