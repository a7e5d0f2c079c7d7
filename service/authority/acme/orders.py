"""ACME orders (RFC 8555 §7.4): an order names identifiers; each needs a valid authorization of the account
(authorizations.py); finalize issues through the Authority with exactly those names."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import logging
from collections.abc import Callable, Mapping
from typing import Any

from service.authority import Authority
from service.authority.acme import jws
from service.authority.acme.accounts import Account
from service.authority.acme.authorizations import FAILED, Authorizations, new_id, rfc3339
from service.authority.acme.limits import DEFAULT_LIMITS, RateLimits, address_key, check_new_order
from service.authority.acme.nonces import SpendingDatabase
from service.authority.acme.problems import ERROR_NS, AcmeProblem, from_service_error, malformed, unauthorized
from service.authority.acme.urls import Urls
from service.ca.identifiers import IdentifierPolicy
from service.ca.names import dns_name_problem
from service.ca.profiles import Profile, dns_allowed
from service.db import acme_authorizations, acme_orders
from service.db.acme_orders import OrderRow
from service.db.sql import Transaction
from service.errors import ServiceError

Order = OrderRow  # an order as this module hands it out: a plain value (db.acme_orders)

log = logging.getLogger("pocketca.acme")
ORDER_LIFETIME = dt.timedelta(days=1)
MAX_IDENTIFIERS = 100
RETRY_AFTER = "1"  # seconds, while an order or challenge is being processed


def parse_identifiers(value: object, profile: Profile, policy: IdentifierPolicy) -> list[dict[str, str]]:
    """The order's identifiers, normalized and without duplicates; at most MAX_IDENTIFIERS (Boulder's number,
    and its `malformed`); each one the profile's name rules and the identifier policy let through, else
    `rejectedIdentifier` (a `compound` problem naming each one when there are several)."""
    if not isinstance(value, list) or not value:
        raise malformed("identifiers must be a non-empty list")
    seen: list[dict[str, str]] = []
    problems: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise malformed("each identifier is {'type': 'dns'|'ip', 'value': ...}")
        kind, text = item.get("type"), item["value"]
        if kind == "dns":
            text = text.lower()  # never shortened: `www.example.com..` is refused, not ordered as www.example.com
            if (why := dns_name_problem(text)) or _is_ip(text):
                problems.append(_sub("rejectedIdentifier", f"{text!r} is not a DNS name: it {why or 'is an IP'}", item))
                continue
        elif kind == "ip":
            try:
                text = str(ipaddress.ip_address(text))
            except ValueError:
                problems.append(_sub("malformed", f"{text!r} is not an IP address", item))
                continue
        else:
            problems.append(_sub("unsupportedIdentifier", f"identifier type {kind!r} is not supported", item))
            continue
        identifier = {"type": str(kind), "value": text}
        if identifier not in seen:
            seen.append(identifier)
    if len(seen) + len(problems) > MAX_IDENTIFIERS:
        raise malformed(f"an order cannot contain more than {MAX_IDENTIFIERS} identifiers")
    if len(seen) > profile.max_sans:
        raise AcmeProblem("rejectedIdentifier", f"profile {profile.name!r} allows at most {profile.max_sans} names")
    for identifier in seen:
        refusal = identifier_refusal(identifier, profile, policy)
        if refusal is not None:
            problems.append(_sub("rejectedIdentifier", refusal, identifier))
    if problems:
        kind = problems[0]["type"].removeprefix(ERROR_NS)
        raise AcmeProblem(
            kind if len(problems) == 1 else "compound", "; ".join(p["detail"] for p in problems), subproblems=problems
        )
    return seen


def identifier_refusal(identifier: dict[str, str], profile: Profile | None, policy: IdentifierPolicy) -> str | None:
    """Why the identifier policy (or the profile's name rules) refuses a normalized identifier; None: it may be
    ordered."""
    kind, text = identifier["type"], identifier["value"]
    if kind == "ip":
        address = ipaddress.ip_address(text)
        if profile is not None and profile.names.ip is not None and not any(address in n for n in profile.names.ip):
            return f"profile {profile.name!r} does not allow {text}"
        return policy.refusal_for_address(address)
    if profile is not None and profile.names.dns is not None and not dns_allowed(text, profile.names.dns):
        return f"profile {profile.name!r} does not allow {text}"
    return policy.refusal_for_name(text)


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
        db: SpendingDatabase,
        authorizations: Authorizations,
        clock: Callable[[], dt.datetime],
        *,
        default_profile: str,
        policy: IdentifierPolicy,
        limits: RateLimits = DEFAULT_LIMITS,
    ) -> None:
        self.authority = authority
        self.policy = policy
        self.limits = limits
        self.db = db
        self.audit = authority.audit
        self.authorizations = authorizations
        self.clock = clock
        self.default_profile = default_profile

    @property
    def profiles(self) -> Mapping[str, Profile]:
        return self.authority.profiles

    # --- orders ------------------------------------------------------------------------------------------

    def new_order(self, account: Account, payload: dict[str, Any], address: str | None) -> OrderRow:
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
        identifiers = parse_identifiers(payload.get("identifiers"), self.profiles[name], self.policy)
        now = self.clock()
        with self.db.transaction() as transaction:
            check_new_order(transaction, self.limits, account.id, address, now)
            authz_ids = [self.authorizations.for_identifier(transaction, account, i, now).id for i in identifiers]
            order = OrderRow(
                id=new_id(),
                account_id=account.id,
                status="pending",
                identifiers=identifiers,
                authorization_ids=authz_ids,
                profile=name,
                expires_at=now + ORDER_LIFETIME,
            )
            order = self._refresh(transaction, order, now)
            acme_orders.add(transaction, order, created_at=now, created_from=address_key(address))
            names = ",".join(i["value"] for i in identifiers)
            caller = account.caller(address)
            self.audit.record(transaction, "acme.order.create", caller, detail=f"{names} profile={name}")
        return order

    def _refresh(self, transaction: Transaction, order: OrderRow, now: dt.datetime) -> OrderRow:
        """The order's state follows its authorizations and its expiry (the caller saves it)."""
        if order.status not in ("pending", "ready"):
            return order
        if order.expires_at <= now:
            error = {"type": ERROR_NS + "malformed", "detail": "the order expired before it was finalized"}
            return dataclasses.replace(order, status="invalid", error=error)
        authzs = [
            self.authorizations.state(transaction, a, now)
            for a in acme_authorizations.by_ids(transaction, order.authorization_ids)
        ]
        failed = [a for a in authzs if a.status in FAILED]
        if failed:
            return dataclasses.replace(order, status="invalid", error=self.authorizations.cause(transaction, failed[0]))
        if order.status == "pending" and all(a.status == "valid" for a in authzs):
            return dataclasses.replace(order, status="ready")
        return order

    def get_order(self, account: Account, order_id: str) -> OrderRow:
        now = self.clock()
        with self.db.transaction() as transaction:
            order = acme_orders.get(transaction, order_id)
            if order is None or order.account_id != account.id:
                raise malformed(f"no order {order_id} for this account", status=404)
            refreshed = self._refresh(transaction, order, now)
            if refreshed != order:
                acme_orders.save(transaction, refreshed)
        return refreshed

    def list_orders(self, account: Account) -> list[str]:
        return acme_orders.listed_ids(self.db.database, account.id)

    def render_order(self, order: OrderRow, urls: Urls) -> dict[str, Any]:
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

    # --- finalize and certificates ------------------------------------------------------------------------

    def finalize(self, account: Account, order_id: str, payload: dict[str, Any], address: str | None) -> OrderRow:
        order = self.get_order(account, order_id)
        if order.status != "ready":
            raise AcmeProblem("orderNotReady", f"the order is {order.status}, not ready", status=403)
        csr = jws.b64decode(payload.get("csr"), "csr")
        for identifier in order.identifiers:  # again: the policy may have changed since the order was made
            if (refusal := identifier_refusal(identifier, None, self.policy)) is not None:
                raise AcmeProblem("rejectedIdentifier", refusal)
        names = frozenset(i["value"] for i in order.identifiers)
        with self.db.transaction() as transaction:  # one finalize at a time: ready -> processing
            moved = acme_orders.move(transaction, order.id, to="processing", only_from="ready")
        if not moved:
            raise AcmeProblem("orderNotReady", "the order is already being finalized", status=403)
        try:
            self._check_csr_names(csr, names)
            issued = self.authority.sign_acme_csr(csr, caller=account.caller(address, names), profile=order.profile)
        except BaseException as exc:
            # a bad CSR can be fixed, a failure retried: the order stays ready
            with self.db.transaction() as transaction:
                acme_orders.move(transaction, order.id, to="ready")
            if isinstance(exc, ServiceError):
                raise from_service_error(exc) from None
            raise
        with self.db.transaction() as transaction:
            record = acme_orders.get(transaction, order.id)
            assert record is not None
            record = dataclasses.replace(record, status="valid", certificate_serial=issued.summary.serial)
            acme_orders.save(transaction, record)
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
        return acme_orders.ordered_certificate(self.db.database, account.id, serial)

    def check_owner(self, account: Account, serial: str) -> None:
        if not self.certificate_serial_of(account, serial):
            raise unauthorized("this account did not order this certificate")

    def check_may_revoke(self, account: Account, serial: str, names: list[tuple[str, str]]) -> None:
        """RFC 8555 §7.6: the account that ordered it, or one holding valid authorizations for all its names."""
        if self.certificate_serial_of(account, serial):
            return
        for kind, value in names:  # an identifier the policy refuses (the service's own names...) proves nothing
            refusal = identifier_refusal({"type": kind, "value": value}, None, self.policy)
            if refusal is not None:
                raise unauthorized(f"this account did not order this certificate, and {refusal}")
        now = self.clock()
        for kind, value in names:
            held = acme_authorizations.is_held(
                self.db.database, account.id, kind, value.removeprefix("*."), value.startswith("*."), now
            )
            if not held:
                raise unauthorized(
                    f"this account neither ordered this certificate nor holds an authorization for {value}"
                )
        if not names:
            raise unauthorized("this account did not order this certificate")
