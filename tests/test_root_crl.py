"""The offline root's CRL: `init --intermediate` writes the first, `pocketca ca crl` signs the next offline (the root
key read from the root file and dropped), every intermediate points at it, and the service serves the newest at
`/crl/<root id>` (with the root at `/ca.crt/<root id>`) without a restart; /readyz and /metrics watch its
nextUpdate. Every mistake on the command line is one line."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import AuthorityInformationAccessOID

from service.app import create_app
from service.authority import Authority
from service.ca.issue import issuer_id
from service.cli import main
from service.datadir.build import build_authority
from service.datadir.offline_root import read_root_file
from service.datadir.prepare import prepare
from tests.hierarchy import ROOT_PASSPHRASE, Hierarchy, build, make_hierarchy

PUBLICATION = "http://ca.example.com:8080"


@pytest.fixture
def hierarchy(tmp_path: Path) -> Hierarchy:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "data", publication_url=PUBLICATION)
    return make_hierarchy(settings, tmp_path / "root.pem")


@pytest.fixture
def passphrase(tmp_path: Path) -> Path:
    path = tmp_path / "pass"
    path.write_bytes(ROOT_PASSPHRASE + b"\n")
    return path


@pytest.fixture
async def served(hierarchy: Hierarchy) -> AsyncIterator[tuple[Authority, httpx.AsyncClient]]:
    authority = build(hierarchy)
    transport = httpx.ASGITransport(app=create_app(authority=authority), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield authority, http
    authority.close()


def _crl(path: Path) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(path.read_bytes())


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_every_intermediate_points_at_the_roots_crl_and_init_writes_the_first(hierarchy: Hierarchy) -> None:
    data = hierarchy.settings.data_dir
    root_id = hierarchy.root_id
    current = x509.load_pem_x509_certificate((data / "ca.pem").read_bytes())
    for intermediate in (hierarchy.old, current):  # made by `init --intermediate`, then by `ca rotate --root-file`
        points = intermediate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert [n.value for p in points for n in p.full_name or []] == [f"{PUBLICATION}/crl/{root_id}"]
        access = intermediate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        assert [(a.access_method, a.access_location.value) for a in access] == [
            (AuthorityInformationAccessOID.CA_ISSUERS, f"{PUBLICATION}/ca.crt/{root_id}")
        ]
    first = _crl(data / "root-crls" / f"{root_id}.crl")
    assert first.is_signature_valid(hierarchy.root.public_key())  # type: ignore[arg-type]
    assert _number(first) == 1 and len(first) == 0 and first.issuer == hierarchy.root.subject
    assert first.next_update_utc - first.last_update_utc == dt.timedelta(days=90)  # type: ignore[operator]


def test_ca_crl_revokes_a_retired_issuer_offline_and_numbers_grow(
    hierarchy: Hierarchy, passphrase: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = hierarchy.settings.data_dir
    base = ["ca", "crl", "--data-dir", str(data), "--root-file", str(hierarchy.root_file)]
    signed = [*base, "--root-passphrase-file", str(passphrase)]
    assert main([*signed, "--next-update", "30", "--json"]) == 0  # nothing revoked: the next number, a new date
    capsys.readouterr()
    path = data / "root-crls" / f"{hierarchy.root_id}.crl"
    second = _crl(path)
    assert _number(second) == 2 and len(second) == 0
    assert second.next_update_utc - second.last_update_utc == dt.timedelta(days=30)  # type: ignore[operator]

    assert main([*signed, "--revoke", hierarchy.old_id, "--reason", "keyCompromise"]) == 0
    out = capsys.readouterr().out
    assert f"root CRL 3 of CN=pocketca root CA ({hierarchy.root_id})" in out and "1 revoked" in out
    third = _crl(path)
    assert third.is_signature_valid(hierarchy.root.public_key())  # type: ignore[arg-type]
    entry = third.get_revoked_certificate_by_serial_number(hierarchy.old.serial_number)
    assert _number(third) == 3 and len(third) == 1 and entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert main([*signed]) == 0  # the next one carries the entry on
    capsys.readouterr()
    assert _number(_crl(path)) == 4 and len(_crl(path)) == 1

    # nothing of the root key in the data dir, in any form
    root_key, _ = read_root_file(hierarchy.root_file, ROOT_PASSPHRASE)
    secret = root_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    pem = root_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    for file in (f for f in data.rglob("*") if f.is_file()):
        content = file.read_bytes()
        assert secret not in content and pem not in content and content != hierarchy.root_file.read_bytes(), file

    # mistakes: one line each (exit 2), and the CRL stays as it was
    current_id = issuer_id(x509.load_pem_x509_certificate((data / "ca.pem").read_bytes()))
    wrong = data.parent / "wrong"
    wrong.write_text("not the passphrase\n")
    stranger = data.parent / "stranger.pem"
    assert main(["init", "--data-dir", str(data.parent / "s"), "--intermediate", "--root-out", str(stranger),
                 "--root-passphrase-file", str(passphrase)]) == 0  # fmt: skip
    capsys.readouterr()
    elsewhere = ["--root-passphrase-file", str(passphrase)]
    for args, words in [
        ([*signed, "--revoke", hierarchy.old_id, "--reason", "keyCompromise"], "revoked in the root's CRL already"),
        ([*signed, "--revoke", current_id, "--reason", "keyCompromise"], "is the current issuing CA: rotate first"),
        ([*signed, "--revoke", "0123456789abcdef", "--reason", "superseded"], "no retired issuing CA"),
        ([*signed, "--revoke", hierarchy.old_id], "--revoke ISSUER_ID and --reason R go together"),
        ([*signed, "--revoke", hierarchy.old_id, "--reason", "bored"], "unknown revocation reason"),
        ([*signed, "--next-update", "0"], "between 1 and 365 days"),
        ([*signed, "--next-update", "400"], "between 1 and 365 days"),
        ([*base, "--root-passphrase-file", str(wrong)], "wrong passphrase"),
        (["ca", "crl", "--data-dir", str(data), "--root-file", str(stranger), *elsewhere], "is not the root of an"),
        (["ca", "crl", "--data-dir", str(data / "x"), "--root-file", str(hierarchy.root_file), *elsewhere], "no CA"),
    ]:
        assert main(args) == 2, args
        assert words in _one_line(capsys), args
    assert main([*base]) == 2  # no passphrase file and no terminal
    assert "--root-passphrase-file" in _one_line(capsys)
    assert _number(_crl(path)) == 4


@pytest.mark.anyio
async def test_the_service_serves_the_newest_root_crl_without_a_restart(
    hierarchy: Hierarchy,
    served: tuple[Authority, httpx.AsyncClient],
    passphrase: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, http = served
    root_id = hierarchy.root_id
    first = await http.get(f"/crl/{root_id}")
    assert first.status_code == 200 and first.headers["content-type"] == "application/pkix-crl"
    assert _number(x509.load_der_x509_crl(first.content)) == 1
    assert first.headers["etag"] == '"crl-1-der"' and "max-age=" in first.headers["cache-control"]
    expires = parsedate_to_datetime(first.headers["expires"])
    assert expires == x509.load_der_x509_crl(first.content).next_update_utc
    assert (await http.get(f"/crl/{root_id}", headers={"If-None-Match": '"crl-1-der"'})).status_code == 304
    root = await http.get(f"/ca.crt/{root_id}")
    assert root.status_code == 200 and root.content == hierarchy.root.public_bytes(Encoding.DER)

    assert main(["ca", "crl", "--data-dir", str(hierarchy.settings.data_dir), "--root-file", str(hierarchy.root_file),
                 "--root-passphrase-file", str(passphrase), "--revoke", hierarchy.old_id, "--reason",
                 "cACompromise"]) == 0  # fmt: skip
    capsys.readouterr()
    newer = x509.load_der_x509_crl((await http.get(f"/crl/{root_id}")).content)  # the same authority: no restart
    assert _number(newer) == 2 and newer.get_revoked_certificate_by_serial_number(hierarchy.old.serial_number)

    # a file the root did not sign is not served; the CRL served stays
    path = hierarchy.settings.data_dir / "root-crls" / f"{root_id}.crl"
    good = path.read_bytes()
    path.write_bytes(good[:-5] + bytes(5))
    assert _number(x509.load_der_x509_crl((await http.get(f"/crl/{root_id}")).content)) == 2
    path.write_bytes(good)
    missing = await http.get("/crl/0123456789abcdef")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


@pytest.mark.anyio
async def test_readyz_and_metrics_watch_the_root_crls_next_update(
    hierarchy: Hierarchy, served: tuple[Authority, httpx.AsyncClient]
) -> None:
    authority, http = served
    assert (await http.get("/readyz")).json() == {"status": "ready"}
    token = authority.create_token(scope="read").token
    metrics = (await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
    crl = _crl(hierarchy.settings.data_dir / "root-crls" / f"{hierarchy.root_id}.crl")
    assert f'pocketca_root_crl_number{{root="{hierarchy.root_id}"}} 1.0' in metrics
    until = crl.next_update_utc
    assert until is not None
    from prometheus_client.utils import floatToGoString

    stamp = floatToGoString(until.timestamp())
    assert f'pocketca_root_crl_next_update_timestamp_seconds{{root="{hierarchy.root_id}"}} {stamp}' in metrics
    assert f'pocketca_root_crl_entries{{root="{hierarchy.root_id}"}} 0.0' in metrics

    authority.root_crls.clock = lambda: until - dt.timedelta(days=3)  # near its nextUpdate: ready, with a warning
    near = await http.get("/readyz")
    assert near.status_code == 200 and near.json()["status"] == "ready"
    (warning,) = near.json()["warnings"]
    assert hierarchy.root_id in warning and "pocketca ca crl --root-file" in warning
    authority.root_crls.clock = lambda: until + dt.timedelta(seconds=1)  # past it: not ready
    past = await http.get("/readyz")
    assert past.status_code == 503 and "passed its nextUpdate" in past.json()["detail"]


def _block(heading: str, index: int = 0) -> str:
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "ca-ceremony.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text.split(heading, 1)[1], re.S)
    return blocks[index]


@pytest.mark.anyio
async def test_an_external_roots_crl_as_the_ceremony_documents_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/ca-ceremony.md, *Under an existing (corporate) root*: the intermediate's pointers made with the documented
    lines, the root's CRL made by `openssl ca -gencrl` and dropped into the data dir, then the next one signed by
    `pocketca ca crl` from a hand-made root file."""
    import subprocess

    from tests.conftest import make_settings

    work = tmp_path / "corp"
    work.mkdir()

    def sh(script: str) -> None:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    (work / "pass").write_text("correct horse battery\n")
    ca_extensions = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
    (work / "int.ext").write_text(ca_extensions)
    (work / "ca.cnf").write_text("[ca]\ndefault_ca = root\n[root]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
                                 "default_md = sha256\ndefault_crl_days = 30\n")  # fmt: skip
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.pem"
        " -subj /CN=Corp\\ Root -days 3650 2>/dev/null"
        " && touch index.txt && echo 01 > crlnumber"
        " && openssl ca -config ca.cnf -gencrl -keyfile root.key -cert root.pem -out root.crl 2>/dev/null"
        " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr"
        " -subj /CN=Corp\\ Issuing 2>/dev/null"
    )
    data = tmp_path / "data"
    documented = _block("### Under an existing (corporate) root", 1).replace("/var/lib/pocketca/", f"{data}/")
    data.joinpath("root-crls").mkdir(parents=True)
    sh(documented)
    sh("openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -out int.pem -days 365 -extfile int.ext 2>/dev/null")
    settings = make_settings(data)
    assert main(["init", "--data-dir", str(data), "--import-key", str(work / "int.key"), "--import-cert",
                 str(work / "int.pem"), "--import-chain", str(work / "root.pem")]) == 0  # fmt: skip
    capsys.readouterr()
    root = x509.load_pem_x509_certificate((work / "root.pem").read_bytes())
    root_id = issuer_id(root)
    intermediate = x509.load_pem_x509_certificate((work / "int.pem").read_bytes())
    points = intermediate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for p in points for n in p.full_name or []] == [f"http://ca.internal:8080/crl/{root_id}"]

    prepare(settings)
    authority = build_authority(settings)
    transport = httpx.ASGITransport(app=create_app(authority=authority), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
            served = await http.get(f"/crl/{root_id}")  # openssl's CRL (PEM in the file), served as DER
            assert served.status_code == 200 and _number(x509.load_der_x509_crl(served.content)) == 1
            assert (await http.get(f"/ca.crt/{root_id}")).content == root.public_bytes(Encoding.DER)
            sh("openssl pkcs8 -topk8 -v2 aes-256-cbc -in root.key -passout file:pass -out root.p8"
               " && cat root.pem root.p8 > root-file.pem")  # fmt: skip
            assert main(["ca", "crl", "--data-dir", str(data), "--root-file", str(work / "root-file.pem"),
                         "--root-passphrase-file", str(work / "pass")]) == 0  # fmt: skip
            capsys.readouterr()
            served = await http.get(f"/crl/{root_id}")
            assert _number(x509.load_der_x509_crl(served.content)) == 2
    finally:
        authority.close()
