"""Web console sessions: a token logs in once; the browser then holds a random session secret in a cookie.

Stored server-side, hashed (SHA-256, as tokens are): a logout or a deleted token ends the session at once, in
every worker and replica, and a copy of the database holds nothing a browser could present. Each request
re-reads the token, so the session can never do more than the token still may.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from service.authority.audit import Auditor
from service.authority.callers import TokenCaller, hash_secret
from service.authority.tokens import TokenManager
from service.db import console_sessions
from service.db.secrets import shared_secret
from service.db.session import Database
from service.errors import AuthenticationError, PermissionDeniedError

SESSION_LIFETIME = dt.timedelta(hours=8)
LOGIN_FORM_LIFETIME = dt.timedelta(hours=1)
CONSOLE_SCOPES = ("admin", "read")
LOGIN_KEY = "console-login"  # the shared secret (table server_secrets, db.secrets) the login form is bound to


@dataclass(frozen=True)
class ConsoleSession:
    secret: str  # goes into the cookie only; never stored, never logged
    caller: TokenCaller
    expires_at: dt.datetime

    @property
    def csrf_token(self) -> str:
        return csrf_token_for(self.secret)


def csrf_token_for(secret: str) -> str:
    """Derived from the cookie's secret, which another site can neither read nor set (SameSite=Strict, HttpOnly)."""
    return hmac.new(secret.encode(), b"pocketca console csrf", hashlib.sha256).hexdigest()


class ConsoleSessions:
    def __init__(self, db: Database, tokens: TokenManager, audit: Auditor, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.tokens = tokens
        self.audit = audit
        self.clock = clock
        self._login_key: bytes | None = None

    # --- the login form, before there is a session ------------------------------------------------------------
    # Its cookie is `<nonce>.<issued at>.<MAC>` and its CSRF token a MAC of that cookie, both keyed with a secret
    # only the server holds (the same in every worker and replica: the database's). A cookie the server did not
    # make, or made over an hour ago, is replaced, never believed: a planted `__Host-pocketca_login=ATTACKER`
    # yields no token the attacker can know.

    def new_login_cookie(self) -> str:
        body = f"{secrets.token_urlsafe(24)}.{int(self.clock().timestamp())}"
        return f"{body}.{self._mac('login-cookie', body)}"

    def is_login_cookie(self, value: str | None) -> bool:
        """Whether the server made this cookie, within the last LOGIN_FORM_LIFETIME."""
        parts = value.split(".") if value else []
        if len(parts) != 3 or not parts[1].isascii() or not parts[1].isdigit():
            return False
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(parts[2], self._mac("login-cookie", body)):
            return False
        age = self.clock().timestamp() - int(parts[1])
        return -60 <= age <= LOGIN_FORM_LIFETIME.total_seconds()

    def login_csrf(self, cookie: str) -> str:
        return self._mac("login-csrf", cookie)

    def _mac(self, purpose: str, text: str) -> str:
        return hmac.new(self._key(), f"{purpose}|{text}".encode(), hashlib.sha256).hexdigest()

    def _key(self) -> bytes:
        if self._login_key is None:  # read once per worker: it never changes
            self._login_key = shared_secret(self.db, LOGIN_KEY)
        return self._login_key

    # --- sessions -----------------------------------------------------------------------------------------------

    def open(self, token: str, *, address: str | None = None) -> ConsoleSession:
        """Logs in with an admin or read token; others are refused (and the refusal audited). A person typed the
        token into a form, so a refusal speaks of the console's words (an admin or read token), not HTTP's."""
        try:
            caller = dataclasses.replace(self.tokens.authenticate(token, address=address), console=True)
        except AuthenticationError as exc:  # the same kind (a token that names no one is counted by the throttle)
            raise type(exc)(_console_words(exc.detail)) from None
        if caller.is_enrollment or caller.scope not in CONSOLE_SCOPES:
            detail = "the console needs an admin or read token"
            self.audit.refused("console.login", caller, detail)
            raise PermissionDeniedError(detail)
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        expires_at = now + SESSION_LIFETIME
        with self.db.transaction() as transaction:
            console_sessions.open_session(transaction, hash_secret(secret), caller.token_id, now, expires_at)
            self.audit.record(transaction, "console.login", caller, detail=f"scope={caller.scope}")
        return ConsoleSession(secret=secret, caller=caller, expires_at=expires_at)

    def resume(self, secret: str, *, address: str | None = None) -> ConsoleSession:
        """The session of a cookie: AuthenticationError when it is unknown, expired, or its token no longer works."""
        found = console_sessions.find(self.db, hash_secret(secret))
        if found is None or found[1] <= self.clock():
            raise AuthenticationError("the console session has ended; log in again")
        token_id, expires_at = found
        caller = dataclasses.replace(self.tokens.caller_by_id(token_id, address=address), console=True)
        return ConsoleSession(secret=secret, caller=caller, expires_at=expires_at)

    def close(self, current: ConsoleSession) -> None:
        with self.db.transaction() as transaction:
            console_sessions.close(transaction, hash_secret(current.secret))
            self.audit.record(transaction, "console.logout", current.caller)


def _console_words(detail: str) -> str:
    """A refused token in the words of the login form (it asks for an admin or read token, not a bearer token)."""
    if detail.endswith("is not valid"):
        return "that admin token is not valid: copy it again from <data dir>/admin.token (or use a read token)"
    reason = detail.removeprefix("the bearer token ")
    if reason == detail:
        return detail
    return f"that token {reason}: log in with a current admin or read token"
