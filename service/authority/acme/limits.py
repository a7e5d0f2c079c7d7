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

from service.authority.acme.problems import AcmeProblem
from service.db import acme_accounts, acme_orders
from service.db.sql import Transaction

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


def check_new_account(transaction: Transaction, limits: RateLimits, address: str | None, now: dt.datetime) -> None:
    key = address_key(address)
    if key is not None and limits.accounts_per_address:
        n = limits.accounts_per_address
        _check(acme_accounts.nth_newest_from(transaction, key, now - WINDOW, n), n, f"new accounts from {key}", now)


def check_new_order(
    transaction: Transaction, limits: RateLimits, account_id: str, address: str | None, now: dt.datetime
) -> None:
    if limits.orders_per_account:
        n = limits.orders_per_account
        oldest = acme_orders.nth_newest_of_account(transaction, account_id, now - WINDOW, n)
        _check(oldest, n, "new orders of this account", now)
    key = address_key(address)
    if key is not None and limits.orders_per_address:
        n = limits.orders_per_address
        _check(acme_orders.nth_newest_from(transaction, key, now - WINDOW, n), n, f"new orders from {key}", now)


def _check(oldest_counted: dt.datetime | None, limit: int, what: str, now: dt.datetime) -> None:
    """`oldest_counted`: when the limit-th newest row of the window was made (None: fewer in the window)."""
    if oldest_counted is not None:
        retry = max(1, math.ceil((oldest_counted + WINDOW - now).total_seconds()))
        raise AcmeProblem(
            "rateLimited",
            f"too many {what}: at most {limit} in {WINDOW.total_seconds() / 3600:g} hours; retry in {retry} s",
            status=429,
            headers={"Retry-After": str(retry)},
        )
