"""Rate limits on what costs the server rows: new accounts per client address, new orders per account and per
client address, each in a sliding window of three hours (Boulder's window; its numbers are the defaults: 10
accounts per address, 300 orders per account). Counted in the write transaction that would add the row, so the
count is exact across workers and replicas (writers take turns). Over the limit: `rateLimited` (429) with the
Retry-After at which the window frees a place."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.acme.problems import AcmeProblem
from service.db.acme import AcmeAccountRecord, AcmeOrderRecord, nth_newest_since

WINDOW = dt.timedelta(hours=3)


@dataclass(frozen=True)
class RateLimits:
    """How many in WINDOW; 0: no limit."""

    accounts_per_address: int = 10
    orders_per_account: int = 300
    orders_per_address: int = 300


DEFAULT_LIMITS = RateLimits()


def address_key(address: str | None) -> str | None:
    """What an address is counted as: an IPv4 address itself, an IPv6 address its /64 (one network; a host can
    pick any address in it)."""
    if address is None:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed.ipv4_mapped if isinstance(parsed, ipaddress.IPv6Address) else parsed)


def check_new_account(session: Session, limits: RateLimits, address: str | None, now: dt.datetime) -> None:
    key = address_key(address)
    if key is not None and limits.accounts_per_address:
        where = AcmeAccountRecord.created_from == key
        _check(session, AcmeAccountRecord, where, limits.accounts_per_address, f"new accounts from {key}", now)


def check_new_order(
    session: Session, limits: RateLimits, account_id: str, address: str | None, now: dt.datetime
) -> None:
    if limits.orders_per_account:
        where = AcmeOrderRecord.account_id == account_id
        _check(session, AcmeOrderRecord, where, limits.orders_per_account, "new orders of this account", now)
    key = address_key(address)
    if key is not None and limits.orders_per_address:
        where = AcmeOrderRecord.created_from == key
        _check(session, AcmeOrderRecord, where, limits.orders_per_address, f"new orders from {key}", now)


def _check(
    session: Session,
    model: type[AcmeAccountRecord] | type[AcmeOrderRecord],
    where: object,
    limit: int,
    what: str,
    now: dt.datetime,
) -> None:
    oldest_counted = nth_newest_since(session, model.created_at, where, now - WINDOW, limit)  # type: ignore[arg-type]
    if oldest_counted is not None:
        retry = max(1, math.ceil((oldest_counted + WINDOW - now).total_seconds()))
        raise AcmeProblem(
            "rateLimited",
            f"too many {what}: at most {limit} in {WINDOW.total_seconds() / 3600:g} hours; retry in {retry} s",
            status=429,
            headers={"Retry-After": str(retry)},
        )
