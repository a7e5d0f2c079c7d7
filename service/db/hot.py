"""The hot path's statements, on the driver's own connection.

Issuance and authentication run a few tiny indexed statements per request. Through a Session each costs about
250 µs of SQLAlchemy machinery on SQLite, through a Core connection about 150 µs, on the DB-API connection
about 5 µs (bench/SPEED.md). So these few are plain SQL, written
once for both dialects: `:name` parameters (sqlite3's named style) become psycopg's `%(name)s`.

The tables are still the models' and the migrations'; values are stored exactly as the ORM stores them
(SQLite: UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' and JSON text, as db.base.UTCDateTime and SQLAlchemy's JSON do;
PostgreSQL: timestamptz and json), and tests/db/test_hot.py reads what these write back through the ORM.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_PARAM = re.compile(r":([a-z_0-9]+)")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class TokenRow:
    id: str
    secret_hash: str
    scope: str
    cn: str | None
    sans: list[str] | None
    profile: str | None
    expires_at: dt.datetime | None
    uses_left: int | None


class HotSQL:
    """The statements, rendered for one dialect ("sqlite" or "postgresql")."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        pg = dialect == "postgresql"
        sans = "CAST(:sans AS JSON)" if pg else ":sans"  # psycopg sends text; json has no implicit cast from it

        def render(sql: str) -> str:
            return _PARAM.sub(r"%(\1)s", sql) if pg else sql

        self._token = render(
            "SELECT id, secret_hash, scope, cn, sans, profile, expires_at, uses_left FROM tokens WHERE id = :id"
        )
        self._identity = render("SELECT status, profile, fingerprint_sha256 FROM certificates WHERE serial = :serial")
        self._usable = render(
            "SELECT uses_left FROM tokens WHERE id = :id AND (expires_at IS NULL OR expires_at > :now)"
            " AND (uses_left IS NULL OR uses_left > 0)"
        )
        self._consume = render(
            "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = :id AND uses_left > 0 RETURNING uses_left"
        )
        self._issued_since = render(
            "SELECT count(*), min(created_at) FROM certificates WHERE issued_by = :issued_by AND created_at > :since"
        )
        insert_certificate = (
            "INSERT INTO certificates (serial, cn, subject, sans, profile, not_before, not_after, status,"
            " fingerprint_sha256, issued_by, issued_via, created_at, der, issuer_id) VALUES (:serial, :cn, :subject,"
            " :sans, :profile, :not_before, :not_after, :status, :fingerprint_sha256, :issued_by, :issued_via,"
            " :created_at, :der, :issuer_id)"
        )
        self._insert_certificate = render(insert_certificate.replace(":sans", sans))
        crl_state = (
            # the counters are db.repositories.REVOCATIONS and CRL_FLOOR
            "SELECT (SELECT value FROM counters WHERE name = 'revocations'),"
            " (SELECT value FROM counters WHERE name = 'crl_floor'),"
            " number, this_update, next_update, revision FROM (SELECT 1 AS one) AS anchor"
            " LEFT JOIN (SELECT number, this_update, next_update, revision FROM crls {where}ORDER BY number DESC"
            " LIMIT 1) AS newest ON 1 = 1"
        )
        self._renewal_used = render("SELECT 1 FROM renewal_token_uses WHERE serial = :serial AND jti = :jti")
        self._use_renewal = render(
            "INSERT INTO renewal_token_uses (serial, jti, expires_at, used_at)"
            " VALUES (:serial, :jti, :expires_at, :now) ON CONFLICT DO NOTHING RETURNING jti"
        )
        self._prune_renewals = render("DELETE FROM renewal_token_uses WHERE expires_at < :now")
        self._crl_state = render(crl_state.format(where=""))
        self._issuer_crl_state = render(crl_state.format(where="WHERE issuer_id = :issuer_id "))
        self._insert_audit = render(
            "INSERT INTO audit_events (at, action, outcome, actor, token_id, serial, client_address, detail)"
            " VALUES (:at, :action, :outcome, :actor, :token_id, :serial, :client_address, :detail) RETURNING id"
        )

    # --- values as the ORM stores them ---------------------------------------------------------------

    def time_param(self, value: dt.datetime) -> Any:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        if self.dialect == "sqlite":
            return value.astimezone(dt.UTC).strftime(_SQLITE_TIME)
        return value

    @staticmethod
    def time_value(value: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    @staticmethod
    def json_value(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    # --- reads (any connection; autocommit is fine) --------------------------------------------------

    def token(self, connection: Any, token_id: str) -> TokenRow | None:
        row = connection.execute(self._token, {"id": token_id}).fetchone()
        if row is None:
            return None
        return TokenRow(
            id=row[0],
            secret_hash=row[1],
            scope=row[2],
            cn=row[3],
            sans=self.json_value(row[4]),
            profile=row[5],
            expires_at=self.time_value(row[6]),
            uses_left=row[7],
        )

    def identity_state(self, connection: Any, serial: str) -> tuple[str, str, str] | None:
        """(status, profile, fingerprint_sha256) by the unique serial index: the per-request edge check."""
        row = connection.execute(self._identity, {"serial": serial}).fetchone()
        return (row[0], row[1], row[2]) if row is not None else None

    def issued_since(self, connection: Any, issued_by: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
        row = connection.execute(self._issued_since, {"issued_by": issued_by, "since": self.time_param(since)})
        count, first = row.fetchone()
        return int(count), self.time_value(first)

    def crl_state(
        self, connection: Any, issuer_id: str | None = None
    ) -> tuple[tuple[int, dt.datetime, dt.datetime, int] | None, int, int]:
        """(newest CRL's (number, this_update, next_update, revision) or None, revocations, floor) in one
        read: what the CRL refresher polls four times a second in every worker. Of one issuer when given."""
        if issuer_id is None:
            row = connection.execute(self._crl_state, {}).fetchone()
        else:
            row = connection.execute(self._issuer_crl_state, {"issuer_id": issuer_id}).fetchone()
        revisions, floor, number, this_update, next_update, built_for = row
        state = None
        if number is not None:
            state = (int(number), self.time_value(this_update), self.time_value(next_update), int(built_for))
        return state, int(revisions or 0), int(floor or 0)  # type: ignore[return-value]

    def renewal_token_used(self, connection: Any, serial: str, jti: str) -> bool:
        return connection.execute(self._renewal_used, {"serial": serial, "jti": jti}).fetchone() is not None

    # --- writes (inside the caller's transaction) ----------------------------------------------------

    def use_renewal_token(
        self, connection: Any, serial: str, jti: str, expires_at: dt.datetime, now: dt.datetime
    ) -> bool:
        """Records a renewal token's jti as spent: False when it was spent already (a replay, perhaps from another
        worker at the same moment: the primary key decides). Rows of tokens that expired are dropped on the way."""
        connection.execute(self._prune_renewals, {"now": self.time_param(now)})
        params = {"serial": serial, "jti": jti, "expires_at": self.time_param(expires_at), "now": self.time_param(now)}
        return connection.execute(self._use_renewal, params).fetchone() is not None

    def consume_token(self, connection: Any, token_id: str, now: dt.datetime) -> tuple[bool, int | None]:
        """Takes one use: (False, None) when the token is gone, expired or used up. Call it inside a write
        transaction (writers take turns, see Database.raw_writer), so the check and the use are one step. A token
        without a use count is only checked: no row written, no page for the commit to carry."""
        row = connection.execute(self._usable, {"id": token_id, "now": self.time_param(now)}).fetchone()
        if row is None:
            return False, None
        if row[0] is None:
            return True, None
        row = connection.execute(self._consume, {"id": token_id}).fetchone()
        return (False, None) if row is None else (True, row[0])

    def insert_certificate(self, connection: Any, values: Mapping[str, Any]) -> None:
        params = dict(values)
        for key in ("not_before", "not_after", "created_at"):
            params[key] = self.time_param(params[key])
        params["sans"] = json.dumps(list(params["sans"]))
        params.setdefault("issuer_id", None)
        connection.execute(self._insert_certificate, params)

    def insert_audit(self, connection: Any, values: Mapping[str, Any]) -> int:
        """The new row's id."""
        params = dict(values)
        params["at"] = self.time_param(params["at"])
        return int(connection.execute(self._insert_audit, params).fetchone()[0])
