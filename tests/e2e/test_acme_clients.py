"""Real ACME clients, unchanged, against a real `pocketca serve`: certbot (http-01 standalone, dns-01 through a
manual hook, renew, revoke, external account binding) and lego (http-01, tls-alpn-01, dns-01 through its exec
provider). pebble-challtestsrv is the DNS server every lookup goes to; the tests set its TXT records."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import josepy as jose
import pytest
from acme import client, messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.ca.inspect import format_serial
from tests.conftest import database_url_for
from tests.e2e.acme_env import CHALLENGE_IP, AcmeServer, ChallTestSrv, challtestsrv, need, start_acme_server


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChallTestSrv]:
    with challtestsrv(tmp_path_factory.mktemp("dns")) as server:
        yield server


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory, dns: ChallTestSrv) -> Iterator[AcmeServer]:
    server = start_acme_server(tmp_path_factory.mktemp("acme") / "data", dns)
    yield server
    server.live.stop()


def certbot(server: AcmeServer, workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = need("certbot", "certbot")
    dirs = ["--config-dir", str(workdir / "config"), "--work-dir", str(workdir / "work")]
    dirs += ["--logs-dir", str(workdir / "logs"), "--server", server.directory, "--non-interactive"]
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(server.live.ca_file)}
    result = subprocess.run([binary, *args, *dirs], capture_output=True, text=True, env=env, timeout=180, check=False)
    if check and result.returncode != 0:
        logfile = workdir / "logs" / "letsencrypt.log"  # absent when certbot stops at argument parsing
        log = logfile.read_text(errors="replace")[-4000:] if logfile.exists() else "(certbot wrote no log)"
        raise AssertionError(f"certbot {args[0]} failed ({result.returncode}):\n{result.stderr}\n{log}")
    return result


def lego(server: AcmeServer, workdir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    binary = need("lego", "lego")
    base = ["--server", server.directory, "--path", str(workdir), "--email", "ops@acme.test", "--accept-tos"]
    environment = {**os.environ, "LEGO_CA_CERTIFICATES": str(server.live.ca_file), **(env or {})}
    result = subprocess.run(
        [binary, *base, *args, "run"], capture_output=True, text=True, env=environment, timeout=180, check=False
    )
    assert result.returncode == 0, f"lego failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stderr + result.stdout


def admin(server: AcmeServer) -> httpx.Client:
    return server.live.client(headers={"Authorization": f"Bearer {server.live.admin_token}"})


def check_issued(server: AcmeServer, pem: bytes, names: list[str]) -> x509.Certificate:
    """The certificate a client got is ours, for exactly the names, recorded with the account as the actor."""
    certificate = x509.load_pem_x509_certificates(pem)[0]
    ca = x509.load_pem_x509_certificate(server.live.ca_file.read_bytes())
    certificate.verify_directly_issued_by(ca)
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]  # POCKETCA_ACME_PROFILE's default: server
    serial = format_serial(certificate.serial_number)
    with admin(server) as http:
        record = http.get(f"/certs/{serial}").json()
        assert record["status"] == "valid" and record["profile"] == "server"
        events = http.get("/audit", params={"limit": 200}).json()["items"]
    issue = [e for e in events if e["serial"] == serial and e["action"] == "certificate.issue"]
    assert issue and issue[0]["outcome"] == "ok" and issue[0]["actor"].startswith("acme:")
    return certificate


def test_certbot_http01_standalone_then_renew_then_revoke(acme: AcmeServer, tmp_path: Path) -> None:
    name = "www.certbot.test"
    standalone = ["--standalone", "--http-01-port", str(acme.http_port), "--http-01-address", CHALLENGE_IP]
    result = certbot(acme, tmp_path, "certonly", *standalone, "--agree-tos", "--register-unsafely-without-email",
                     "-d", name)  # fmt: skip
    assert "Successfully received certificate" in result.stdout
    live = tmp_path / "config" / "live" / name
    first = check_issued(acme, (live / "cert.pem").read_bytes(), [name])
    chain = (live / "fullchain.pem").read_bytes()
    assert x509.load_pem_x509_certificates(chain)[1] == x509.load_pem_x509_certificate(acme.live.ca_file.read_bytes())

    result = certbot(acme, tmp_path, "renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert "Congratulations, all renewals succeeded" in result.stdout
    second = check_issued(acme, (live / "cert.pem").read_bytes(), [name])
    assert second.serial_number != first.serial_number

    result = certbot(acme, tmp_path, "revoke", "--cert-name", name, "--reason", "keycompromise",
                     "--no-delete-after-revoke")  # fmt: skip
    assert "successfully revoked" in result.stdout
    serial = format_serial(second.serial_number)
    with admin(acme) as http:
        record = http.get(f"/certs/{serial}").json()
        deadline = time.monotonic() + 15  # the CRL is rebuilt in the background, within seconds
        while (listed := _in_crl(http, second)) is False and time.monotonic() < deadline:
            time.sleep(0.2)
    assert record["status"] == "revoked" and record["revocation_reason"] == "keyCompromise"
    assert listed
    # revoking again is refused with alreadyRevoked (certbot 2.1 then trips over its own error handling)
    again = certbot(acme, tmp_path, "revoke", "--cert-name", name, "--no-delete-after-revoke", check=False)
    assert again.returncode != 0
    assert "urn:ietf:params:acme:error:alreadyRevoked" in (tmp_path / "logs" / "letsencrypt.log").read_text()


def _in_crl(http: httpx.Client, certificate: x509.Certificate) -> bool:
    crl = x509.load_der_x509_crl(http.get("/crl").content)
    return crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None


def test_certbot_dns01_through_a_manual_hook(acme: AcmeServer, dns: ChallTestSrv, tmp_path: Path) -> None:
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import json, os, sys, urllib.request\n"
        f"url = 'http://127.0.0.1:{dns.management_port}/' + ('set-txt' if sys.argv[1] == 'auth' else 'clear-txt')\n"
        "body = {'host': '_acme-challenge.' + os.environ['CERTBOT_DOMAIN'] + '.',"
        " 'value': os.environ['CERTBOT_VALIDATION']}\n"
        "urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode()), timeout=10)\n"
    )
    python = sys.executable
    name = "dns.certbot.test"
    result = certbot(acme, tmp_path, "certonly", "--manual", "--preferred-challenges", "dns",
                     "--manual-auth-hook", f"{python} {hook} auth", "--manual-cleanup-hook", f"{python} {hook} cleanup",
                     "--agree-tos", "--register-unsafely-without-email", "-d", name, "-d", f"*.{name}")  # fmt: skip
    assert "Successfully received certificate" in result.stdout
    check_issued(acme, (tmp_path / "config" / "live" / name / "cert.pem").read_bytes(), [name, f"*.{name}"])


def test_lego_http01_tls_alpn01_and_dns01_exec(acme: AcmeServer, dns: ChallTestSrv, tmp_path: Path) -> None:
    http = f"{CHALLENGE_IP}:{acme.http_port}"
    out = lego(acme, tmp_path, "--domains", "web.lego.test", "--http", "--http.port", http)
    assert "Server responded with a certificate" in out
    check_issued(acme, (tmp_path / "certificates" / "web.lego.test.crt").read_bytes(), ["web.lego.test"])

    out = lego(acme, tmp_path, "--domains", "tls.lego.test", "--tls", "--tls.port", f"{CHALLENGE_IP}:{acme.tls_port}")
    assert "Server responded with a certificate" in out
    check_issued(acme, (tmp_path / "certificates" / "tls.lego.test.crt").read_bytes(), ["tls.lego.test"])

    hook = tmp_path / "exec.sh"  # lego's exec provider: hook present|cleanup FQDN VALUE
    hook.write_text(
        "#!/bin/sh\n"
        f'case "$1" in present) p=set-txt;; *) p=clear-txt;; esac\n'
        f'exec curl -sf -d "{{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}}" http://127.0.0.1:{dns.management_port}/$p\n'
    )
    hook.chmod(0o755)
    out = lego(acme, tmp_path, "--domains", "dns.lego.test", "--dns", "exec", "--dns.resolvers", dns.resolver,
               "--dns.disable-cp", env={"EXEC_PATH": str(hook)})  # fmt: skip
    assert "Server responded with a certificate" in out
    check_issued(acme, (tmp_path / "certificates" / "dns.lego.test.crt").read_bytes(), ["dns.lego.test"])


@pytest.fixture(scope="module")
def acme_eab(tmp_path_factory: pytest.TempPathFactory, dns: ChallTestSrv) -> Iterator[AcmeServer]:
    server = start_acme_server(
        tmp_path_factory.mktemp("acme-eab") / "data", dns, extra_env={"POCKETCA_ACME_EAB_REQUIRED": "true"}
    )
    yield server
    server.live.stop()


def test_certbot_with_external_account_binding(acme_eab: AcmeServer, tmp_path: Path) -> None:
    with admin(acme_eab) as http:
        assert http.get("/acme/directory").json()["meta"]["externalAccountRequired"] is True
    register = ["register", "--agree-tos", "--register-unsafely-without-email"]
    refused = certbot(acme_eab, tmp_path / "none", *register, check=False)  # certbot reads the directory's meta
    assert refused.returncode != 0 and "external account binding" in refused.stderr
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))  # and the server refuses it by itself
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(acme_eab.live.ca_file))
    with pytest.raises(messages.Error) as no_binding:
        client.ClientV2(client.ClientV2.get_directory(acme_eab.directory, net), net).new_account(
            messages.NewRegistration.from_data(terms_of_service_agreed=True)
        )
    net.session.close()
    assert no_binding.value.typ == "urn:ietf:params:acme:error:externalAccountRequired"

    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    if url := database_url_for(acme_eab.live.data_dir):  # the PostgreSQL pass
        env["POCKETCA_DATABASE_URL"] = url
    created = subprocess.run(
        [sys.executable, "-m", "service", "acme", "eab", "create", "--data-dir", str(acme_eab.live.data_dir)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    values = dict(line.split(": ", 1) for line in created.stdout.splitlines())
    kid, hmac_key = values["kid"], values["hmac_key"]
    eab = ["--eab-kid", kid, "--eab-hmac-key", hmac_key]

    wrong = certbot(acme_eab, tmp_path / "wrong", *register, "--eab-kid", kid, "--eab-hmac-key", "A" * 43, check=False)
    assert wrong.returncode != 0 and "does not verify" in wrong.stderr

    name = "eab.certbot.test"
    standalone = ["--standalone", "--http-01-port", str(acme_eab.http_port), "--http-01-address", CHALLENGE_IP]
    result = certbot(acme_eab, tmp_path / "bound", "certonly", *standalone, *eab, "--agree-tos",
                     "--register-unsafely-without-email", "-d", name)  # fmt: skip
    assert "Successfully received certificate" in result.stdout
    check_issued(acme_eab, (tmp_path / "bound" / "config" / "live" / name / "cert.pem").read_bytes(), [name])

    reused = certbot(acme_eab, tmp_path / "again", *register, *eab, check=False)  # a key binds one account
    assert reused.returncode != 0 and "already used" in reused.stderr
    with admin(acme_eab) as http:
        created_via_api = http.post("/acme/eab", json={"profile": "server"})
    assert created_via_api.status_code == 201 and set(created_via_api.json()) == {"kid", "hmac_key", "profile"}
    assert hmac_key not in acme_eab.live.log()  # the shared secret is never logged
