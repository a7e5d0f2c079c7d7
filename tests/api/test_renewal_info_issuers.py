"""ARI (RFC 9773) answers for every issuer the service still answers OCSP for: after `ca rotate`, a certificate of
the retired issuer gets its window, and a revoked one "renew now" (the case a rotation after a compromise needs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.authority.acme.renewal import cert_id
from service.settings import Settings
from tests.helpers import ForeignCA
from tests.hierarchy import Hierarchy, build, make_hierarchy

pytestmark = pytest.mark.anyio


@pytest.fixture
async def rotated(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Hierarchy, httpx.AsyncClient]]:
    hierarchy = make_hierarchy(settings, tmp_path / "root.pem")
    authority = build(hierarchy)
    assert authority.issuer.id != hierarchy.old_id and hierarchy.old_id in authority.issuers
    transport = httpx.ASGITransport(app=create_app(authority=authority), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield hierarchy, http
    authority.close()


async def test_a_retired_issuers_certificates_get_their_window(
    rotated: tuple[Hierarchy, httpx.AsyncClient], foreign_ca: ForeignCA
) -> None:
    hierarchy, http = rotated
    now = dt.datetime.now(dt.UTC)
    good = await http.get(f"/acme/renewal-info/{cert_id(hierarchy.good)}")
    assert good.status_code == 200, good.text
    window = good.json()["suggestedWindow"]
    start, end = dt.datetime.fromisoformat(window["start"]), dt.datetime.fromisoformat(window["end"])
    assert hierarchy.good.not_valid_before_utc < start < end < hierarchy.good.not_valid_after_utc
    revoked = await http.get(f"/acme/renewal-info/{cert_id(hierarchy.revoked)}")
    assert revoked.status_code == 200, revoked.text
    assert dt.datetime.fromisoformat(revoked.json()["suggestedWindow"]["end"]) < now  # renew now

    # negative controls: a key identifier of no issuer here, and a serial of ours under another issuer's key id
    _, stranger = foreign_ca.issue_client("x")
    unknown = await http.get(f"/acme/renewal-info/{cert_id(stranger)}")
    assert unknown.status_code == 404 and "no certificate with this certID" in unknown.json()["detail"]
    mixed = cert_id(stranger).split(".")[0] + "." + cert_id(hierarchy.good).split(".")[1]
    assert (await http.get(f"/acme/renewal-info/{mixed}")).status_code == 404


async def test_certificates_of_an_issuer_the_root_revoked_are_to_be_renewed_now(
    rotated: tuple[Hierarchy, httpx.AsyncClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the compromise ceremony (`ca crl --revoke <old id>`), every certificate of the old issuer gets the "renew
    now" window: relying parties that check the chain refuse them all."""
    from service.cli import main
    from tests.hierarchy import ROOT_PASSPHRASE

    hierarchy, http = rotated
    before = (await http.get(f"/acme/renewal-info/{cert_id(hierarchy.good)}")).json()["suggestedWindow"]
    assert dt.datetime.fromisoformat(before["end"]) > dt.datetime.now(dt.UTC)
    (tmp_path / "pass").write_bytes(ROOT_PASSPHRASE + b"\n")
    assert main(["ca", "crl", "--data-dir", str(hierarchy.settings.data_dir), "--root-file", str(hierarchy.root_file),
                 "--root-passphrase-file", str(tmp_path / "pass"), "--revoke", hierarchy.old_id, "--reason",
                 "keyCompromise"]) == 0  # fmt: skip
    capsys.readouterr()
    after = (await http.get(f"/acme/renewal-info/{cert_id(hierarchy.good)}")).json()["suggestedWindow"]
    assert dt.datetime.fromisoformat(after["end"]) < dt.datetime.now(dt.UTC)
