"""Every way a certificate comes in, against one real `pocketca serve` (issue 22): its JSON (`GET /certs/{serial}`
and the listing) and its console page say who issued it, in the words a person expects, and `/metrics` counts
it with its caller kind. The ways: an API token, an enrollment token, a renewal over mTLS, `POST /pkcs12`, the
console's *New person*, an ACME account (certbot's `acme` library; challtestsrv answers http-01), and the
service's own TLS certificate."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from service.ca.inspect import format_serial
from tests.e2e.acme_env import AcmeServer, ChallTestSrv, challtestsrv, start_acme_server
from tests.e2e.test_acme_protocol import OPEN, authorize_http01, csr_for, deadline, new_client
from tests.helpers import csr_pem, key_pem, p256

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChallTestSrv]:
    with challtestsrv(tmp_path_factory.mktemp("dns"), http01=True) as server:
        yield server


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory, dns: ChallTestSrv) -> Iterator[AcmeServer]:
    assert dns.http01_port is not None
    server = start_acme_server(tmp_path_factory.mktemp("who") / "data", dns, http_port=dns.http01_port)
    yield server
    for net in OPEN:
        net.session.close()
    server.live.stop()


def _admin(acme: AcmeServer) -> httpx.Client:
    return acme.live.client(headers={"Authorization": f"Bearer {acme.live.admin_token}"})


def _token(acme: AcmeServer, **body: object) -> tuple[str, str]:
    with _admin(acme) as http:
        created = http.post("/tokens", json=body).json()
    return created["token"], created["id"]


def _csr(acme: AcmeServer, token: str, cn: str, sans: list[str] | None = None) -> dict[str, str]:
    with acme.live.client(headers={"Authorization": f"Bearer {token}"}) as http:
        response = http.post("/csr", json={"csr": csr_pem(p256(), cn, sans).decode()})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _console_login(http: httpx.Client, token: str) -> None:
    page = http.get("/ui/login")
    match = CSRF.search(page.text)
    assert match is not None
    answer = http.post("/ui/login", data={"csrf": match.group(1), "token": token})
    assert answer.status_code == 303, answer.text


def _console_csrf(http: httpx.Client, path: str) -> str:
    match = CSRF.search(http.get(path).text)
    assert match is not None, path
    return match.group(1)


def _scrape(acme: AcmeServer, metric: str) -> dict[tuple[str, str], float]:
    with _admin(acme) as http:
        text = http.get("/metrics").text
    found = {}
    pattern = rf'^{metric}\{{caller="(\w+)",profile="([\w-]+)"\}} ([0-9.e+]+)$'
    for caller, profile, value in re.findall(pattern, text, re.M):
        found[(caller, profile)] = float(value)
    return found


def test_every_way_in_says_who_issued_it_and_is_counted(acme: AcmeServer, dns: ChallTestSrv, tmp_path: Path) -> None:
    ways: dict[str, tuple[str, str, str]] = {}  # way -> (serial, issued_by, words on the console page)

    issue_token, issue_id = _token(acme, scope="issue")
    by_token = _csr(acme, issue_token, "svc-a")
    ways["token"] = (by_token["serial"], f"token:{issue_id}", f"API token {issue_id}")

    enroll_token, enroll_id = _token(acme, cn="svc-b", sans=["svc-b.internal"])
    by_enrollment = _csr(acme, enroll_token, "svc-b", ["svc-b.internal"])
    ways["enrollment"] = (by_enrollment["serial"], f"token:{enroll_id}", f"enrollment token {enroll_id}")

    holder_key = p256()  # the token's certificate renews itself over mTLS
    with acme.live.client(headers={"Authorization": f"Bearer {issue_token}"}) as http:
        holder = http.post("/csr", json={"csr": csr_pem(holder_key, "svc-c").decode()}).json()
    (tmp_path / "c.pem").write_text(holder["certificate"])
    (tmp_path / "c.key").write_bytes(key_pem(holder_key))
    with acme.live.client(tmp_path / "c.pem", tmp_path / "c.key") as http:
        renewed = http.post("/csr", json={"csr": csr_pem(p256(), "svc-c").decode()})
    assert renewed.status_code == 201, renewed.text
    ways["renewal"] = (
        renewed.json()["serial"],
        f"cert:{holder['serial']}",
        f"renewal of certificate {holder['serial']}",
    )

    with _admin(acme) as http:
        bundle = http.post("/pkcs12", json={"cn": "alice", "password": "correct horse battery"})
    assert bundle.status_code == 201
    pkcs12_serial = _serial_of_newest(acme, "alice")
    admin_id = acme.live.admin_token.split("_")[1]
    ways["pkcs12"] = (pkcs12_serial, f"token:{admin_id}", f"API token {admin_id}")

    with acme.live.client() as http:
        _console_login(http, acme.live.admin_token)
        form = {"cn": "bob", "sans": "", "password": "correct horse battery", "password_again": "correct horse battery"}
        made = http.post("/ui/pkcs12", data={"csrf": _console_csrf(http, "/ui/pkcs12"), **form})
    assert made.status_code == 200 and made.headers["content-type"] == "application/x-pkcs12", made.text
    console_serial = made.headers["content-disposition"].split('"')[1].removesuffix(".p12")
    console_words = f"the web console, logged in with token {admin_id}"
    ways["console"] = (console_serial, f"token:{admin_id}", console_words)

    acme_client = new_client(acme)
    account_id = acme_client.net.account.uri.rsplit("/", 1)[1]
    order = acme_client.new_order(csr_for(["who.acme.test"]))
    authorize_http01(acme_client, order, dns)
    done = acme_client.poll_and_finalize(order, deadline())
    leaf = x509.load_pem_x509_certificates(done.fullchain_pem.encode())[0]
    ways["acme"] = (format_serial(leaf.serial_number), f"acme:{account_id}", f"ACME account {account_id}")

    server = x509.load_pem_x509_certificate((acme.live.data_dir / "server.pem").read_bytes())
    ways["local"] = (format_serial(server.serial_number), "local:serve", "`pocketca serve` on the CA host")

    with _admin(acme) as http:
        listing = {item["serial"]: item for item in http.get("/certs", params={"limit": 1000}).json()["items"]}
        for via, (serial, issued_by, _) in ways.items():
            one = http.get(f"/certs/{serial}").json()
            expected = "token" if via == "pkcs12" else via
            assert (one["issued_by"], one["issued_via"]) == (issued_by, expected), (via, one)
            assert (listing[serial]["issued_by"], listing[serial]["issued_via"]) == (issued_by, expected), via
    with acme.live.client() as http:
        _console_login(http, acme.live.admin_token)
        for via, (serial, _, words) in ways.items():
            page = http.get(f"/ui/certs/{serial}").text
            assert f"<th>Issued by</th><td>{words}</td>" in page, (via, words)

    issued = _scrape(acme, "pocketca_certificates_issued_total")
    assert issued[("token", "client")] == 3  # two CSRs with the issue token, one PKCS#12 with the admin token
    assert issued[("enrollment", "client")] == 1
    assert issued[("console", "client")] == 1
    assert issued[("acme", "server")] == 1  # issue 22: ACME issuances were not counted at all
    assert _scrape(acme, "pocketca_certificates_renewed_total")[("certificate", "client")] == 1


def _serial_of_newest(acme: AcmeServer, cn: str) -> str:
    with _admin(acme) as http:
        items = http.get("/certs", params={"cn": cn}).json()["items"]
    return str(items[0]["serial"])


def test_a_refused_acme_finalize_is_counted_with_its_caller_kind(acme: AcmeServer, dns: ChallTestSrv) -> None:
    """A refusal at finalize (a CSR with a key the profile refuses) is counted with its caller kind too."""
    before = _scrape(acme, "pocketca_certificates_refused_total").get(("acme", "server"), 0)
    acme_client = new_client(acme)
    weak = ec.generate_private_key(ec.SECP256K1())  # not a curve any profile allows
    order = acme_client.new_order(csr_for(["weak.acme.test"]))
    authorize_http01(acme_client, order, dns)
    with pytest.raises(messages.Error):
        acme_client.poll_and_finalize(order.update(csr_pem=csr_for(["weak.acme.test"], weak)), deadline())
    after = _scrape(acme, "pocketca_certificates_refused_total").get(("acme", "server"), 0)
    assert after == before + 1
