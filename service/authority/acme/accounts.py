"""ACME accounts (RFC 8555 §7.3): creation (with onlyReturnExisting and external account binding), update,
deactivation and key rollover; and the EAB keys an operator hands out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.authority import AcmeCaller, Caller
from service.authority.acme import jws
from service.authority.acme.limits import DEFAULT_LIMITS, RateLimits, address_key, check_new_account
from service.authority.acme.nonces import SpendingDatabase
from service.authority.acme.problems import AcmeProblem, malformed, unauthorized
from service.authority.acme.urls import Urls
from service.authority.audit import Auditor
from service.authority.callers import require_scope
from service.db import acme_accounts as rows
from service.db.acme_accounts import AccountRow, EABKeyRow
from service.db.session import Database
from service.db.sql import Transaction
from service.errors import UnknownProfileError

MAX_CONTACTS = 4


@dataclass(frozen=True)
class Account(AccountRow):
    """An account as stored (db.acme_accounts), and the caller it makes."""

    def caller(self, address: str | None = None, names: frozenset[str] = frozenset()) -> AcmeCaller:
        return AcmeCaller(self.id, names, address)


@dataclass(frozen=True)
class NewEABKey:
    kid: str
    hmac_key: str  # base64url: shown once
    profile: str | None


def _account(row: AccountRow) -> Account:
    return Account(**dataclasses.asdict(row))


def render(account: Account, urls: Urls) -> dict[str, Any]:
    return {"status": account.status, "contact": list(account.contact), "orders": urls.orders(account.id)}


def parse_contact(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise malformed("contact must be a list of mailto: URLs")
    if len(value) > MAX_CONTACTS:
        raise AcmeProblem("invalidContact", f"at most {MAX_CONTACTS} contacts")
    for contact in value:
        if not contact.startswith("mailto:"):
            raise AcmeProblem("unsupportedContact", f"only mailto: contacts are supported, not {contact!r}")
        address = contact.removeprefix("mailto:")
        if (
            "?" in address
            or "," in address
            or address.count("@") != 1
            or len(address) > 254
            or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in address)  # spaces and control characters (NUL)
        ):
            raise AcmeProblem("invalidContact", f"{contact!r} is not one plain mailto: address")
    return list(value)


class Accounts:
    def __init__(
        self,
        db: Database | SpendingDatabase,
        audit: Auditor,
        profiles: Mapping[str, object],
        clock: Callable[[], dt.datetime],
        *,
        eab_required: bool,
        limits: RateLimits = DEFAULT_LIMITS,
    ) -> None:
        self.db = db
        self.database: Database = db if isinstance(db, Database) else db.database  # reads need no nonce spent
        self.audit = audit
        self.profiles = profiles
        self.clock = clock
        self.eab_required = eab_required
        self.limits = limits

    def by_kid(self, kid: str, urls: Urls) -> Account:
        account_id = urls.account_id(kid)
        record = rows.get(self.database, account_id) if account_id else None
        if record is None:
            raise AcmeProblem("accountDoesNotExist", f"no account {kid!r} on this server", status=400)
        if record.status != "valid":
            raise unauthorized(f"the account is {record.status}")
        return _account(record)

    def by_key(self, jwk: dict[str, Any]) -> Account | None:
        record = rows.by_thumbprint(self.database, jws.thumbprint(jwk))
        return _account(record) if record is not None else None

    def new_account(self, request: jws.VerifiedRequest, urls: Urls, address: str | None) -> tuple[Account, bool]:
        """(the account, created?) — an existing key gets its account back (200), as RFC 8555 §7.3.1 says."""
        assert request.jwk is not None
        payload = request.payload()
        existing = self.by_key(request.jwk)
        if existing is not None:
            if existing.status != "valid":
                raise unauthorized(f"the account for this key is {existing.status}")
            return existing, False
        if payload.get("onlyReturnExisting") is True:
            raise AcmeProblem("accountDoesNotExist", "no account exists for this key")
        contact = parse_contact(payload.get("contact"))
        binding = payload.get("externalAccountBinding")
        if binding is None and self.eab_required:
            raise AcmeProblem(
                "externalAccountRequired", "this server needs an external account binding: ask its operator for one"
            )
        now = self.clock()
        thumb = jws.thumbprint(request.jwk)
        with self.db.transaction() as transaction:
            eab: EABKeyRow | None = None
            if binding is not None:
                eab = self._bind(transaction, binding, urls, request.jwk)
            if rows.id_with_thumbprint(transaction, thumb):
                raise malformed("an account for this key was created just now; retry to get it", status=409)
            check_new_account(transaction, self.limits, address, now)
            record = AccountRow(
                id=secrets.token_urlsafe(12),
                status="valid",
                contact=tuple(contact),
                jwk=request.jwk,
                thumbprint=thumb,
                profile=eab.profile if eab else None,
            )
            rows.add(
                transaction, record, eab_kid=eab.kid if eab else None, created_at=now, created_from=address_key(address)
            )
            if eab is not None:
                rows.bind_eab_key(transaction, eab.kid, record.id, now)  # a key binds one account
            account = _account(record)
            self.audit.record(
                transaction, "acme.account.create", account.caller(address), detail=f"eab={eab.kid if eab else '-'}"
            )
        return account, True

    def _bind(self, transaction: Transaction, binding: object, urls: Urls, jwk: dict[str, Any]) -> EABKeyRow:
        found: list[EABKeyRow] = []

        def hmac_key_for(kid: str) -> bytes:
            record = rows.eab_key(transaction, kid)
            if record is None:
                raise jws.unauthorized_eab()
            if record.hmac_key is None:
                raise unauthorized("this external account binding key was already used for an account")
            found.append(record)
            return jws.b64decode(record.hmac_key, "hmac key")

        jws.verify_eab(binding, url=urls.new_account, account_jwk=jwk, hmac_key_for=hmac_key_for)
        return found[0]

    def update(self, account: Account, request: jws.VerifiedRequest, address: str | None) -> Account:
        if request.is_post_as_get:
            return account
        payload = request.payload()
        with self.db.transaction() as transaction:
            updated = account
            if payload.get("status") is not None:
                if payload["status"] != "deactivated":
                    raise malformed("an account's status can only be set to 'deactivated'")
                updated = _account(rows.update(transaction, account.id, status="deactivated"))
                self.audit.record(transaction, "acme.account.deactivate", account.caller(address))
            if "contact" in payload:
                updated = _account(rows.update(transaction, account.id, contact=parse_contact(payload["contact"])))
                self.audit.record(transaction, "acme.account.update", account.caller(address))
        return updated

    def change_key(self, account: Account, request: jws.VerifiedRequest, urls: Urls, address: str | None) -> Account:
        """RFC 8555 §7.3.5: the payload is a JWS by the new key over {account, oldKey}."""
        inner = jws.parse_jws(json.dumps(request.payload()).encode())
        new_jwk, _ = jws.verify_inner(inner, url=request.url)
        body = inner.payload()
        if body.get("account") != urls.account(account.id):
            raise malformed("keyChange: 'account' must be this account's URL")
        try:
            old_ok = jws.public_jwk(body.get("oldKey") or {}) == account.jwk
        except (KeyError, TypeError):
            old_ok = False
        if not old_ok:
            raise malformed("keyChange: 'oldKey' is not the account's current key")
        thumb = jws.thumbprint(new_jwk)
        with self.db.transaction() as transaction:
            other = rows.id_with_thumbprint(transaction, thumb)
            if other is not None:
                raise AcmeProblem(
                    "malformed",
                    "the new key already belongs to an account",
                    status=409,
                    headers={"Location": urls.account(other)},
                )
            updated = _account(rows.update(transaction, account.id, jwk=new_jwk, thumbprint=thumb))
            self.audit.record(transaction, "acme.account.keychange", account.caller(address))
        return updated

    # --- EAB keys (operators) ----------------------------------------------------------------------------

    def create_eab_key(self, *, caller: Caller, profile: str | None = None) -> NewEABKey:
        require_scope(caller, "admin")
        if profile is not None and profile not in self.profiles:
            raise UnknownProfileError(profile, self.profiles)
        key = NewEABKey(
            _typeable(lambda: secrets.token_urlsafe(16)),
            _typeable(lambda: jws.b64encode(secrets.token_bytes(32))),
            profile,
        )
        with self.db.transaction() as transaction:
            rows.add_eab_key(transaction, key.kid, key.hmac_key, profile, self.clock())
            self.audit.record(transaction, "acme.eab.create", caller, detail=f"kid={key.kid} profile={profile or '-'}")
        return key


def _typeable(draw: Callable[[], str]) -> str:
    """A base64url value that never begins with '-': certbot and lego read `--eab-kid -x…` as a missing value and
    a flag, so one key in 32 could not be typed as the README shows. Redrawing costs the key under one bit."""
    while (value := draw()).startswith("-"):
        pass
    return value
