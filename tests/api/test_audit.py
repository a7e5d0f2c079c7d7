"""The audit trail: a row for every change and every refusal, committed with the change; GET /audit; the log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import func, select

from service.authority import Authority
from service.db.models import AuditRecord, CertificateRecord
from service.errors import AuthenticationError
from tests.api.conftest import Holder, bearer, enroll
from tests.conftest import ApiClient
from tests.helpers import csr_pem, p256

pytestmark = pytest.mark.anyio

FIELDS = {"id", "at", "action", "outcome", "actor", "token_id", "serial", "client_address", "detail"}
P12_PASSWORD = "correct horse battery"
IssueHolder = Callable[..., Holder]
ISSUING = ("certificate.issue", "certificate.renew", "pkcs12.issue")


def token_id(token: str) -> str:
    return token.removeprefix("pca_")[:16]


def secret_of(token: str) -> str:
    return token.removeprefix("pca_")[17:]


async def audit_events(api: ApiClient, admin_token: str) -> list[dict[str, Any]]:
    response = await api.http.get("/audit", params={"limit": 1000}, headers=bearer(admin_token))
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def last_id(authority: Authority) -> int:
    with authority.db.reader() as session:
        return session.scalar(select(func.max(AuditRecord.id))) or 0


def certificate_count(authority: Authority) -> int:
    with authority.db.reader() as session:
        return session.scalar(select(func.count()).select_from(CertificateRecord)) or 0


@dataclass
class Story:
    """What `act` did, and the audit rows it must have left, oldest first."""

    expected: list[dict[str, object]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


async def act(api: ApiClient, admin_token: str, holder: Holder) -> Story:
    """One of each change and refusal, through the API."""
    story = Story(tokens=[admin_token])
    admin = f"token:{token_id(admin_token)}"

    created = await api.http.post("/tokens", json={"scope": "issue"}, headers=bearer(admin_token))
    assert created.status_code == 201, created.text
    issue = created.json()["token"]
    story.tokens.append(issue)
    issue_id = created.json()["id"]
    story.expected.append(
        {"action": "token.create", "outcome": "ok", "actor": admin, "token_id": issue_id, "detail": "scope=issue"}
    )

    issued = await enroll(api, issue, "web1.example.com")
    story.expected.append(
        {
            "action": "certificate.issue",
            "outcome": "ok",
            "actor": f"token:{issue_id}",
            "token_id": issue_id,
            "serial": issued.serial,
            "detail": "profile=client",
        }
    )

    api.as_peer(holder.der)
    renewed = await api.http.post("/csr", json={"csr": csr_pem(p256(), "alice").decode()})
    api.as_peer(None)
    assert renewed.status_code == 201, renewed.text
    story.expected.append(
        {
            "action": "certificate.renew",
            "outcome": "ok",
            "actor": f"cert:{holder.serial}",
            "token_id": None,
            "serial": renewed.json()["serial"],
        }
    )

    revoked = await api.http.post(
        f"/certs/{issued.serial}/revoke", json={"reason": "keyCompromise"}, headers=bearer(admin_token)
    )
    assert revoked.status_code == 200, revoked.text
    story.expected.append(
        {
            "action": "certificate.revoke",
            "outcome": "ok",
            "actor": admin,
            "serial": issued.serial,
            "detail": "reason=keyCompromise",
        }
    )

    bundle = await api.http.post(
        "/pkcs12", json={"cn": "p12.example.com", "password": P12_PASSWORD}, headers=bearer(admin_token)
    )
    assert bundle.status_code == 201
    p12_serial = bundle.headers["location"].removeprefix("/certs/")
    story.expected.append({"action": "pkcs12.issue", "outcome": "ok", "actor": admin, "serial": p12_serial})

    created = await api.http.post("/tokens", json={"scope": "issue", "uses": 1}, headers=bearer(admin_token))
    assert created.status_code == 201
    once = created.json()["token"]
    story.tokens.append(once)
    once_id = created.json()["id"]
    story.expected.append({"action": "token.create", "outcome": "ok", "actor": admin, "token_id": once_id})

    spent = await enroll(api, once, "once.example.com")
    story.expected.append(
        {"action": "token.use", "outcome": "ok", "actor": f"token:{once_id}", "token_id": once_id, "serial": None}
    )
    story.expected.append(
        {"action": "certificate.issue", "outcome": "ok", "actor": f"token:{once_id}", "serial": spent.serial}
    )

    again = await api.http.post(
        "/csr", json={"csr": csr_pem(p256(), "once.example.com").decode()}, headers=bearer(once)
    )
    assert again.status_code == 401
    story.expected.append(
        {
            "action": "token.use",
            "outcome": "refused",
            "actor": f"token:{once_id}",
            "token_id": once_id,
            "detail": "the bearer token has been used up",
        }
    )

    refused = await api.http.post(
        "/csr",
        json={"csr": csr_pem(p256(), "long.example.com").decode(), "validity_days": 9999},
        headers=bearer(admin_token),
    )
    assert refused.status_code == 403
    (violation,) = refused.json()["violations"]
    story.expected.append(
        {"action": "certificate.issue", "outcome": "refused", "actor": admin, "serial": None, "detail": violation}
    )

    deleted = await api.http.delete(f"/tokens/{issue_id}", headers=bearer(admin_token))
    assert deleted.status_code == 204
    story.expected.append({"action": "token.delete", "outcome": "ok", "actor": admin, "token_id": issue_id})
    return story


def _matches(event: dict[str, object], expected: dict[str, object]) -> bool:
    return all(event[k] == v for k, v in expected.items())


async def test_every_change_and_refusal_is_listed_newest_first(
    api: ApiClient, admin_token: str, authority: Authority, issue_holder: IssueHolder
) -> None:
    holder = issue_holder("alice")
    before = last_id(authority)
    started = dt.datetime.now(dt.UTC)
    story = await act(api, admin_token, holder)

    events = await audit_events(api, admin_token)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)  # newest first, strictly
    for event in events:
        assert set(event) == FIELDS
    new = [e for e in events if e["id"] > before]
    oldest_first = list(reversed(new))
    assert [e["action"] for e in oldest_first] == [x["action"] for x in story.expected]
    for event, expected in zip(oldest_first, story.expected, strict=True):
        assert _matches(event, expected), (event, expected)
        assert event["client_address"] == "127.0.0.1"  # every one of these came over HTTP
        at = dt.datetime.fromisoformat(str(event["at"]))
        assert at.tzinfo is not None and started - dt.timedelta(seconds=5) <= at <= dt.datetime.now(dt.UTC)

    # every certificate on record has its issuing row, and no issuing row names a certificate not on record
    with authority.db.reader() as session:
        on_record = set(session.scalars(select(CertificateRecord.serial)))
        audited = set(
            session.scalars(
                select(AuditRecord.serial).where(AuditRecord.action.in_(ISSUING), AuditRecord.outcome == "ok")
            )
        )
    assert on_record == audited


async def test_paging_walks_every_event_once(api: ApiClient, admin_token: str, issue_holder: IssueHolder) -> None:
    await act(api, admin_token, issue_holder("alice"))
    everything = [e["id"] for e in await audit_events(api, admin_token)]
    assert len(everything) > 10

    walked: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await api.http.get("/audit", params=params, headers=bearer(admin_token))
        assert response.status_code == 200, response.text
        page = response.json()
        assert 1 <= len(page["items"]) <= 2
        walked += [e["id"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == everything
    assert all(a > b for a, b in pairwise(walked))
    assert pages == (len(everything) + 1) // 2


BAD_CURSORS = (
    "not a cursor",
    "%%%",
    base64.urlsafe_b64encode(b"id:abc").decode(),
    base64.urlsafe_b64encode(b"serial:12").decode(),
    base64.urlsafe_b64encode(b"id:-3").decode(),
)


async def test_bad_cursor_is_400_and_bad_limit_4xx(api: ApiClient, admin_token: str) -> None:
    for cursor in BAD_CURSORS:
        response = await api.http.get("/audit", params={"cursor": cursor}, headers=bearer(admin_token))
        assert response.status_code == 400, cursor
        assert response.headers["content-type"] == "application/problem+json"
    for limit in (0, -1, 1001):
        response = await api.http.get("/audit", params={"limit": limit}, headers=bearer(admin_token))
        assert 400 <= response.status_code < 500, limit
        assert response.headers["content-type"] == "application/problem+json"


async def test_only_admin_tokens_read_the_trail(api: ApiClient, authority: Authority) -> None:
    options: list[dict[str, Any]] = [{"scope": "issue"}, {"scope": "revoke"}, {"scope": "read"}, {"cn": "alice"}]
    for option in options:
        token = authority.create_token(**option).token
        response = await api.http.get("/audit", headers=bearer(token))
        assert response.status_code == 403, option
        assert response.headers["content-type"] == "application/problem+json"
    assert (await api.http.get("/audit")).status_code == 401


async def test_each_event_is_one_json_log_line_without_secrets(
    api: ApiClient,
    admin_token: str,
    authority: Authority,
    issue_holder: IssueHolder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = issue_holder("alice")
    before = last_id(authority)
    with caplog.at_level(logging.INFO, logger="pocketca"):
        story = await act(api, admin_token, holder)

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pocketca.audit"]
    with authority.db.reader() as session:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.id > before).order_by(AuditRecord.id)).all()
    assert len(rows) == len(story.expected)
    assert [(line["id"], line["action"], line["outcome"]) for line in lines] == [
        (row.id, row.action, row.outcome) for row in rows
    ]
    for line, row in zip(lines, rows, strict=True):
        assert set(line) == FIELDS
        assert (line["actor"], line["serial"], line["token_id"]) == (row.actor, row.serial, row.token_id)

    everything = "\n".join([caplog.text, *(r.getMessage() for r in caplog.records)])
    assert "PRIVATE KEY" not in everything
    assert P12_PASSWORD not in everything
    for token in story.tokens:
        assert secret_of(token) not in everything


async def test_refused_issuance_leaves_no_certificate_and_a_refused_row(
    api: ApiClient, admin_token: str, authority: Authority
) -> None:
    token = authority.create_token(cn="alice", sans=["alice.example.com"]).token
    count = certificate_count(authority)
    before = last_id(authority)
    response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "mallory").decode()}, headers=bearer(token))
    assert response.status_code == 403
    assert certificate_count(authority) == count
    events = [e for e in await audit_events(api, admin_token) if e["id"] > before]
    assert [(e["action"], e["outcome"], e["actor"], e["serial"]) for e in events] == [
        ("certificate.issue", "refused", f"token:{token_id(token)}", None)
    ]
    assert "the CN must be 'alice'" in str(events[0]["detail"])


@pytest.mark.parametrize("spoiler", ["spent", "deleted"])
def test_a_change_that_fails_at_commit_rolls_back_whole(
    authority: Authority, admin_token: str, spoiler: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The token is good when the request is authenticated, gone when the change commits: the certificate was
    signed, but neither it nor a token use may be recorded or logged; the refusal is."""
    token = authority.create_token(scope="issue", uses=1)
    caller = authority.authenticate_token(token.token)
    if spoiler == "spent":  # a concurrent request took the only use
        first = authority.authenticate_token(token.token)
        authority.issue_for_key(p256().public_key(), cn="first", sans=[], caller=first)
    else:
        authority.delete_token(token.id, caller=authority.authenticate_token(admin_token))
    count, before = certificate_count(authority), last_id(authority)

    with caplog.at_level(logging.INFO, logger="pocketca.audit"), pytest.raises(AuthenticationError):
        authority.sign_csr(csr_pem(p256(), "second"), caller=caller)

    assert certificate_count(authority) == count
    with authority.db.reader() as session:
        assert session.scalars(select(CertificateRecord).where(CertificateRecord.cn == "second")).first() is None
        rows = session.scalars(select(AuditRecord).where(AuditRecord.id > before)).all()
    assert [(r.action, r.outcome, r.actor, r.serial) for r in rows] == [
        ("certificate.issue", "refused", f"token:{token.id}", None)
    ]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pocketca.audit"]
    assert [(line["id"], line["action"], line["outcome"]) for line in lines] == [
        (rows[0].id, "certificate.issue", "refused")
    ]
