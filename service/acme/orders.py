"""ACME orders, authorizations and challenges (RFC 8555 §7.4–7.5): an order names identifiers; each needs a
valid authorization of the account (reused while valid); a challenge proves it, validated off the request
path; finalize issues through the Authority with exactly those names."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.acme import jws
from service.acme.accounts import Account
from service.acme.challenges import ChallengeFailed, Validator, key_authorization
from service.acme.problems import ERROR_NS, AcmeProblem, from_service_error, malformed, unauthorized
from service.acme.urls import Urls
from service.authority import Authority
from service.ca.names import is_dns_name
from service.ca.profiles import Profile, dns_allowed
from service.db.acme import AcmeAuthorizationRecord, AcmeChallengeRecord, AcmeOrderRecord
from service.errors import ServiceError

log = logging.getLogger("pocketca.acme")
ORDER_LIFETIME = dt.timedelta(days=1)
PENDING_AUTHZ_LIFETIME = dt.timedelta(days=1)
VALID_AUTHZ_LIFETIME = dt.timedelta(days=30)
MAX_IDENTIFIERS = 100
RETRY_AFTER = "1"  # seconds, while an order or challenge is being processed
FAILED = ("invalid", "deactivated", "expired", "revoked")


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id() -> str:
    return secrets.token_urlsafe(12)


def parse_identifiers(value: object, profile: Profile) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise malformed("identifiers must be a non-empty list")
    if len(value) > min(MAX_IDENTIFIERS, profile.max_sans):
        raise AcmeProblem("rejectedIdentifier", f"profile {profile.name!r} allows at most {profile.max_sans} names")
    seen: list[dict[str, str]] = []
    problems: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise malformed("each identifier is {'type': 'dns'|'ip', 'value': ...}")
        kind, text = item.get("type"), item["value"]
        if kind == "dns":
            text = text.lower().rstrip(".")
            if not is_dns_name(text, allow_wildcard=True) or _is_ip(text):
                problems.append(_sub("rejectedIdentifier", f"{text!r} is not a DNS name", item))
                continue
            if profile.names.dns is not None and not dns_allowed(text, profile.names.dns):
                problems.append(_sub("rejectedIdentifier", f"profile {profile.name!r} does not allow {text}", item))
                continue
        elif kind == "ip":
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                problems.append(_sub("malformed", f"{text!r} is not an IP address", item))
                continue
            text = str(address)
            if profile.names.ip is not None and not any(address in net for net in profile.names.ip):
                problems.append(_sub("rejectedIdentifier", f"profile {profile.name!r} does not allow {text}", item))
                continue
        else:
            problems.append(_sub("unsupportedIdentifier", f"identifier type {kind!r} is not supported", item))
            continue
        identifier = {"type": str(kind), "value": text}
        if identifier not in seen:
            seen.append(identifier)
    if problems:
        kind = problems[0]["type"].removeprefix(ERROR_NS)
        raise AcmeProblem(
            kind if len(problems) == 1 else "compound", "; ".join(p["detail"] for p in problems), subproblems=problems
        )
    return seen


def _sub(kind: str, detail: str, identifier: dict[str, Any]) -> dict[str, Any]:
    return {"type": ERROR_NS + kind, "detail": detail, "identifier": identifier}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Orders:
    def __init__(
        self,
        authority: Authority,
        validator: Validator,
        clock: Callable[[], dt.datetime],
        *,
        default_profile: str,
    ) -> None:
        self.authority = authority
        self.db = authority.db
        self.audit = authority.audit
        self.validator = validator
        self.clock = clock
        self.default_profile = default_profile
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="acme-validate")

    @property
    def profiles(self) -> Mapping[str, Profile]:
        return self.authority.profiles

    # --- orders ------------------------------------------------------------------------------------------

    def new_order(self, account: Account, payload: dict[str, Any], address: str | None) -> AcmeOrderRecord:
        if payload.get("notBefore") is not None or payload.get("notAfter") is not None:
            raise malformed("notBefore and notAfter are not supported: the profile sets the validity")
        requested = payload.get("profile")
        if requested is not None and not isinstance(requested, str):
            raise malformed("profile must be a string")
        if account.profile is not None and requested not in (None, account.profile):
            raise AcmeProblem("invalidProfile", f"this account may only order the profile {account.profile!r}")
        name = requested or account.profile or self.default_profile
        if name not in self.profiles:
            raise AcmeProblem("invalidProfile", f"unknown profile {name!r}; known: {', '.join(sorted(self.profiles))}")
        identifiers = parse_identifiers(payload.get("identifiers"), self.profiles[name])
        now = self.clock()
        with self.db.writer() as session:
            authz_ids = [self._authorization_for(session, account, i, now).id for i in identifiers]
            order = AcmeOrderRecord(
                id=_new_id(),
                account_id=account.id,
                status="pending",
                identifiers=identifiers,
                authorization_ids=authz_ids,
                profile=name,
                expires_at=now + ORDER_LIFETIME,
                created_at=now,
            )
            session.add(order)
            self._refresh(session, order, now)
            names = ",".join(i["value"] for i in identifiers)
            self.audit.record(session, "acme.order.create", account.caller(address), detail=f"{names} profile={name}")
        self.audit.emit(session)
        return order

    def _authorization_for(
        self, session: Session, account: Account, identifier: dict[str, str], now: dt.datetime
    ) -> AcmeAuthorizationRecord:
        wildcard = identifier["value"].startswith("*.")
        value = identifier["value"].removeprefix("*.")
        reusable = session.scalar(
            select(AcmeAuthorizationRecord)
            .where(
                AcmeAuthorizationRecord.account_id == account.id,
                AcmeAuthorizationRecord.identifier_value == value,
                AcmeAuthorizationRecord.identifier_type == identifier["type"],
                AcmeAuthorizationRecord.wildcard == wildcard,
                AcmeAuthorizationRecord.status.in_(("valid", "pending")),
                AcmeAuthorizationRecord.expires_at > now + dt.timedelta(hours=1),
            )
            .order_by(AcmeAuthorizationRecord.status.desc(), AcmeAuthorizationRecord.expires_at.desc())
            .limit(1)
        )  # a valid one first ("valid" > "pending")
        if reusable is not None:
            return reusable
        authz = AcmeAuthorizationRecord(
            id=_new_id(),
            account_id=account.id,
            identifier_type=identifier["type"],
            identifier_value=value,
            wildcard=wildcard,
            status="pending",
            expires_at=now + PENDING_AUTHZ_LIFETIME,
            created_at=now,
        )
        session.add(authz)
        if wildcard:
            types = ["dns-01"]
        elif identifier["type"] == "ip":
            types = ["http-01", "tls-alpn-01"]  # RFC 8738 §7: no dns-01 for addresses
        else:
            types = ["http-01", "dns-01", "tls-alpn-01"]
        for kind in types:
            session.add(
                AcmeChallengeRecord(
                    id=_new_id(),
                    authorization_id=authz.id,
                    type=kind,
                    token=secrets.token_urlsafe(32),
                    status="pending",
                )
            )
        return authz

    def _refresh(self, session: Session, order: AcmeOrderRecord, now: dt.datetime) -> None:
        """The order's state follows its authorizations and its expiry."""
        if order.status not in ("pending", "ready"):
            return
        if order.expires_at <= now:
            order.status = "invalid"
            order.error = {"type": ERROR_NS + "malformed", "detail": "the order expired before it was finalized"}
            return
        authzs = [self._authz_state(session, a, now) for a in self._authzs(session, order)]
        failed = [a for a in authzs if a.status in FAILED]
        if failed:
            order.status = "invalid"
            order.error = self._cause(session, failed[0])
        elif order.status == "pending" and all(a.status == "valid" for a in authzs):
            order.status = "ready"

    def _cause(self, session: Session, authz: AcmeAuthorizationRecord) -> dict[str, Any]:
        for challenge in self._challenges(session, authz.id):
            if challenge.error:
                error = dict(challenge.error)
                error["detail"] = f"{authz.identifier_value}: {error.get('detail', '')}"
                return error
        return {
            "type": ERROR_NS + "unauthorized",
            "detail": f"the authorization for {authz.identifier_value} is {authz.status}",
        }

    def _authz_state(
        self, session: Session, authz: AcmeAuthorizationRecord, now: dt.datetime
    ) -> AcmeAuthorizationRecord:
        if authz.status in ("pending", "valid") and authz.expires_at <= now:
            authz.status = "expired"
        return authz

    def _authzs(self, session: Session, order: AcmeOrderRecord) -> list[AcmeAuthorizationRecord]:
        rows = session.scalars(
            select(AcmeAuthorizationRecord).where(AcmeAuthorizationRecord.id.in_(order.authorization_ids))
        ).all()
        by_id = {r.id: r for r in rows}
        return [by_id[i] for i in order.authorization_ids if i in by_id]

    def _challenges(self, session: Session, authz_id: str) -> list[AcmeChallengeRecord]:
        return list(
            session.scalars(
                select(AcmeChallengeRecord)
                .where(AcmeChallengeRecord.authorization_id == authz_id)
                .order_by(AcmeChallengeRecord.type)
            ).all()
        )

    def get_order(self, account: Account, order_id: str) -> AcmeOrderRecord:
        now = self.clock()
        with self.db.writer() as session:
            order = session.get(AcmeOrderRecord, order_id)
            if order is None or order.account_id != account.id:
                raise malformed(f"no order {order_id} for this account", status=404)
            self._refresh(session, order, now)
        return order

    def list_orders(self, account: Account) -> list[str]:
        with self.db.reader() as session:
            return list(
                session.scalars(
                    select(AcmeOrderRecord.id)
                    .where(
                        AcmeOrderRecord.account_id == account.id,
                        AcmeOrderRecord.status.in_(("pending", "ready", "processing", "valid")),
                    )
                    .order_by(AcmeOrderRecord.created_at.desc())
                    .limit(100)
                ).all()
            )

    def render_order(self, order: AcmeOrderRecord, urls: Urls) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": order.status,
            "expires": rfc3339(order.expires_at),
            "identifiers": order.identifiers,
            "authorizations": [urls.authorization(a) for a in order.authorization_ids],
            "finalize": urls.finalize(order.id),
            "profile": order.profile,
        }
        if order.error:
            body["error"] = order.error
        if order.certificate_serial:
            body["certificate"] = urls.certificate(order.certificate_serial)
        return body

    # --- authorizations and challenges ------------------------------------------------------------------

    def get_authorization(
        self, account: Account, authz_id: str, deactivate: bool = False
    ) -> tuple[AcmeAuthorizationRecord, list[AcmeChallengeRecord]]:
        with self.db.writer() as session:
            authz = session.get(AcmeAuthorizationRecord, authz_id)
            if authz is None or authz.account_id != account.id:
                raise malformed(f"no authorization {authz_id} for this account", status=404)
            self._authz_state(session, authz, self.clock())
            if deactivate:
                if authz.status not in ("pending", "valid"):
                    raise malformed(f"the authorization is {authz.status}; it cannot be deactivated")
                authz.status = "deactivated"
            return authz, self._challenges(session, authz.id)

    def render_authorization(
        self, authz: AcmeAuthorizationRecord, challenges: list[AcmeChallengeRecord], urls: Urls
    ) -> dict[str, Any]:
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

    def render_challenge(self, challenge: AcmeChallengeRecord, urls: Urls) -> dict[str, Any]:
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

    def get_challenge(self, account: Account, challenge_id: str) -> tuple[AcmeChallengeRecord, str]:
        with self.db.reader() as session:
            challenge = session.get(AcmeChallengeRecord, challenge_id)
            authz = session.get(AcmeAuthorizationRecord, challenge.authorization_id) if challenge else None
            if challenge is None or authz is None or authz.account_id != account.id:
                raise malformed(f"no challenge {challenge_id} for this account", status=404)
            return challenge, authz.id

    def respond(self, account: Account, challenge_id: str, address: str | None) -> tuple[AcmeChallengeRecord, str]:
        """The client says it is ready: the challenge goes to processing, and is validated in the background."""
        now = self.clock()
        with self.db.writer() as session:
            challenge = session.get(AcmeChallengeRecord, challenge_id)
            authz = session.get(AcmeAuthorizationRecord, challenge.authorization_id) if challenge else None
            if challenge is None or authz is None or authz.account_id != account.id:
                raise malformed(f"no challenge {challenge_id} for this account", status=404)
            self._authz_state(session, authz, now)
            if challenge.status != "pending" or authz.status != "pending":
                return challenge, authz.id  # idempotent: answering twice changes nothing
            challenge.status = "processing"
            job = (
                challenge.id,
                challenge.type,
                challenge.token,
                authz.id,
                authz.identifier_type,
                authz.identifier_value,
                authz.wildcard,
            )
        self.pool.submit(self._validate, job, account, address)
        return challenge, authz.id

    def _validate(self, job: tuple[Any, ...], account: Account, address: str | None) -> None:
        challenge_id, kind, token, authz_id, id_type, value, _wildcard = job
        key_auth = key_authorization(token, account.thumbprint)
        error: dict[str, Any] | None = None
        try:
            if kind == "http-01":
                seen = self.validator.http_01(id_type, value, token, key_auth)
            elif kind == "dns-01":
                seen = self.validator.dns_01(value, key_auth)
            else:
                seen = self.validator.tls_alpn_01(id_type, value, key_auth)
        except ChallengeFailed as exc:
            seen = exc.detail
            error = {"type": ERROR_NS + exc.kind, "detail": exc.detail, "status": 403}
        except Exception as exc:  # a bug must not leave the challenge processing forever
            log.exception("validating challenge %s failed", challenge_id)
            seen = "internal error"
            error = {"type": ERROR_NS + "serverInternal", "detail": f"validation failed: {type(exc).__name__}"}
        now = self.clock()
        try:
            with self.db.writer() as session:
                challenge = session.get(AcmeChallengeRecord, challenge_id)
                authz = session.get(AcmeAuthorizationRecord, authz_id)
                assert challenge is not None and authz is not None
                challenge.record = seen[:1000]
                challenge.error = error
                challenge.status = "invalid" if error else "valid"
                if authz.status == "pending":
                    if error:
                        authz.status = "invalid"
                    else:
                        challenge.validated_at = now
                        authz.status, authz.expires_at = "valid", now + VALID_AUTHZ_LIFETIME
                self.audit.record(
                    session,
                    "acme.challenge",
                    account.caller(address),
                    outcome="refused" if error else "ok",
                    detail=f"{kind} {value}: {seen}"[:500],
                )
            self.audit.emit(session)
        except Exception:
            log.exception("recording challenge %s failed", challenge_id)

    # --- finalize and certificates ------------------------------------------------------------------------

    def finalize(
        self, account: Account, order_id: str, payload: dict[str, Any], address: str | None
    ) -> AcmeOrderRecord:
        order = self.get_order(account, order_id)
        if order.status != "ready":
            raise AcmeProblem("orderNotReady", f"the order is {order.status}, not ready", status=403)
        csr = jws.b64decode(payload.get("csr"), "csr")
        names = frozenset(i["value"] for i in order.identifiers)
        with self.db.writer() as session:  # one finalize at a time: ready -> processing
            moved = session.execute(
                update(AcmeOrderRecord)
                .where(AcmeOrderRecord.id == order.id, AcmeOrderRecord.status == "ready")
                .values(status="processing")
            ).rowcount  # type: ignore[attr-defined]
        if not moved:
            raise AcmeProblem("orderNotReady", "the order is already being finalized", status=403)
        try:
            self._check_csr_names(csr, names)
            issued = self.authority.sign_acme_csr(csr, caller=account.caller(address, names), profile=order.profile)
        except BaseException as exc:
            with self.db.writer() as session:  # a bad CSR can be fixed, a failure retried: the order stays ready
                session.execute(update(AcmeOrderRecord).where(AcmeOrderRecord.id == order.id).values(status="ready"))
            if isinstance(exc, ServiceError):
                raise from_service_error(exc) from None
            raise
        with self.db.writer() as session:
            record = session.get(AcmeOrderRecord, order.id)
            assert record is not None
            record.status, record.certificate_serial = "valid", issued.summary.serial
        return record

    def _check_csr_names(self, csr: bytes, names: frozenset[str]) -> None:
        from service.ca.csr import load_csr, read_request
        from service.ca.names import format_general_name

        request = read_request(load_csr(csr))
        sans = {format_general_name(n) for n in request.sans}
        if request.common_name and request.common_name not in names:
            raise AcmeProblem("badCSR", f"the CSR's CN {request.common_name!r} is not one of the order's identifiers")
        if sans != names:
            raise AcmeProblem(
                "badCSR", f"the CSR must name exactly the order's identifiers {sorted(names)}, not {sorted(sans)}"
            )

    def certificate_serial_of(self, account: Account, serial: str) -> bool:
        with self.db.reader() as session:
            return (
                session.scalar(
                    select(AcmeOrderRecord.id)
                    .where(AcmeOrderRecord.certificate_serial == serial, AcmeOrderRecord.account_id == account.id)
                    .limit(1)
                )
                is not None
            )

    def check_owner(self, account: Account, serial: str) -> None:
        if not self.certificate_serial_of(account, serial):
            raise unauthorized("this account did not order this certificate")

    def check_may_revoke(self, account: Account, serial: str, names: list[tuple[str, str]]) -> None:
        """RFC 8555 §7.6: the account that ordered it, or one holding valid authorizations for all its names."""
        if self.certificate_serial_of(account, serial):
            return
        now = self.clock()
        with self.db.reader() as session:
            for kind, value in names:
                held = session.scalar(
                    select(AcmeAuthorizationRecord.id)
                    .where(
                        AcmeAuthorizationRecord.account_id == account.id,
                        AcmeAuthorizationRecord.identifier_type == kind,
                        AcmeAuthorizationRecord.identifier_value == value.removeprefix("*."),
                        AcmeAuthorizationRecord.wildcard == value.startswith("*."),
                        AcmeAuthorizationRecord.status == "valid",
                        AcmeAuthorizationRecord.expires_at > now,
                    )
                    .limit(1)
                )
                if held is None:
                    raise unauthorized(
                        f"this account neither ordered this certificate nor holds an authorization for {value}"
                    )
        if not names:
            raise unauthorized("this account did not order this certificate")
