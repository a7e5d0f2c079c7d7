"""ACME authorizations and challenges (RFC 8555 §7.5): one per identifier and account, reused while valid;
a challenge response is validated off the request path, in a small thread pool, and the result recorded."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from service.authority import Authority
from service.authority.acme.accounts import Account
from service.authority.acme.challenges import ChallengeFailed, Validator, key_authorization
from service.authority.acme.nonces import SpendingDatabase
from service.authority.acme.problems import ERROR_NS, malformed
from service.authority.acme.urls import Urls
from service.db import acme_authorizations as rows
from service.db.acme_authorizations import AuthorizationRow, ChallengeRow
from service.db.sql import Transaction

log = logging.getLogger("pocketca.acme")
PENDING_AUTHZ_LIFETIME = dt.timedelta(days=1)
# longer than any validation runs (10 s per connection, a few redirects or lookups): a challenge processing for
# longer lost its worker (it died, or was stopped mid-validation) and is validated again when next polled
STALE_PROCESSING = dt.timedelta(seconds=60)
VALID_AUTHZ_LIFETIME = dt.timedelta(days=30)
FAILED = ("invalid", "deactivated", "expired", "revoked")


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return secrets.token_urlsafe(12)


class Authorizations:
    def __init__(
        self, authority: Authority, db: SpendingDatabase, validator: Validator, clock: Callable[[], dt.datetime]
    ) -> None:
        self.db = db
        self.audit = authority.audit
        self.validator = validator
        self.clock = clock
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="acme-validate")

    def for_identifier(
        self, transaction: Transaction, account: Account, identifier: dict[str, str], now: dt.datetime
    ) -> AuthorizationRow:
        wildcard = identifier["value"].startswith("*.")
        value = identifier["value"].removeprefix("*.")
        reusable = rows.reusable(
            transaction, account.id, identifier["type"], value, wildcard, now + dt.timedelta(hours=1)
        )
        if reusable is not None:
            return reusable
        authz = AuthorizationRow(
            id=new_id(),
            account_id=account.id,
            identifier_type=identifier["type"],
            identifier_value=value,
            wildcard=wildcard,
            status="pending",
            expires_at=now + PENDING_AUTHZ_LIFETIME,
        )
        if wildcard:
            types = ["dns-01"]
        elif identifier["type"] == "ip":
            types = ["http-01", "tls-alpn-01"]  # RFC 8738 §7: no dns-01 for addresses
        else:
            types = ["http-01", "dns-01", "tls-alpn-01"]
        challenges = [
            ChallengeRow(new_id(), authz.id, kind, secrets.token_urlsafe(32), "pending", None, None, None)
            for kind in types
        ]
        rows.add(transaction, authz, now, challenges)
        return authz

    def cause(self, transaction: Transaction, authz: AuthorizationRow) -> dict[str, Any]:
        for challenge in rows.challenges(transaction, authz.id):
            if challenge.error:  # its detail names the identifier
                return dict(challenge.error)
        return {
            "type": ERROR_NS + "unauthorized",
            "detail": f"the authorization for {authz.identifier_value} is {authz.status}",
        }

    def state(self, transaction: Transaction, authz: AuthorizationRow, now: dt.datetime) -> AuthorizationRow:
        """The authorization as it is now: a pending or valid one past its expiry has expired (and is saved so)."""
        if authz.status in ("pending", "valid") and authz.expires_at <= now:
            return rows.update(transaction, authz.id, status="expired")
        return authz

    def get(
        self, account: Account, authz_id: str, deactivate: bool = False
    ) -> tuple[AuthorizationRow, list[ChallengeRow]]:
        with self.db.transaction() as transaction:
            authz = rows.get(transaction, authz_id)
            if authz is None or authz.account_id != account.id:
                raise malformed(f"no authorization {authz_id} for this account", status=404)
            now = self.clock()
            authz = self.state(transaction, authz, now)
            if deactivate:
                if authz.status not in ("pending", "valid"):
                    raise malformed(f"the authorization is {authz.status}; it cannot be deactivated")
                authz = rows.update(transaction, authz.id, status="deactivated")
            challenges = rows.challenges(transaction, authz.id)
            challenges, jobs = self._stale(transaction, authz, challenges, now)
        for job in jobs:  # once committed: a validation finds the challenge taken
            self.pool.submit(self._validate, job, account, None)
        return authz, challenges

    def render(self, authz: AuthorizationRow, challenges: list[ChallengeRow], urls: Urls) -> dict[str, Any]:
        shown = (
            challenges if authz.status == "pending" else [c for c in challenges if c.status != "pending"] or challenges
        )
        body: dict[str, Any] = {
            "identifier": {"type": authz.identifier_type, "value": authz.identifier_value},
            "status": authz.status,
            "expires": rfc3339(authz.expires_at),
            "challenges": [self.render_challenge(c, urls) for c in shown],
        }
        if authz.wildcard:
            body["wildcard"] = True
        return body

    def render_challenge(self, challenge: ChallengeRow, urls: Urls) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": challenge.type,
            "url": urls.challenge(challenge.id),
            "token": challenge.token,
            "status": challenge.status,
        }
        if challenge.validated_at:
            body["validated"] = rfc3339(challenge.validated_at)
        if challenge.error:
            body["error"] = challenge.error
        return body

    def get_challenge(self, account: Account, challenge_id: str) -> tuple[ChallengeRow, str]:
        found = rows.read_challenge(self.db.database, challenge_id)
        if found is None or found[1].account_id != account.id:
            raise malformed(f"no challenge {challenge_id} for this account", status=404)
        challenge, authz = found
        if _lost(challenge, self.clock()):  # its validation was lost: take it again, in a writer
            return self.respond(account, challenge_id, None)
        return challenge, authz.id

    def respond(self, account: Account, challenge_id: str, address: str | None) -> tuple[ChallengeRow, str]:
        """The client says it is ready: the challenge goes to processing, and is validated in the background."""
        now = self.clock()
        with self.db.transaction() as transaction:
            challenge = rows.challenge(transaction, challenge_id)
            authz = rows.get(transaction, challenge.authorization_id) if challenge else None
            if challenge is None or authz is None or authz.account_id != account.id:
                raise malformed(f"no challenge {challenge_id} for this account", status=404)
            authz = self.state(transaction, authz, now)
            if challenge.status != "pending" or authz.status != "pending":
                (challenge,), jobs = self._stale(transaction, authz, [challenge], now)
            else:
                challenge = rows.update_challenge(transaction, challenge.id, status="processing", processing_since=now)
                jobs = [_job(challenge, authz)]
        for job in jobs:
            self.pool.submit(self._validate, job, account, address)
        return challenge, authz.id

    def _stale(
        self, transaction: Transaction, authz: AuthorizationRow, challenges: list[ChallengeRow], now: dt.datetime
    ) -> tuple[list[ChallengeRow], list[tuple[Any, ...]]]:
        """The challenges whose validation was lost (processing past STALE_PROCESSING, or since before the time
        was kept), taken again in this writer's transaction, so one worker and one only validates each; and the
        challenges as they now are."""
        jobs, now_are = [], []
        for challenge in challenges:
            if authz.status == "pending" and _lost(challenge, now):
                since = challenge.processing_since
                log.warning("challenge %s was left processing since %s: validating it again", challenge.id, since)
                challenge = rows.update_challenge(transaction, challenge.id, processing_since=now)
                jobs.append(_job(challenge, authz))
            now_are.append(challenge)
        return now_are, jobs

    def _validate(self, job: tuple[Any, ...], account: Account, address: str | None) -> None:
        challenge_id, kind, token, authz_id, id_type, value, wildcard = job
        key_auth = key_authorization(token, account.thumbprint)
        error: dict[str, Any] | None = None
        try:
            if kind == "http-01":
                seen = self.validator.http_01(id_type, value, token, key_auth)
            elif kind == "dns-01":
                seen = self.validator.dns_01(value, key_auth)
            else:
                seen = self.validator.tls_alpn_01(id_type, value, key_auth)
        except ChallengeFailed as exc:  # the client reads the detail; the audit keeps what was seen
            seen = exc.record
            shown = f"*.{value}" if wildcard else value
            error = {"type": ERROR_NS + exc.kind, "detail": f"{shown}: {kind}: {exc.detail}", "status": 403}
        except Exception as exc:  # a bug must not leave the challenge processing forever
            log.exception("validating challenge %s failed", challenge_id)
            seen = "internal error"
            failed = f"{value}: {kind}: validation failed ({type(exc).__name__})"
            error = {"type": ERROR_NS + "serverInternal", "detail": failed}
        now = self.clock()
        try:
            with self.db.transaction() as transaction:
                authz = rows.get(transaction, authz_id)
                assert authz is not None
                status = "invalid" if error else "valid"
                rows.update_challenge(transaction, challenge_id, record=seen[:1000], error=error, status=status)
                if authz.status == "pending":
                    if error:
                        rows.update(transaction, authz_id, status="invalid")
                    else:
                        rows.update_challenge(transaction, challenge_id, validated_at=now)
                        rows.update(transaction, authz_id, status="valid", expires_at=now + VALID_AUTHZ_LIFETIME)
                self.audit.record(
                    transaction,
                    "acme.challenge",
                    account.caller(address),
                    outcome="refused" if error else "ok",
                    detail=f"{kind} {value}: {seen}"[:500],
                )
        except Exception:
            log.exception("recording challenge %s failed", challenge_id)


def _job(challenge: ChallengeRow, authz: AuthorizationRow) -> tuple[Any, ...]:
    """What a validation needs, read inside the transaction that took the challenge."""
    return (
        challenge.id,
        challenge.type,
        challenge.token,
        authz.id,
        authz.identifier_type,
        authz.identifier_value,
        authz.wildcard,
    )


def _lost(challenge: ChallengeRow, now: dt.datetime) -> bool:
    """Processing for longer than a validation runs (or since before the time was kept): its worker is gone."""
    since = challenge.processing_since
    return challenge.status == "processing" and (since is None or since <= now - STALE_PROCESSING)
