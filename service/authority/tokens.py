"""API tokens: made here, shown once, stored as a hash, spent in the transaction of the change they pay for."""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Mapping

from service import metrics
from service.authority.audit import Auditor
from service.authority.callers import SCOPES, TOKEN_PREFIX, Caller, TokenCaller, hash_secret, require_scope
from service.authority.values import NewToken, TokenInfo
from service.ca.names import common_name_problem, forbidden_characters, format_general_name, parse_general_name
from service.ca.profiles import Profile
from service.db import tokens as token_rows
from service.db.session import Database
from service.db.sql import Transaction
from service.db.tokens import TokenRow
from service.errors import (
    AuthenticationError,
    InvalidCredentialsError,
    InvalidRequestError,
    TokenNotFoundError,
)

ENROLLMENT_TTL = dt.timedelta(hours=24)
MAX_TTL = dt.timedelta(days=3650)


class TokenManager:
    def __init__(
        self, db: Database, audit: Auditor, profiles: Mapping[str, Profile], clock: Callable[[], dt.datetime]
    ) -> None:
        self.db = db
        self.audit = audit
        self.profiles = profiles
        self.clock = clock

    def create(
        self,
        *,
        caller: Caller,
        scope: str | None = None,
        cn: str | None = None,
        sans: tuple[str, ...] | list[str] = (),
        profile: str | None = None,
        ttl: dt.timedelta | None = None,
        uses: int | None = None,
    ) -> NewToken:
        """With `cn`, an enrollment token: scope issue, bound to exactly those names, 1 use and 24 h by default."""
        require_scope(caller, "admin")
        enrollment = cn is not None or bool(sans)
        scope = scope or ("issue" if enrollment else "admin")
        problems = []
        if scope not in SCOPES:
            problems.append(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
        if enrollment and scope != "issue":
            problems.append("an enrollment token (with cn or sans) has scope 'issue'")
        if enrollment and not cn:
            problems.append("an enrollment token needs a cn")
        elif cn is not None and (forbidden := forbidden_characters(cn)):
            # no CSR could name it (and PostgreSQL takes no NUL, UTF-8 no lone surrogate)
            problems.append(f"the cn holds control or format characters ({', '.join(forbidden)})")
        elif cn is not None and (cn_problem := common_name_problem(cn)):
            problems.append(cn_problem)
        if profile is not None and profile not in self.profiles:
            problems.append(f"unknown profile {profile!r}")
        names: list[str] = []
        for san in sans:
            try:
                names.append(format_general_name(parse_general_name(san)))
            except ValueError as exc:
                problems.append(str(exc))
        if ttl is not None and not dt.timedelta(0) < ttl <= MAX_TTL:
            problems.append("ttl must be positive and at most ten years")
        if uses is not None and uses < 1:
            problems.append("uses must be at least 1")
        if problems:
            raise InvalidRequestError("; ".join(problems))
        if enrollment:
            ttl = ttl or ENROLLMENT_TTL
            uses = uses or 1
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = self.clock()
        record = TokenRow(
            id=token_id,
            secret_hash=hash_secret(secret),
            scope=scope,
            cn=cn,
            sans=names if enrollment else None,
            profile=profile,
            expires_at=now + ttl if ttl is not None else None,
            uses_left=uses,
            created_at=now,
        )
        with self.db.transaction() as transaction:
            token_rows.add(transaction, record)
            self.audit.record(transaction, "token.create", caller, token_id=token_id, detail=f"scope={scope}")
        return NewToken(
            token=f"{TOKEN_PREFIX}{token_id}_{secret}", id=token_id, scope=scope, expires_at=record.expires_at
        )

    def authenticate(self, token: str, *, address: str | None = None) -> TokenCaller:
        """`pca_<id>_<secret>`: looked up by id, the secret's hash compared in constant time."""
        try:
            token_id, secret = _split(token)
        except AuthenticationError:
            metrics.token_refused("invalid")
            raise InvalidCredentialsError("the bearer token is not valid") from None
        record = token_rows.get(self.db, token_id)  # every request: the hot path's DB-API read
        expected = record.secret_hash if record is not None else hash_secret("")
        if not hmac.compare_digest(expected, hash_secret(secret)) or record is None:
            metrics.token_refused("invalid")
            raise InvalidCredentialsError("the bearer token is not valid")
        caller = _caller(record, address)
        problem = None
        if record.expires_at is not None and record.expires_at <= self.clock():
            problem, reason = "the bearer token has expired", "expired"
        elif record.uses_left is not None and record.uses_left <= 0:
            problem, reason = "the bearer token has been used up", "used_up"
        if problem:
            metrics.token_refused(reason)
            self.audit.refused("token.use", caller, problem)
            raise AuthenticationError(problem)
        return caller

    def caller_by_id(self, token_id: str, *, address: str | None = None) -> TokenCaller:
        """The caller of a token already authenticated once (a console session): still there, unexpired, not used up."""
        record = token_rows.get(self.db, token_id)
        if record is None:
            raise AuthenticationError("the token of this session has been deleted")
        if record.expires_at is not None and record.expires_at <= self.clock():
            raise AuthenticationError("the token of this session has expired")
        if record.uses_left is not None and record.uses_left <= 0:
            raise AuthenticationError("the token of this session has been used up")
        return _caller(record, address)

    def spend(self, transaction: Transaction, caller: Caller) -> None:
        """Takes one use inside the change's transaction (a group-commit unit or `Database.transaction()`): a
        refusal or crash after it gives the use back, and concurrent requests cannot both spend the last one."""
        if isinstance(caller, TokenCaller):
            uses_left = _spent(token_rows.consume(transaction, caller.token_id, self.clock()))
            if uses_left is not None:
                self.audit.record(transaction, "token.use", caller, detail=f"uses_left={uses_left}")

    def list(self, *, caller: Caller) -> list[TokenInfo]:
        require_scope(caller, "admin")
        return [_info(r) for r in token_rows.every(self.db)]

    def delete(self, token_id: str, *, caller: Caller) -> None:
        require_scope(caller, "admin")
        with self.db.transaction() as transaction:
            if not token_rows.delete(transaction, token_id):
                raise TokenNotFoundError(token_id)
            self.audit.record(transaction, "token.delete", caller, token_id=token_id)

    def any_admin(self) -> bool:
        return token_rows.any_with_scope(self.db, "admin")


def _spent(outcome: tuple[bool, int | None]) -> int | None:
    spent, uses_left = outcome
    if not spent:
        raise AuthenticationError("the bearer token has expired, been used up or been deleted")
    return uses_left


def _split(token: str) -> tuple[str, str]:
    body = token.strip().removeprefix(TOKEN_PREFIX)
    token_id, sep, secret = body.partition("_")
    if not token.startswith(TOKEN_PREFIX) or not sep or len(token_id) != 16 or not secret:
        raise AuthenticationError("the bearer token is not valid")
    return token_id, secret


def _caller(record: TokenRow, address: str | None) -> TokenCaller:
    names = frozenset(record.sans or [])
    if record.cn is not None:
        with contextlib.suppress(ValueError):  # a CN that is no name ("Alice Smith") binds the subject only
            names |= {format_general_name(parse_general_name(record.cn, allow_prefix=False))}
    return TokenCaller(
        token_id=record.id, scope=record.scope, cn=record.cn, names=names, profile=record.profile, address=address
    )


def _info(record: TokenRow) -> TokenInfo:
    assert record.created_at is not None  # db.tokens.every reads it
    return TokenInfo(
        id=record.id,
        scope=record.scope,
        cn=record.cn,
        sans=tuple(record.sans or ()),
        profile=record.profile,
        expires_at=record.expires_at,
        uses_left=record.uses_left,
        created_at=record.created_at,
    )
