"""The README walkthrough with the real `openssl` and `curl` as clients of a real `pocketca serve`.

Every success is followed by its negative control. httpx joins in for the TLS controls, as the README's
Python example does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.conftest import LiveServer, authority_at, make_settings, start_server
from tests.helpers import ForeignCA, now, p256, write_pair

ISSUED_KEYS = {
    "serial",
    "certificate",
    "chain",
    "subject",
    "cn",
    "sans",
    "not_before",
    "not_after",
    "fingerprint_sha256",
    "profile",
}
IDENTITY_KEYS = {"cn", "subject", "serial", "sans", "issuer", "not_before", "not_after", "fingerprint_sha256"}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")
PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\n.+?-----END CERTIFICATE-----\n", re.S)
PROBLEM_JSON = "application/problem+json"
PEM_CHAIN = "application/pem-certificate-chain"


# --- the two command-line clients ---------------------------------------------------------------------


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, input="", timeout=30, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


@dataclass
class Reply:
    """What curl got: its exit code, and the status, headers and body of the last response (000 if none)."""

    exit_code: int
    status: int
    headers: dict[str, str]
    body: bytes
    stderr: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)

    def problem(self, status: int) -> dict[str, Any]:
        """Asserts an RFC 9457 problem with this status and returns it."""
        assert self.status == status, (self.status, self.body, self.stderr)
        assert self.content_type == PROBLEM_JSON, self.headers
        problem: dict[str, Any] = self.json()
        assert {"type", "title", "status", "detail"} <= problem.keys(), problem
        assert problem["status"] == status and problem["detail"]
        return problem


def curl(server: LiveServer, path: str, *options: str, cacert: Path | None = None) -> Reply:
    with tempfile.TemporaryDirectory() as scratch:
        head, body = Path(scratch) / "head", Path(scratch) / "body"
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--cacert",
                str(cacert or server.ca_file),
                "-D",
                str(head),
                "-o",
                str(body),
                "-w",
                "%{http_code}",
                *options,
                f"{server.url}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        blocks = head.read_text(errors="replace").replace("\r\n", "\n").strip().split("\n\n") if head.exists() else []
        headers = {}
        for line in blocks[-1].splitlines()[1:] if blocks else []:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(result.stdout.strip()[-3:] or 0)
        return Reply(result.returncode, status, headers, body.read_bytes() if body.exists() else b"", result.stderr)


def bearer(token: str) -> tuple[str, str]:
    return ("-H", f"Authorization: Bearer {token}")


def key_and_csr(directory: Path, name: str, *, der: bool = False) -> tuple[Path, Path]:
    """README step 1: a P-256 key and a CSR for /CN=<name>, made by openssl where the key lives."""
    directory.mkdir(parents=True, exist_ok=True)
    key, csr = directory / f"{name}.key", directory / (f"{name}.der" if der else f"{name}.csr")
    openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(key))
    outform = ["-outform", "DER"] if der else []
    openssl("req", "-new", "-key", str(key), "-subj", f"/CN={name}", *outform, "-out", str(csr))
    return key, csr


def enroll(server: LiveServer, directory: Path, name: str) -> tuple[Path, Path, str]:
    """Key and CSR by openssl, signed over curl; returns (cert, key, serial as the service spells it)."""
    key, csr = key_and_csr(directory, name)
    reply = curl(
        server,
        "/csr",
        *bearer(server.admin_token),
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        f"@{csr}",
    )
    assert reply.status == 201, (reply.status, reply.body, reply.stderr)
    cert = directory / f"{name}.pem"
    cert.write_text(reply.json()["certificate"])
    return cert, key, reply.json()["serial"]


def openssl_serial(cert: Path) -> str:
    return openssl("x509", "-in", str(cert), "-noout", "-serial").stdout.strip().split("=", 1)[1]


def openssl_fingerprint(cert: Path) -> str:
    out = openssl("x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256").stdout.strip()
    return out.split("=", 1)[1].replace(":", "").lower()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def assert_issued(body: dict[str, Any], cn: str, ca_pem: str, profile: str = "client") -> x509.Certificate:
    assert set(body) == ISSUED_KEYS, body.keys()
    certificate = x509.load_pem_x509_certificate(body["certificate"].encode())
    assert re.fullmatch(r"[0-9a-f]+", body["serial"]) and int(body["serial"], 16) == certificate.serial_number
    assert body["chain"] == [ca_pem]  # issuer first; one root today
    assert body["subject"] == f"CN={cn}" and body["cn"] == cn and body["sans"] == [cn]
    assert RFC3339_UTC.match(body["not_before"]) and RFC3339_UTC.match(body["not_after"])
    assert dt.datetime.fromisoformat(body["not_after"]) == certificate.not_valid_after_utc
    assert body["fingerprint_sha256"] == hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()
    assert body["profile"] == profile
    return certificate


# --- 1. the story: openssl makes the key and CSR, curl gets it signed --------------------------------------


@pytest.mark.parametrize("form", ["pem", "der"])
def test_curl_posts_an_openssl_csr_and_gets_the_contract_json(
    live_server: LiveServer, tmp_path: Path, form: str
) -> None:
    _, csr = key_and_csr(tmp_path, "alice", der=form == "der")
    reply = curl(
        live_server,
        "/csr",
        *bearer(live_server.admin_token),
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        f"@{csr}",
    )
    assert reply.exit_code == 0 and reply.status == 201, (reply.status, reply.body, reply.stderr)
    assert reply.content_type == "application/json"
    body = reply.json()
    assert_issued(body, "alice", live_server.ca_file.read_text())
    assert reply.headers["location"] == f"/certs/{body['serial']}"


def test_curl_posts_json_with_profile_and_validity(live_server: LiveServer, tmp_path: Path) -> None:
    _, csr = key_and_csr(tmp_path, "alice")
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"csr": csr.read_text(), "profile": "client", "validity_days": 30}))
    reply = curl(
        live_server,
        "/csr",
        *bearer(live_server.admin_token),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        f"@{request}",
    )
    assert reply.status == 201, (reply.status, reply.body)
    body = reply.json()
    certificate = assert_issued(body, "alice", live_server.ca_file.read_text())
    assert reply.headers["location"] == f"/certs/{body['serial']}"
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert dt.timedelta(days=29) < lifetime <= dt.timedelta(days=31)


def test_curl_asks_for_the_pem_chain_leaf_first(live_server: LiveServer, tmp_path: Path) -> None:
    key, csr = key_and_csr(tmp_path, "alice")
    reply = curl(
        live_server,
        "/csr",
        *bearer(live_server.admin_token),
        "-H",
        "Content-Type: application/pkcs10",
        "-H",
        f"Accept: {PEM_CHAIN}",
        "--data-binary",
        f"@{csr}",
    )
    assert reply.status == 201 and reply.content_type == PEM_CHAIN, (reply.status, reply.headers)
    blocks = PEM_CERT.findall(reply.body)
    assert len(blocks) == 2 and b"".join(blocks) == reply.body
    assert blocks[1] == live_server.ca_file.read_bytes()
    leaf = tmp_path / "alice.pem"
    leaf.write_bytes(blocks[0])
    assert openssl("x509", "-in", str(leaf), "-noout", "-subject").stdout.strip() == "subject=CN = alice"
    assert reply.headers["location"] == f"/certs/{openssl_serial(leaf).lower().lstrip('0')}"
    # the leaf carries the key openssl made
    ours = openssl("pkey", "-in", str(key), "-pubout").stdout
    assert openssl("x509", "-in", str(leaf), "-noout", "-pubkey").stdout == ours
    assert "OK" in openssl("verify", "-CAfile", str(live_server.ca_file), str(leaf)).stdout


def test_csr_without_a_token_is_401(live_server: LiveServer, tmp_path: Path) -> None:
    _, csr = key_and_csr(tmp_path, "alice")
    reply = curl(live_server, "/csr", "-H", "Content-Type: application/pkcs10", "--data-binary", f"@{csr}")
    reply.problem(401)
    assert reply.headers.get("www-authenticate", "").lower().startswith("bearer")


def test_csr_with_a_wrong_token_is_401(live_server: LiveServer, tmp_path: Path) -> None:
    _, csr = key_and_csr(tmp_path, "alice")
    for token in ("pca_" + "0" * 43, "not-a-token", live_server.admin_token[:-2]):
        reply = curl(
            live_server,
            "/csr",
            *bearer(token),
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            f"@{csr}",
        )
        reply.problem(401)


def test_csr_with_an_rsa_1024_key_is_403_with_the_violation(live_server: LiveServer, tmp_path: Path) -> None:
    key, csr = tmp_path / "weak.key", tmp_path / "weak.csr"
    openssl("genrsa", "-out", str(key), "1024")
    openssl("req", "-new", "-key", str(key), "-subj", "/CN=weak", "-out", str(csr))
    reply = curl(
        live_server,
        "/csr",
        *bearer(live_server.admin_token),
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        f"@{csr}",
    )
    problem = reply.problem(403)
    assert any("1024" in violation for violation in problem["violations"]), problem
    assert "1024" in problem["detail"]


def test_csr_garbage_is_400_and_over_64_kib_is_413(live_server: LiveServer, tmp_path: Path) -> None:
    armoured, noise = tmp_path / "armoured.csr", tmp_path / "noise.der"
    armoured.write_bytes(b"-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n")
    noise.write_bytes(os.urandom(300))
    for body in (armoured, noise):
        reply = curl(
            live_server,
            "/csr",
            *bearer(live_server.admin_token),
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            f"@{body}",
        )
        reply.problem(400)

    _, csr = key_and_csr(tmp_path, "alice")
    big = tmp_path / "big.csr"
    big.write_bytes(csr.read_bytes() + b"\n" * (64 * 1024))
    reply = curl(
        live_server,
        "/csr",
        *bearer(live_server.admin_token),
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        f"@{big}",
    )
    reply.problem(413)


# --- 2. /whoami with curl --cert ---------------------------------------------------------------------------


def test_curl_whoami_with_the_certificate_matches_openssl(live_server: LiveServer, tmp_path: Path) -> None:
    cert, key, serial = enroll(live_server, tmp_path, "alice")
    reply = curl(live_server, "/whoami", "--cert", str(cert), "--key", str(key))
    assert reply.status == 200 and reply.content_type == "application/json", (reply.status, reply.body)
    me = reply.json()
    assert set(me) == IDENTITY_KEYS, me.keys()
    assert me["cn"] == "alice" and me["subject"] == "CN=alice" and me["sans"] == ["alice"]
    assert me["serial"] == serial
    # openssl pads the serial to whole octets; the service writes the integer in hex (no leading zero)
    from_openssl = openssl_serial(cert).lower()
    assert me["serial"] == from_openssl.lstrip("0") and int(from_openssl, 16) == int(me["serial"], 16)
    assert me["fingerprint_sha256"] == openssl_fingerprint(cert)
    ca_subject = x509.load_pem_x509_certificate(live_server.ca_file.read_bytes()).subject.rfc4514_string()
    assert me["issuer"] == ca_subject
    assert RFC3339_UTC.match(me["not_before"]) and RFC3339_UTC.match(me["not_after"])
    end = openssl("x509", "-in", str(cert), "-noout", "-enddate").stdout.strip().split("=", 1)[1]
    expected_end = dt.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
    assert dt.datetime.fromisoformat(me["not_after"]) == expected_end


def test_curl_whoami_without_a_certificate_is_401(live_server: LiveServer) -> None:
    curl(live_server, "/whoami").problem(401)


# --- 3. revocation with curl and the admin token -----------------------------------------------------------


def test_curl_revokes_then_whoami_is_403_and_again_is_409(live_server: LiveServer, tmp_path: Path) -> None:
    cert, key, _ = enroll(live_server, tmp_path, "alice")
    assert curl(live_server, "/whoami", "--cert", str(cert), "--key", str(key)).status == 200
    serial = openssl_serial(cert).lower()  # as the README does it: `openssl x509 -serial | tr A-F a-f`
    revoke = (
        *bearer(live_server.admin_token),
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"reason": "keyCompromise"}',
    )
    reply = curl(live_server, f"/certs/{serial}/revoke", *revoke)
    assert reply.status == 200, (reply.status, reply.body)
    assert reply.json()["status"] == "revoked" and reply.json()["revocation_reason"] == "keyCompromise"

    refused = curl(live_server, "/whoami", "--cert", str(cert), "--key", str(key))
    refused.problem(403)
    curl(live_server, f"/certs/{serial}/revoke", *revoke).problem(409)


def test_curl_revoke_unknown_and_malformed_serials(live_server: LiveServer) -> None:
    revoke = (*bearer(live_server.admin_token), "-H", "Content-Type: application/json", "-d", "{}")
    curl(live_server, "/certs/1234abcd5678/revoke", *revoke).problem(404)
    curl(live_server, "/certs/not-a-serial/revoke", *revoke).problem(400)
    curl(live_server, f"/certs/{'a' * 41}/revoke", *revoke).problem(400)
    # and without the token, even a real-looking serial is 401
    curl(live_server, "/certs/1234abcd5678/revoke", "-H", "Content-Type: application/json", "-d", "{}").problem(401)


# --- 4. the CRL, read by openssl ---------------------------------------------------------------------------


def _crl_text(crl: Path, *extra: str) -> str:
    return openssl("crl", "-inform", "DER", "-in", str(crl), "-noout", *extra).stdout


def _crl_number(crl: Path) -> int:
    return int(_crl_text(crl, "-crlnumber").strip().split("=", 1)[1], 16)


def _revoked_entry(crl: Path, openssl_serial_text: str) -> str | None:
    """The text of one entry of `openssl crl -text`, or None when the serial is not listed."""
    text = _crl_text(crl, "-text")
    marker = f"Serial Number: {openssl_serial_text.upper()}\n"
    if marker not in text:
        return None
    return text.split(marker, 1)[1].split("Serial Number:", 1)[0].split("Signature Algorithm", 1)[0]


def _fetch_crl(server: LiveServer, target: Path) -> Path:
    reply = curl(server, "/crl")
    assert reply.status == 200 and reply.content_type == "application/pkix-crl", (reply.status, reply.headers)
    target.write_bytes(reply.body)
    return target


def test_crl_is_signed_lists_the_revoked_and_grows(live_server: LiveServer, tmp_path: Path) -> None:
    bob, _, bob_serial = enroll(live_server, tmp_path, "bob")
    carol, _, carol_serial = enroll(live_server, tmp_path, "carol")
    dave, _, _ = enroll(live_server, tmp_path, "dave")
    token = bearer(live_server.admin_token)
    reason = ("-H", "Content-Type: application/json", "-d", '{"reason":"keyCompromise"}')
    assert curl(live_server, f"/certs/{bob_serial}/revoke", *token, *reason).status == 200

    crl = tmp_path / "crl.der"
    assert wait_for(lambda: _revoked_entry(_fetch_crl(live_server, crl), openssl_serial(bob)) is not None), (
        "the CRL never listed the revoked certificate"
    )
    checked = openssl("crl", "-inform", "DER", "-in", str(crl), "-CAfile", str(live_server.ca_file), "-noout")
    assert "verify OK" in checked.stdout + checked.stderr
    assert "Key Compromise" in (_revoked_entry(crl, openssl_serial(bob)) or "")
    assert _revoked_entry(crl, openssl_serial(dave)) is None
    first = _crl_number(crl)

    # negative: the same CRL does not verify against another CA
    foreign = ForeignCA()
    foreign_pem = tmp_path / "foreign-ca.pem"
    foreign_pem.write_bytes(foreign.certificate.public_bytes(Encoding.PEM))
    wrong = openssl("crl", "-inform", "DER", "-in", str(crl), "-CAfile", str(foreign_pem), "-noout", check=False)
    assert "verify OK" not in wrong.stdout + wrong.stderr

    superseded = ("-H", "Content-Type: application/json", "-d", '{"reason":"superseded"}')
    assert curl(live_server, f"/certs/{carol_serial}/revoke", *token, *superseded).status == 200
    assert wait_for(lambda: _crl_number(_fetch_crl(live_server, crl)) > first), "the CRL number did not grow"
    assert "Superseded" in (_revoked_entry(crl, openssl_serial(carol)) or "")
    assert "Key Compromise" in (_revoked_entry(crl, openssl_serial(bob)) or "")

    # /crl.pem is the same CRL in PEM
    pem_reply = curl(live_server, "/crl.pem")
    assert pem_reply.status == 200 and pem_reply.body.startswith(b"-----BEGIN X509 CRL-----")
    crl_pem = tmp_path / "crl.pem"
    crl_pem.write_bytes(pem_reply.body)
    as_der = tmp_path / "crl-from-pem.der"
    openssl("crl", "-in", str(crl_pem), "-outform", "DER", "-out", str(as_der))
    assert as_der.read_bytes() == _fetch_crl(live_server, tmp_path / "again.der").read_bytes()

    # openssl verify with the CRL: the revoked one is refused, a good one passes
    bundle = tmp_path / "ca-and-crl.pem"
    bundle.write_bytes(live_server.ca_file.read_bytes() + crl_pem.read_bytes())
    revoked = openssl("verify", "-crl_check", "-CAfile", str(bundle), str(bob), check=False)
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    good = openssl("verify", "-crl_check", "-CAfile", str(bundle), str(dave), check=False)
    assert good.returncode == 0 and good.stdout.strip() == f"{dave}: OK", good.stdout + good.stderr


def test_ca_chain_pem_and_der(live_server: LiveServer, tmp_path: Path) -> None:
    chain = curl(live_server, "/ca")
    assert chain.status == 200 and chain.content_type == PEM_CHAIN
    assert chain.body == live_server.ca_file.read_bytes()

    der = curl(live_server, "/ca.crt")
    assert der.status == 200 and der.content_type == "application/pkix-cert"
    path = tmp_path / "ca.crt"
    path.write_bytes(der.body)
    as_pem = openssl("x509", "-inform", "DER", "-in", str(path)).stdout
    assert as_pem.encode() == live_server.ca_file.read_bytes()
    # negative control: DER is not PEM, and openssl says so
    assert openssl("x509", "-inform", "PEM", "-in", str(path), check=False).returncode != 0


# --- 5. the handshake refuses what is not a valid client certificate of ours ------------------------------


def _httpx_whoami(server: LiveServer, cert: Path, key: Path) -> int | None:
    """The status of GET /whoami over httpx with this client certificate, or None if TLS failed."""
    context = ssl.create_default_context(cafile=str(server.ca_file))
    context.load_cert_chain(str(cert), str(key))
    try:
        with httpx.Client(base_url=server.url, verify=context, timeout=15) as http:
            return http.get("/whoami").status_code
    except httpx.TransportError:
        return None


@pytest.fixture(scope="module")
def bad_client_certs(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """A foreign CA's client cert, an expired one of ours, a serverAuth-only one of ours."""
    directory = tmp_path_factory.mktemp("bad-certs")
    settings = make_settings(live_server.data_dir)
    pairs = {}
    foreign = ForeignCA()
    foreign_key, foreign_cert = foreign.issue_client("mallory")
    pairs["foreign"] = write_pair(directory, "foreign", foreign_key, foreign_cert)

    past = authority_at(settings, now() - dt.timedelta(days=30))
    try:
        key = p256()
        issued = past.issue_for_key(key.public_key(), cn="old", sans=["old"], profile="client", validity_days=1)
    finally:
        past.close()
    assert issued.certificate.not_valid_after_utc < now()
    pairs["expired"] = write_pair(directory, "expired", key, issued.certificate)

    current = authority_at(settings, now())
    try:
        key = p256()
        issued = current.issue_for_key(key.public_key(), cn="srv", sans=["srv"], profile="server")
    finally:
        current.close()
    pairs["server-only"] = write_pair(directory, "server-only", key, issued.certificate)

    # each is bad for exactly the reason it is meant to show, as openssl sees it
    foreign_ca = directory / "foreign-ca.pem"
    foreign_ca.write_bytes(foreign.certificate.public_bytes(Encoding.PEM))
    assert _verify(foreign_ca, pairs["foreign"][0]) == (True, "")
    assert _verify(live_server.ca_file, pairs["foreign"][0]) == (False, "unable to get local issuer certificate")
    assert _verify(live_server.ca_file, pairs["expired"][0]) == (False, "certificate has expired")
    assert _verify(live_server.ca_file, pairs["server-only"][0], "sslserver") == (True, "")
    assert _verify(live_server.ca_file, pairs["server-only"][0]) == (False, "unsuitable certificate purpose")
    return pairs


def _verify(ca: Path, cert: Path, purpose: str = "sslclient") -> tuple[bool, str]:
    """`openssl verify -purpose`: (passed, the first error's text)."""
    result = openssl("verify", "-purpose", purpose, "-CAfile", str(ca), str(cert), check=False)
    match = re.search(r"error \d+ at \d+ depth lookup: (.+)", result.stdout + result.stderr)
    return result.returncode == 0, match.group(1).strip() if match else ""


@pytest.mark.parametrize("kind", ["foreign", "expired", "server-only"])
def test_curl_with_a_bad_client_certificate_never_gets_whoami(
    live_server: LiveServer, bad_client_certs: dict[str, tuple[Path, Path]], kind: str
) -> None:
    cert, key = bad_client_certs[kind]
    reply = curl(live_server, "/whoami", "--cert", str(cert), "--key", str(key))
    # CERT_OPTIONAL: a certificate that does not verify aborts the handshake (under TLS 1.3 curl may only
    # notice on its first read), so either curl fails or the answer is not 200
    assert reply.exit_code != 0 or reply.status != 200, (reply.status, reply.body)


@pytest.mark.parametrize("kind", ["foreign", "expired", "server-only"])
def test_httpx_with_a_bad_client_certificate_never_gets_whoami(
    live_server: LiveServer, bad_client_certs: dict[str, tuple[Path, Path]], kind: str
) -> None:
    cert, key = bad_client_certs[kind]
    assert _httpx_whoami(live_server, cert, key) != 200


def test_httpx_with_a_fresh_client_certificate_of_ours_gets_whoami(live_server: LiveServer, tmp_path: Path) -> None:
    cert, key, serial = enroll(live_server, tmp_path, "erin")
    assert _httpx_whoami(live_server, cert, key) == 200
    context = ssl.create_default_context(cafile=str(live_server.ca_file))
    context.load_cert_chain(str(cert), str(key))
    with httpx.Client(base_url=live_server.url, verify=context, timeout=15) as http:
        me = http.get("/whoami").json()
    assert me["cn"] == "erin" and me["serial"] == serial


# --- 6. the TLS the service offers, seen by openssl s_client ----------------------------------------------


def _s_client(server: LiveServer, *options: str) -> subprocess.CompletedProcess[str]:
    return openssl("s_client", "-connect", f"127.0.0.1:{server.port}", *options, check=False)


def test_s_client_tls_versions(live_server: LiveServer) -> None:
    modern = _s_client(live_server, "-tls1_2", "-CAfile", str(live_server.ca_file), "-servername", "localhost")
    assert modern.returncode == 0, modern.stdout + modern.stderr
    assert "Protocol  : TLSv1.2" in modern.stdout
    old = _s_client(live_server, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-servername", "localhost")
    assert old.returncode != 0
    assert "Cipher is (NONE)" in old.stdout or "no peer certificate available" in old.stdout


@pytest.mark.parametrize("check", [("-verify_hostname", "localhost"), ("-verify_ip", "127.0.0.1")])
def test_s_client_verifies_the_server_certificate(live_server: LiveServer, check: tuple[str, str]) -> None:
    result = _s_client(live_server, "-CAfile", str(live_server.ca_file), "-verify_return_error", *check)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verify return code: 0 (ok)" in result.stdout


@pytest.mark.parametrize(
    ("check", "code"),
    [(("-verify_hostname", "ca.example.com"), "62 (hostname mismatch)"), (("-verify_ip", "10.9.8.7"), "64 (IP")],
)
def test_s_client_refuses_names_the_server_certificate_lacks(
    live_server: LiveServer, check: tuple[str, str], code: str
) -> None:
    result = _s_client(live_server, "-CAfile", str(live_server.ca_file), *check)
    assert f"Verify return code: {code}" in result.stdout, result.stdout
    refused = _s_client(live_server, "-CAfile", str(live_server.ca_file), "-verify_return_error", *check)
    assert refused.returncode != 0


def test_s_client_without_our_ca_does_not_verify(live_server: LiveServer, tmp_path: Path) -> None:
    foreign_pem = tmp_path / "foreign.pem"
    foreign_pem.write_bytes(ForeignCA().certificate.public_bytes(Encoding.PEM))
    result = _s_client(live_server, "-CAfile", str(foreign_pem), "-verify_hostname", "localhost")
    assert "Verify return code: 0 (ok)" not in result.stdout


# --- 7. import a CA made with the openssl CLI --------------------------------------------------------------


def _pocketca(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _openssl_root(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "rootCA.key", directory / "rootCA.crt"
    openssl("genrsa", "-out", str(key), "2048")
    openssl(
        "req", "-x509", "-new", "-nodes", "-key", str(key), "-sha256", "-days", "1024",
        "-subj", "/CN=Imported Root", "-out", str(cert),
    )  # fmt: skip
    return key, cert


def test_an_openssl_made_ca_imports_and_serves(tmp_path: Path) -> None:
    key, cert = _openssl_root(tmp_path / "openssl")
    data = tmp_path / "imported" / "data"
    result = _pocketca("init", "--data-dir", str(data), "--import-key", str(key), "--import-cert", str(cert))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CN=Imported Root" in result.stdout

    server = start_server(data)
    try:
        chain = curl(server, "/ca", cacert=cert)
        assert chain.status == 200, chain.stderr
        assert x509.load_pem_x509_certificate(chain.body) == x509.load_pem_x509_certificate(cert.read_bytes())
        assert len(PEM_CERT.findall(chain.body)) == 1

        alice, alice_key, serial = enroll(server, tmp_path / "alice", "alice")
        verified = openssl("verify", "-CAfile", str(cert), str(alice), check=False)
        assert verified.returncode == 0 and verified.stdout.strip() == f"{alice}: OK", verified.stdout
        me = curl(server, "/whoami", "--cert", str(alice), "--key", str(alice_key), cacert=cert)
        assert me.status == 200, (me.status, me.body, me.stderr)
        assert me.json()["cn"] == "alice" and me.json()["serial"] == serial
        assert me.json()["issuer"] == "CN=Imported Root"

        # negative: another openssl-made root vouches neither for this server nor for its certificates
        _, other_cert = _openssl_root(tmp_path / "other")
        assert curl(server, "/healthz", cacert=other_cert).exit_code != 0
        assert openssl("verify", "-CAfile", str(other_cert), str(alice), check=False).returncode != 0
    finally:
        server.stop()


def test_import_with_a_key_that_does_not_match_fails_cleanly(tmp_path: Path) -> None:
    _, cert = _openssl_root(tmp_path / "openssl")
    stranger = tmp_path / "stranger.key"
    openssl("genrsa", "-out", str(stranger), "2048")
    data = tmp_path / "data"
    result = _pocketca("init", "--data-dir", str(data), "--import-key", str(stranger), "--import-cert", str(cert))
    assert result.returncode != 0
    assert "does not match" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (data / "ca.key").exists() and not (data / "ca.pem").exists()
