"""Two `pocketca serve` replicas sharing one PostgreSQL database and one CA, and nginx in front of them."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from service.client import build_client_context
from tests.conftest import PG_URL, LiveServer, database_url_for, query, start_server
from tests.helpers import csr_pem, free_port, key_pem, p256

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="replicas share a PostgreSQL database: set POCKETCA_TEST_DATABASE_URL"
)
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Pair:
    a: LiveServer
    b: LiveServer
    url: str

    @property
    def token(self) -> str:
        return self.a.admin_token


def _second_replica_dir(first: Path, second: Path) -> None:
    """`init` runs once; the other replica gets a copy of the CA (docs/deploy.md)."""
    second.mkdir(parents=True, mode=0o700)
    for name in ("ca.key", "ca.pem"):
        shutil.copy2(first / name, second / name)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("replicas")
    url = database_url_for(root / "a")
    assert url is not None
    env = {"POCKETCA_DATABASE_URL": url, "POCKETCA_TRUSTED_PROXIES": "127.0.0.1/32"}
    a = start_server(root / "a", extra_env=env)
    _second_replica_dir(root / "a", root / "b")
    b = start_server(root / "b", extra_env=env)
    yield Pair(a, b, url)
    a.stop()
    b.stop()


def _issue(server: LiveServer, token: str, directory: Path, cn: str) -> tuple[Path, Path, str]:
    key = p256()
    with server.client(headers={"Authorization": f"Bearer {token}"}) as http:
        response = http.post("/csr", json={"csr": csr_pem(key, cn).decode()})
    assert response.status_code == 201, response.text
    cert, key_path = directory / f"{cn}.pem", directory / f"{cn}.key"
    cert.write_text(response.json()["certificate"])
    key_path.write_bytes(key_pem(key))
    return cert, key_path, response.json()["serial"]


def _crl(server: LiveServer) -> x509.CertificateRevocationList:
    with server.client() as http:
        return x509.load_der_x509_crl(http.get("/crl").content)


def test_issue_on_a_revoke_on_b_refused_on_a_within_a_second(pair: Pair, tmp_path: Path) -> None:
    cert, key, serial = _issue(pair.a, pair.token, tmp_path, "svc-1")
    with pair.a.client(cert, key) as on_a, pair.b.client(cert, key) as on_b:
        assert on_a.get("/whoami").status_code == 200  # keep-alive connection to A stays open
        assert on_b.get("/whoami").status_code == 200
        with pair.b.client(headers={"Authorization": f"Bearer {pair.token}"}) as admin:
            assert admin.post(f"/certs/{serial}/revoke", json={"reason": "keyCompromise"}).status_code == 200
        revoked_at = time.monotonic()
        assert on_a.get("/whoami").status_code == 403
        assert time.monotonic() - revoked_at < 1.0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _crl(pair.a).get_revoked_certificate_by_serial_number(int(serial, 16)) is not None:
            break
        time.sleep(0.05)
    else:
        pytest.fail("A's CRL never listed the certificate revoked on B")


def test_crl_numbers_grow_across_replicas_and_each_is_built_once(pair: Pair, tmp_path: Path) -> None:
    numbers = []
    for index in range(6):
        server = pair.a if index % 2 else pair.b
        _, _, serial = _issue(server, pair.token, tmp_path, f"crl-{index}")
        with server.client(headers={"Authorization": f"Bearer {pair.token}"}) as admin:
            assert admin.post(f"/certs/{serial}/revoke").status_code == 200
        time.sleep(0.6)
        for replica in (pair.a, pair.b):
            numbers.append(_crl(replica).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    assert numbers == sorted(numbers) and numbers[-1] > numbers[0]
    built = re.findall(r"built CRL (\d+)", pair.a.log() + pair.b.log())
    assert len(built) == len(set(built))  # no number built twice, by either replica
    stored = query(pair.a.data_dir, "SELECT count(*), count(DISTINCT number) FROM crls")
    assert stored[0][0] == stored[0][1]


def test_one_use_token_on_both_replicas_at_once(pair: Pair) -> None:
    with pair.a.client(headers={"Authorization": f"Bearer {pair.token}"}) as admin:
        token = admin.post("/tokens", json={"cn": "race-1"}).json()["token"]
    barrier = threading.Barrier(16)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(server: LiveServer) -> None:
        with server.client(headers={"Authorization": f"Bearer {token}"}) as http:
            http.get("/healthz")
            barrier.wait(timeout=30)
            status = http.post("/csr", json={"csr": csr_pem(p256(), "race-1").decode()}).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in [pair.a, pair.b] * 8]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201] + [401] * 15
    assert query(pair.a.data_dir, "SELECT count(*) FROM certificates WHERE cn = 'race-1'") == [(1,)]


def _new_account(server: LiveServer, nonce: str, http: httpx.Client | None = None) -> httpx.Response:
    """A newAccount with a fresh key, signed with `nonce`, addressed to `server`."""
    import josepy as jose
    from acme import jws as acme_jws
    from cryptography.hazmat.primitives.asymmetric import ec

    url = f"{server.url}/acme/new-account"
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    body = acme_jws.JWS.sign(b"{}", key=key, alg=jose.ES256, nonce=jose.decode_b64jose(nonce), url=url).json_dumps()
    headers = {"Content-Type": "application/jose+json"}
    if http is not None:
        return http.post(url, content=body, headers=headers)
    with server.client() as own:
        return own.post(url, content=body, headers=headers)


def test_an_acme_nonce_is_good_on_either_replica_and_spent_once_across_both(pair: Pair) -> None:
    """Nonces are checked without the database (both replicas hold the key from it) and spent in it: one from A
    is good on B, then on neither; one sent to both replicas sixteen times at once is spent exactly once."""
    with pair.a.client() as http:
        issued = [http.head("/acme/new-nonce").headers["Replay-Nonce"] for _ in range(2)]
    first = _new_account(pair.b, issued[0])
    assert first.status_code == 201, first.text
    for server in (pair.a, pair.b):
        again = _new_account(server, issued[0])
        assert again.status_code == 400 and again.json()["type"] == "urn:ietf:params:acme:error:badNonce"
        assert again.headers["Replay-Nonce"]  # with a fresh one

    barrier = threading.Barrier(16)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(server: LiveServer) -> None:
        with server.client() as http:
            http.get("/healthz")
            barrier.wait(timeout=30)
            status = _new_account(server, issued[1], http).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in [pair.a, pair.b] * 8]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201] + [400] * 15
    one_key = "SELECT count(*) FROM server_secrets WHERE name = 'acme-nonce-key'"
    assert query(pair.a.data_dir, one_key) == [(1,)]  # one key for both


def test_two_replicas_migrating_at_once(tmp_path: Path) -> None:
    first = tmp_path / "c"
    assert (
        subprocess.run(
            [sys.executable, "-m", "service", "init", "--data-dir", str(first)], capture_output=True, cwd=ROOT
        ).returncode
        == 0
    )
    _second_replica_dir(first, tmp_path / "d")
    url = database_url_for(tmp_path / "fresh-db")
    env = {"POCKETCA_DATABASE_URL": str(url)}
    results: dict[str, LiveServer] = {}

    def start(name: str) -> None:
        results[name] = start_server(tmp_path / name, extra_env=env)

    threads = [threading.Thread(target=start, args=(n,)) for n in ("c", "d")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert set(results) == {"c", "d"}
        assert query(tmp_path / "fresh-db", "SELECT count(*) FROM alembic_version") == [(1,)]
        assert query(tmp_path / "fresh-db", "SELECT count(*) FROM tokens WHERE scope = 'admin'") == [(1,)]
    finally:
        for server in results.values():
            server.stop()


# --- nginx in front -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    root = tmp_path_factory.mktemp("nginx")
    port = free_port()
    example = (ROOT / "docs" / "nginx-pocketca.conf").read_text()
    config = (
        example.replace("127.0.0.1:8443", f"127.0.0.1:{pair.a.port}")
        .replace("127.0.0.1:8444", f"127.0.0.1:{pair.b.port}")
        .replace("listen 443 ssl", f"listen 127.0.0.1:{port} ssl")
        .replace("/etc/pocketca/nginx.pem", str(pair.a.data_dir / "server.pem"))
        .replace("/etc/pocketca/nginx.key", str(pair.a.data_dir / "server.key"))
        .replace("/etc/pocketca/ca.pem", str(pair.a.ca_file))
    )
    conf = root / "nginx.conf"
    conf.write_text(
        f"pid {root}/nginx.pid;\nerror_log {root}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n client_body_temp_path {root};\n proxy_temp_path {root};\n{config}\n}}\n"
    )
    process = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with httpx.Client(verify=build_client_context(pair.a.ca_file), timeout=2) as http:
                    if http.get(f"https://localhost:{port}/healthz").status_code == 200:
                        break
            except httpx.TransportError:
                time.sleep(0.1)
        yield f"https://localhost:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        finally:
            if process.stderr is not None:
                process.stderr.close()


def _via(base: str, ca: Path, cert: Path | None = None, key: Path | None = None, **kwargs: object) -> httpx.Client:
    return httpx.Client(base_url=base, verify=build_client_context(ca, cert, key), timeout=15, **kwargs)  # type: ignore[arg-type]


def test_through_nginx_whoami_renew_revoke(pair: Pair, nginx: str, tmp_path: Path) -> None:
    cert, key, serial = _issue(pair.a, pair.token, tmp_path, "behind-proxy")
    with _via(nginx, pair.a.ca_file, cert, key) as http:
        me = http.get("/whoami")
        assert me.status_code == 200 and me.json()["serial"] == serial
        renewed = http.post("/csr", json={"csr": csr_pem(p256(), "behind-proxy").decode()})
        assert renewed.status_code == 201
        assert http.post(f"/certs/{serial}/revoke", json={"reason": "superseded"}).status_code == 200
        assert http.get("/whoami").status_code == 403
    with _via(nginx, pair.a.ca_file) as anonymous:
        assert anonymous.get("/whoami").status_code == 401
        assert anonymous.get("/crl").status_code == 200


def test_forged_header_sent_directly_is_ignored(pair: Pair, tmp_path: Path) -> None:
    cert, _, _ = _issue(pair.a, pair.token, tmp_path, "victim")
    forged = {"X-SSL-Client-Cert": urllib.parse.quote(cert.read_text())}
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=build_client_context(pair.a.ca_file))
    with httpx.Client(
        base_url=f"https://127.0.0.1:{pair.a.port}", transport=transport, headers=forged, timeout=15
    ) as http:
        assert http.get("/whoami").status_code == 401  # from 127.0.0.2, not a trusted proxy
    assert "ignored x-ssl-client-cert header from untrusted address 127.0.0.2" in pair.a.log()


# --- the offline root's CRL ---------------------------------------------------------------------------------------


def test_replicas_serve_a_new_root_crl_without_a_restart(tmp_path: Path) -> None:
    """`ca crl` writes into one data dir; copied to the other replica's (as the CA files are, docs/deploy.md), each
    serves the new CRL at /crl/<root id> on its next request, without a restart."""
    url = database_url_for(tmp_path / "a")
    assert url is not None
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}, "POCKETCA_DATABASE_URL": url}
    secret = tmp_path / "pass"
    secret.write_text("correct horse battery\n")
    root_file = tmp_path / "root.pem"
    init = [sys.executable, "-m", "service", "init", "--data-dir", str(tmp_path / "a"), "--intermediate",
            "--root-out", str(root_file), "--root-passphrase-file", str(secret)]  # fmt: skip
    assert subprocess.run(init, capture_output=True, env=env, cwd=ROOT).returncode == 0
    _second_replica_dir(tmp_path / "a", tmp_path / "b")
    for name in ("chain.pem", "root-crls"):
        copy = shutil.copytree if (tmp_path / "a" / name).is_dir() else shutil.copy2
        copy(tmp_path / "a" / name, tmp_path / "b" / name)
    (root_id,) = (p.stem for p in (tmp_path / "a" / "root-crls").glob("*.crl"))
    a = start_server(tmp_path / "a", extra_env={"POCKETCA_DATABASE_URL": url})
    b = start_server(tmp_path / "b", extra_env={"POCKETCA_DATABASE_URL": url})
    try:

        def number(server: LiveServer) -> int:
            with httpx.Client(timeout=10) as http:
                response = http.get(f"{server.http_url}/crl/{root_id}")  # the plain-HTTP listener
            assert response.status_code == 200, response.text
            crl = x509.load_der_x509_crl(response.content)
            return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

        assert (number(a), number(b)) == (1, 1)
        signed = [sys.executable, "-m", "service", "ca", "crl", "--data-dir", str(tmp_path / "a"), "--root-file",
                  str(root_file), "--root-passphrase-file", str(secret)]  # fmt: skip
        assert subprocess.run(signed, capture_output=True, env=env, cwd=ROOT).returncode == 0
        assert (number(a), number(b)) == (2, 1)  # A at once; B once its data dir has the file
        shutil.copytree(tmp_path / "a" / "root-crls", tmp_path / "b" / "root-crls", dirs_exist_ok=True)
        assert (number(a), number(b)) == (2, 2)
        assert a.process.poll() is None and b.process.poll() is None  # neither restarted
    finally:
        a.stop()
        b.stop()
