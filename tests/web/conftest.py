"""The console through httpx.ASGITransport: a browser's cookie jar, forms, and the CSRF token read off the page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from service.app import create_app
from service.authority import Authority
from tests.api.conftest import issue_holder  # noqa: F401 (the /whoami page tests play certificates)
from tests.helpers import p256

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class Browser:
    http: httpx.AsyncClient

    async def csrf(self, path: str) -> str:
        page = await self.http.get(path)
        assert page.status_code == 200, page.text
        match = CSRF.search(page.text)
        assert match, f"no CSRF token in the forms of {path}"
        return match.group(1)

    async def login(self, token: str) -> httpx.Response:
        csrf = await self.csrf("/ui/login")
        return await self.http.post("/ui/login", data={"csrf": csrf, "token": token})

    async def post(self, path: str, data: dict[str, str], *, csrf_from: str) -> httpx.Response:
        return await self.http.post(path, data={"csrf": await self.csrf(csrf_from), **data})


@pytest.fixture
async def browser(authority: Authority) -> AsyncIterator[Browser]:
    app = create_app(authority=authority)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield Browser(http)


@pytest.fixture
def issue(authority: Authority):  # type: ignore[no-untyped-def]
    def issue(cn: str, sans: list[str] | None = None, profile: str = "client", days: int | None = None) -> str:
        issued = authority.issue_for_key(p256().public_key(), cn=cn, sans=sans or [], profile=profile,
                                         validity_days=days)
        return issued.summary.serial

    return issue
