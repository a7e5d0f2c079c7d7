"""The crls table and the counters it is built against (revocations, the CRL number floor)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from service.db.sql import Statement, time_value

if TYPE_CHECKING:
    from service.db.session import Database

_STATE = (
    # the counters are db.repositories.REVOCATIONS and CRL_FLOOR
    "SELECT (SELECT value FROM counters WHERE name = 'revocations'),"
    " (SELECT value FROM counters WHERE name = 'crl_floor'),"
    " number, this_update, next_update, revision FROM (SELECT 1 AS one) AS anchor"
    " LEFT JOIN (SELECT number, this_update, next_update, revision FROM crls {where}ORDER BY number DESC"
    " LIMIT 1) AS newest ON 1 = 1"
)
_ANY_STATE = Statement(_STATE.format(where=""))
_ISSUER_STATE = Statement(_STATE.format(where="WHERE issuer_id = :issuer_id "))


def state(
    db: Database, issuer_id: str | None = None
) -> tuple[tuple[int, dt.datetime, dt.datetime, int] | None, int, int]:
    """(newest CRL's (number, this_update, next_update, revision) or None, revocations, floor) in one
    read: what the CRL refresher polls four times a second in every worker. Of one issuer when given."""
    if issuer_id is None:
        row = db.query(_ANY_STATE, {}).fetchone()
    else:
        row = db.query(_ISSUER_STATE, {"issuer_id": issuer_id}).fetchone()
    revisions, floor, number, this_update, next_update, built_for = row
    newest = None
    if number is not None:
        newest = (int(number), time_value(this_update), time_value(next_update), int(built_for))
    return newest, int(revisions or 0), int(floor or 0)  # type: ignore[return-value]
