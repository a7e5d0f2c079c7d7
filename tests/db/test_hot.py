"""db/'s statements (db.tokens, db.certificates, db.audit): on the DB-API connection, they store and read values
exactly as the ORM does.

On SQLite here, and on PostgreSQL in the PostgreSQL pass (POCKETCA_TEST_DATABASE_URL). What they write must
read back through the models unchanged, and what the ORM writes must be what they compare against: on SQLite
times are text, so `expires_at > :now` and `created_at > :since` are right only if both write the same format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from service.db import audit as audit_rows
from service.db import certificates as certificate_rows
from service.db import migrate
from service.db import tokens as token_rows
from service.db.models import AuditRecord, CertificateRecord, TokenRecord
from service.db.session import Database
from service.db.tokens import TokenRow
from tests.conftest import PG_URL, make_settings

UTC = dt.UTC
PLUS_0530 = dt.timezone(dt.timedelta(hours=5, minutes=30))
ALL_BYTES = bytes(range(256))  # NUL and high bytes included


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated database: SQLite in tmp_path, or a fresh PostgreSQL database in the PostgreSQL pass."""
    database = Database(make_settings(tmp_path / "data").sqlalchemy_url if PG_URL else f"sqlite:///{tmp_path / 'h.db'}")
    migrate.upgrade(database)
    yield database
    database.dispose()


def _certificate(serial: str = "ab01", **changes: Any) -> dict[str, Any]:
    """A row as Authority._prepare hands it to db.certificates.insert (sans a tuple, as a summary holds them)."""
    values: dict[str, Any] = {
        "serial": serial,
        "cn": "svc.example.com",
        "subject": "CN=svc.example.com,O=Example",
        "sans": ("svc.example.com", "10.0.0.7", "2001:db8::1", "ops@example.com", "spiffe://example.org/svc"),
        "profile": "server",
        "not_before": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),  # microsecond=0: X.509 times are whole seconds
        "not_after": dt.datetime(2031, 1, 2, 3, 4, 5, 999999, tzinfo=UTC),
        "status": "valid",
        "fingerprint_sha256": "f" * 64,
        "issued_by": "token:0123456789abcdef",
        "issued_via": "enrollment",
        "created_at": dt.datetime(2030, 1, 2, 8, 39, 5, 123456, tzinfo=PLUS_0530),  # 03:09:05.123456 UTC
        "der": ALL_BYTES,
    }
    return values | changes


def _audit(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "at": dt.datetime(2030, 6, 7, 8, 9, 10, 654321, tzinfo=UTC),
        "action": "certificate.issue",
        "outcome": "ok",
        "actor": "token:0123456789abcdef",
        "token_id": "0123456789abcdef",
        "serial": "ab01",
        "client_address": "2001:db8::7",
        "detail": "profile=server; naïve détail",
    }
    return values | changes


def _token(token_id: str, **changes: Any) -> TokenRecord:
    values: dict[str, Any] = {
        "id": token_id,
        "secret_hash": "h" * 48 + token_id,
        "scope": "issue",
        "cn": None,
        "sans": None,
        "profile": None,
        "expires_at": None,
        "uses_left": None,
        "created_at": dt.datetime(2030, 1, 1, tzinfo=UTC),
    }
    return TokenRecord(**(values | changes))


def _add(db: Database, *records: object) -> None:
    with db.writer() as session:
        session.add_all(records)


def _certificate_record(db: Database, serial: str) -> CertificateRecord:
    with db.reader() as session:
        return session.scalars(select(CertificateRecord).where(CertificateRecord.serial == serial)).one()


def _uses_left(db: Database, token_id: str) -> int | None:
    with db.reader() as session:
        return session.scalars(select(TokenRecord.uses_left).where(TokenRecord.id == token_id)).one()


def _column_text(db: Database, sql: str) -> list[tuple[object, ...]]:
    """Columns as the database holds them (text on SQLite), read without the models' conversions."""
    with db.engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


# --- writes read back through the ORM -------------------------------------------------------------------


def test_insert_certificate_reads_back_through_the_orm(db: Database) -> None:
    values = _certificate()
    with db.raw_transaction() as transaction:
        certificate_rows.insert(transaction, values)

    record = _certificate_record(db, "ab01")
    names = ("serial", "cn", "subject", "profile", "status", "fingerprint_sha256", "issued_by", "issued_via", "der")
    for name in names:
        assert getattr(record, name) == values[name], name
    assert record.sans == list(values["sans"])
    for name in ("not_before", "not_after", "created_at"):
        got = getattr(record, name)
        assert got == values[name] and got.tzinfo == UTC, name
        assert got.microsecond == values[name].microsecond, name
    assert record.created_at == dt.datetime(2030, 1, 2, 3, 9, 5, 123456, tzinfo=UTC)
    assert record.revoked_at is None and record.revocation_reason is None and record.crl_entry is None
    assert isinstance(record.der, bytes)


def test_insert_certificate_edge_values(db: Database) -> None:
    """No SANs, no issuer label, a time a microsecond before midnight."""
    last = dt.datetime(2030, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    values = _certificate("cd02", sans=[], issued_by=None, not_before=last, der=b"\x00")
    with db.raw_transaction() as transaction:
        certificate_rows.insert(transaction, values)
    record = _certificate_record(db, "cd02")
    assert (record.sans, record.issued_by, record.not_before, record.der) == ([], None, last, b"\x00")


def test_rows_are_stored_exactly_as_the_orm_stores_them(db: Database) -> None:
    """The same values through the ORM and through db/'s statements leave the same column contents (SQLite: the
    same text), so comparisons in SQL between the two kinds of rows hold."""
    orm_values, hot_values = _certificate("ee01"), _certificate("ee02")
    _add(db, CertificateRecord(**(orm_values | {"sans": list(orm_values["sans"])})))
    with db.raw_transaction() as transaction:
        certificate_rows.insert(transaction, hot_values)
    sans = "sans::text" if db.engine.dialect.name == "postgresql" else "sans"  # json keeps its text as sent
    columns = f"cn, subject, {sans}, profile, not_before, not_after, status, fingerprint_sha256, issued_by, created_at"
    by_orm, by_hot = _column_text(db, f"SELECT {columns} FROM certificates ORDER BY serial")
    assert by_hot == by_orm

    _add(db, AuditRecord(**_audit()))
    with db.raw_transaction() as transaction:
        audit_rows.insert(transaction, _audit())
    columns = "at, action, outcome, actor, token_id, serial, client_address, detail"
    by_orm, by_hot = _column_text(db, f"SELECT {columns} FROM audit_events ORDER BY id")
    assert by_hot == by_orm


def test_insert_audit_reads_back_through_the_orm(db: Database) -> None:
    values = _audit()
    with db.raw_transaction() as transaction:
        first = audit_rows.insert(transaction, values)
        second = audit_rows.insert(
            transaction,
            _audit(
                at=dt.datetime(2030, 6, 7, 8, 9, 10, tzinfo=PLUS_0530),
                outcome="refused",
                token_id=None,
                serial=None,
                client_address=None,
                detail=None,
            ),
        )
    assert second == first + 1
    with db.reader() as session:
        records = {r.id: r for r in session.scalars(select(AuditRecord))}
    assert set(records) == {first, second}
    record = records[first]
    for name in ("action", "outcome", "actor", "token_id", "serial", "client_address", "detail"):
        assert getattr(record, name) == values[name], name
    assert record.at == values["at"] and record.at.tzinfo == UTC and record.at.microsecond == 654321
    other = records[second]
    assert other.at == dt.datetime(2030, 6, 7, 2, 39, 10, tzinfo=UTC) and other.at.tzinfo == UTC
    assert (other.token_id, other.serial, other.client_address, other.detail) == (None, None, None, None)


def test_naive_times_are_refused(db: Database) -> None:
    """As db.base.UTCDateTime refuses them: a naive time's zone is a guess."""
    with pytest.raises(ValueError, match="naive"), db.raw_transaction() as transaction:
        certificate_rows.insert(transaction, _certificate(created_at=dt.datetime(2030, 1, 1)))
    with pytest.raises(ValueError, match="naive"), db.raw_transaction() as transaction:
        audit_rows.insert(transaction, _audit(at=dt.datetime(2030, 1, 1)))
    with db.reader() as session:
        assert session.scalars(select(CertificateRecord)).all() == []
        assert session.scalars(select(AuditRecord)).all() == []


def test_raw_writer_rolls_back_when_the_block_raises(db: Database) -> None:
    _add(db, _token("t-roll", uses_left=3))
    now = dt.datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(RuntimeError, match="boom"), db.raw_transaction() as transaction:
        certificate_rows.insert(transaction, _certificate("ro11"))
        audit_rows.insert(transaction, _audit(serial="ro11"))
        assert token_rows.consume(transaction, "t-roll", now) == (True, 2)
        raise RuntimeError("boom")
    with db.reader() as session:
        assert session.scalars(select(CertificateRecord)).all() == []
        assert session.scalars(select(AuditRecord)).all() == []
    assert _uses_left(db, "t-roll") == 3
    # the thread's writer connection is still good: the next block commits
    with db.raw_transaction() as transaction:
        certificate_rows.insert(transaction, _certificate("ro12"))
        assert token_rows.consume(transaction, "t-roll", now) == (True, 2)
    assert _certificate_record(db, "ro12").serial == "ro12"
    assert _uses_left(db, "t-roll") == 2


def test_a_failing_statement_rolls_back_the_block(db: Database) -> None:
    """A unique-serial violation in the middle: the rows before it go too."""
    with db.raw_transaction() as transaction:
        certificate_rows.insert(transaction, _certificate("dup1"))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), db.raw_transaction() as transaction:
        audit_rows.insert(transaction, _audit(serial="dup1"))
        certificate_rows.insert(transaction, _certificate("dup1"))
    with db.reader() as session:
        assert session.scalars(select(AuditRecord)).all() == []
        assert len(session.scalars(select(CertificateRecord)).all()) == 1


# --- tokens ------------------------------------------------------------------------------------------------


def test_consume_token_counts_down_then_refuses(db: Database) -> None:
    _add(db, _token("t-two", uses_left=2))
    now = dt.datetime.now(UTC)
    results = []
    for _ in range(3):
        with db.raw_transaction() as transaction:
            results.append(token_rows.consume(transaction, "t-two", now))
    assert results == [(True, 1), (True, 0), (False, None)]
    assert _uses_left(db, "t-two") == 0


def test_consume_token_unlimited_stays_unlimited(db: Database) -> None:
    _add(db, _token("t-any"))
    for _ in range(3):
        with db.raw_transaction() as transaction:
            assert token_rows.consume(transaction, "t-any", dt.datetime.now(UTC)) == (True, None)
    assert _uses_left(db, "t-any") is None


def test_consume_token_refuses_unknown_and_expired(db: Database) -> None:
    """Expiry to the microsecond, and whatever offset `now` comes in: compared as instants, not as text."""
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    whole = expires.replace(microsecond=0)
    _add(db, _token("t-exp", expires_at=expires, uses_left=5), _token("t-exp0", expires_at=whole))
    tick = dt.timedelta(microseconds=1)
    with db.raw_transaction() as transaction:
        assert token_rows.consume(transaction, "nosuch", expires - tick) == (False, None)
        assert token_rows.consume(transaction, "t-exp", expires) == (False, None)  # expires_at > now, strictly
        assert token_rows.consume(transaction, "t-exp", expires + tick) == (False, None)
        assert token_rows.consume(transaction, "t-exp", (expires - tick).astimezone(PLUS_0530)) == (True, 4)
        assert token_rows.consume(transaction, "t-exp0", whole) == (False, None)
        assert token_rows.consume(transaction, "t-exp0", whole - tick) == (True, None)
    assert _uses_left(db, "t-exp") == 4


def test_token_reads_what_the_orm_sees(db: Database) -> None:
    full = _token(
        "t-full",
        secret_hash="a" * 64,
        scope="issue",
        cn="svc.example.com",
        sans=["svc.example.com", "10.0.0.7", "ops@example.com"],
        profile="server",
        expires_at=dt.datetime(2030, 1, 2, 8, 34, 5, 42, tzinfo=PLUS_0530),
        uses_left=1,
    )
    _add(db, full, _token("t-bare", scope="admin", expires_at=dt.datetime(2030, 1, 2, tzinfo=UTC)), _token("t-none"))
    with db.reader() as session:
        records = {r.id: r for r in session.scalars(select(TokenRecord))}
    for token_id, record in records.items():
        row = token_rows.get(db, token_id)
        assert row == TokenRow(
            id=record.id,
            secret_hash=record.secret_hash,
            scope=record.scope,
            cn=record.cn,
            sans=record.sans,
            profile=record.profile,
            expires_at=record.expires_at,
            uses_left=record.uses_left,
        ), token_id
        assert row.expires_at is None or row.expires_at.tzinfo == UTC
    row = token_rows.get(db, "t-full")
    assert row is not None and row.sans == ["svc.example.com", "10.0.0.7", "ops@example.com"]
    assert row.expires_at == dt.datetime(2030, 1, 2, 3, 4, 5, 42, tzinfo=UTC)
    assert token_rows.get(db, "nosuch") is None


def test_raw_reads_see_the_latest_commit(db: Database) -> None:
    """db.raw() is autocommit: a read after another connection's commit sees it, with no stale snapshot."""
    _add(db, _token("t-live", uses_left=5))
    connection = db.raw()
    before = token_rows.get(db, "t-live")
    assert before is not None and before.uses_left == 5
    with db.writer() as session:
        session.execute(update(TokenRecord).where(TokenRecord.id == "t-live").values(uses_left=4))
    after = token_rows.get(db, "t-live")
    assert db.raw() is connection and after is not None and after.uses_left == 4


# --- certificates: the edge check and the rate limit -----------------------------------------------------


def test_identity_state(db: Database) -> None:
    with db.raw_transaction() as transaction:
        certificate_rows.insert(transaction, _certificate("1d01", profile="client", fingerprint_sha256="0a" * 32))
    assert certificate_rows.identity_state(db, "1d01") == ("valid", "client", "0a" * 32)
    assert certificate_rows.identity_state(db, "1d02") is None
    with db.writer() as session:  # a revocation in another connection is seen by the next request's check
        session.execute(
            update(CertificateRecord)
            .where(CertificateRecord.serial == "1d01")
            .values(status="revoked", revoked_at=dt.datetime.now(UTC))
        )
    assert certificate_rows.identity_state(db, "1d01") == ("revoked", "client", "0a" * 32)


def test_issued_since(db: Database) -> None:
    """Counts one caller's certificates created strictly after `since`, whoever wrote the rows."""
    base = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    tick = dt.timedelta(microseconds=1)
    with db.raw_transaction() as transaction:
        for serial, created, caller in (
            ("15a", base, "token:a"),
            ("15b", base + tick, "token:a"),
            ("15c", base + dt.timedelta(seconds=30), "token:a"),
            ("15d", base + dt.timedelta(seconds=40), "token:b"),
        ):
            certificate_rows.insert(transaction, _certificate(serial, created_at=created, issued_by=caller))
    by_orm = _certificate("15e", created_at=base + dt.timedelta(seconds=50), sans=[], issued_by="token:a")
    _add(db, CertificateRecord(**by_orm))

    count, first = certificate_rows.issued_since(db, "token:a", base)
    assert (count, first) == (3, base + tick) and first is not None and first.tzinfo == UTC
    assert certificate_rows.issued_since(db, "token:a", (base + tick).astimezone(PLUS_0530)) == (
        2,
        base + dt.timedelta(seconds=30),
    )
    assert certificate_rows.issued_since(db, "token:a", base - tick) == (4, base)
    assert certificate_rows.issued_since(db, "token:c", base) == (0, None)


def test_dialect_rendering() -> None:
    """`:name` parameters for sqlite3, `%(name)s` for psycopg; JSON cast only where json needs it."""
    sqlite, postgres = token_rows._GET.text
    assert ":id" in sqlite and "%(" not in sqlite
    assert "%(id)s" in postgres and ":id" not in postgres
    sqlite_insert, postgres_insert = certificate_rows._INSERT.text
    assert "CAST(%(sans)s AS JSON)" in postgres_insert and "CAST" not in sqlite_insert
