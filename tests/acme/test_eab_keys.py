"""External account binding keys as an operator hands them to certbot and lego."""

from __future__ import annotations

import pytest

from tests.conftest import ApiClient

pytestmark = pytest.mark.anyio


async def test_no_key_id_or_hmac_key_begins_with_a_dash(api: ApiClient, admin_token: str) -> None:
    # `certbot --eab-kid KID --eab-hmac-key KEY` (the README's line) reads a value beginning with '-' as a flag and
    # stops at argument parsing: one key in 32 could not be typed. Among 200 keys one such draw is all but certain
    # (1 - (31/32)**200 > 99.8 %), so this fails on a service that does not redraw.
    for _ in range(200):
        response = await api.http.post("/acme/eab", json={}, headers={"Authorization": f"Bearer {admin_token}"})
        assert response.status_code == 201, response.text
        key = response.json()
        assert not key["kid"].startswith("-") and not key["hmac_key"].startswith("-"), key
