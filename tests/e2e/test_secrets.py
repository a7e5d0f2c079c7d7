"""Secrets: a full session against a real `pocketca serve` with an encrypted CA key, then a search of every
log line, every response body and every file the service wrote for anything secret.

The session: enrolment with the admin token and with a one-use enrollment token, a used-up token and wrong
tokens, a PKCS#12 bundle (and two refused ones), a private key sent by mistake as a CSR, a renewal over mTLS,
revocations by token and by the holder, the listings; a restart with the passphrase file; a start with the
wrong passphrase. Secrets searched for: every private key held on either side (PEM base64 lines in PKCS#8 and
traditional form, the private scalar in hex, decimal and raw bytes), every token and its secret half, the
PKCS#12 passwords and the CA passphrases.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
    pkcs12,
)

from service.authority.callers import hash_secret
from service.ca.keys import PrivateKey
from tests.conftest import LiveServer, database_url_for, query, start_server
from tests.helpers import csr_pem, free_port, key_pem, p256

DB_FILES = re.compile(r"pocketca\.db(-wal|-shm|-journal)?$|\.lock$|\.write-lock$")


# --- what is secret ---------------------------------------------------------------------------------------


def _key_texts(key: PrivateKey) -> list[str]:
    """Ways a private key could show up in text: its PEM lines (PKCS#8 and traditional) and its scalar."""
    texts: list[str] = []
    for form in (PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL):
        pem = key.private_bytes(Encoding.PEM, form, NoEncryption()).decode()
        texts += [line for line in pem.splitlines() if len(line) >= 16 and not line.startswith("-----")]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    value = key.private_numbers().private_value
    texts += [format(value, "064x"), str(value)]
    return texts


def _key_bytes(key: PrivateKey) -> list[bytes]:
    """The same for binary files (a database page): also the DER and the raw 32-byte scalar."""
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return [der, scalar, *(text.encode() for text in _key_texts(key))]


def _token_texts(token: str) -> list[str]:
    """The token, its secret (after `pca_<id>_`; urlsafe base64 may itself hold `_`) and the part after the
    last `_` when that is long enough to mean something."""
    texts = [token]
    if token.startswith("pca_") and token.count("_") >= 2:
        secret = token.removeprefix("pca_").partition("_")[2]
        texts.append(secret)
        last = token.rpartition("_")[2]
        if len(last) >= 12:
            texts.append(last)
    return texts


@dataclass
class Secrets:
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # what it is -> the token
    words: dict[str, str] = field(default_factory=dict)  # passwords and passphrases

    def texts(self) -> dict[str, str]:
        """Every secret text -> what it is."""
        found = {text: f"key {name}" for name, key in self.keys.items() for text in _key_texts(key)}
        found |= {text: f"token {name}" for name, token in self.tokens.items() for text in _token_texts(token)}
        found |= {word: f"secret {name}" for name, word in self.words.items()}
        return found


@dataclass
class Transcript:
    """Every response of the session, with what was asked."""

    responses: list[tuple[str, httpx.Response]] = field(default_factory=list)

    def __call__(self, label: str, response: httpx.Response, status: int) -> httpx.Response:
        self.responses.append((label, response))
        assert response.status_code == status, (label, response.status_code, response.text[:500])
        return response


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file below `root` (but the database, its journals and lock files, the serve logs, and the metrics'
    counters, which every request changes) with size and modification time."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.parent.name.startswith("pocketca-metrics-"):
            continue
        if path.is_file() and not DB_FILES.search(path.name) and not path.name.startswith("serve-"):
            info = path.stat()
            files[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return files


def _write_pair(directory: Path, name: str, key: PrivateKey, certificate_pem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_text(certificate_pem)
    key_path.write_bytes(key_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path


# --- the session ---------------------------------------------------------------------------------------------


def _first_run(server: LiveServer, tmp_path: Path, held: Secrets, say: Transcript) -> dict[str, tuple[Path, Path]]:
    admin = server.admin_token
    held.tokens["admin"] = admin
    clients = tmp_path / "clients"
    pairs: dict[str, tuple[Path, Path]] = {}
    with server.client() as http:
        say("healthz", http.get("/healthz"), 200)
        say("ca", http.get("/ca"), 200)

        # enrolment with the admin token
        held.keys["alice"] = p256()
        alice = say(
            "csr admin",
            http.post("/csr", json={"csr": csr_pem(held.keys["alice"], "alice").decode()}, headers=_bearer(admin)),
            201,
        ).json()
        pairs["alice"] = _write_pair(clients, "alice", held.keys["alice"], alice["certificate"])

        # a one-use enrollment token: made, spent, then refused
        made = say(
            "tokens enroll",
            http.post("/tokens", json={"cn": "bob", "sans": ["bob.internal"]}, headers=_bearer(admin)),
            201,
        )
        held.tokens["enrollment"] = made.json()["token"]
        held.keys["bob"] = p256()
        bob = say(
            "csr enrollment",
            http.post(
                "/csr",
                json={"csr": csr_pem(held.keys["bob"], "bob", ["bob.internal"]).decode()},
                headers=_bearer(held.tokens["enrollment"]),
            ),
            201,
        ).json()
        pairs["bob"] = _write_pair(clients, "bob", held.keys["bob"], bob["certificate"])
        held.keys["bob-again"] = p256()
        say(
            "csr used-up token",
            http.post(
                "/csr",
                json={"csr": csr_pem(held.keys["bob-again"], "bob", ["bob.internal"]).decode()},
                headers=_bearer(held.tokens["enrollment"]),
            ),
            401,
        )

        # wrong tokens: a wrong secret for a real id, an unknown id, not a pocketca token at all
        enrollment_id = made.json()["id"]
        held.tokens["wrong secret"] = f"pca_{enrollment_id}_{secrets.token_urlsafe(32)}"
        held.tokens["unknown id"] = f"pca_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
        held.tokens["garbage"] = f"hunter2-{secrets.token_urlsafe(24)}"
        for what in ("wrong secret", "unknown id", "garbage"):
            say(
                f"csr {what}",
                http.post(
                    "/csr", json={"csr": csr_pem(p256(), "mallory").decode()}, headers=_bearer(held.tokens[what])
                ),
                401,
            )
            say(f"certs {what}", http.get("/certs", headers=_bearer(held.tokens[what])), 401)

        # scoped tokens: a revoke token with two uses, a read token that may not list tokens
        held.tokens["revoke"] = say(
            "tokens revoke", http.post("/tokens", json={"scope": "revoke", "uses": 2}, headers=_bearer(admin)), 201
        ).json()["token"]
        held.tokens["read"] = say(
            "tokens read", http.post("/tokens", json={"scope": "read"}, headers=_bearer(admin)), 201
        ).json()["token"]
        say("tokens list as read", http.get("/tokens", headers=_bearer(held.tokens["read"])), 403)

        # PKCS#12: one made (no file may appear anywhere the server writes), two refused
        held.words["p12 password"] = f"p12-{secrets.token_urlsafe(18)}"
        held.words["short password"] = secrets.token_urlsafe(8)[:7]
        held.words["stray password"] = f"stray-{secrets.token_urlsafe(18)}"
        before = _listing(tmp_path)
        bundle = say(
            "pkcs12",
            http.post(
                "/pkcs12",
                json={"cn": "carol", "sans": ["carol@example.com"], "password": held.words["p12 password"]},
                headers=_bearer(admin),
            ),
            201,
        )
        say(
            "pkcs12 short password",
            http.post(
                "/pkcs12", json={"cn": "carol", "password": held.words["short password"]}, headers=_bearer(admin)
            ),
            422,
        )
        say(
            "pkcs12 unknown field",
            http.post(
                "/pkcs12",
                json={
                    "cn": "carol",
                    "password": held.words["p12 password"],
                    "passphrase": held.words["stray password"],
                },
                headers=_bearer(admin),
            ),
            422,
        )
        say(
            "pkcs12 wrong token",
            http.post(
                "/pkcs12",
                json={"cn": "carol", "password": held.words["p12 password"]},
                headers=_bearer(held.tokens["wrong secret"]),
            ),
            401,
        )
        broken = f'{{"cn": "carol", "password": "{held.words["p12 password"]}", '  # JSON cut short
        say(
            "pkcs12 broken json",
            http.post("/pkcs12", content=broken, headers={**_bearer(admin), "Content-Type": "application/json"}),
            422,
        )
        after = _listing(tmp_path)
        assert after == before, sorted(set(after.items()) ^ set(before.items()))
        assert bundle.headers["cache-control"] == "no-store"
        p12_key, p12_cert, _ = pkcs12.load_key_and_certificates(bundle.content, held.words["p12 password"].encode())
        assert isinstance(p12_key, ec.EllipticCurvePrivateKey) and p12_cert is not None
        held.keys["carol (pkcs12)"] = p12_key

        # a private key sent by mistake where a CSR belongs: refused without echoing it
        held.keys["mistake"] = p256()
        mistake = key_pem(held.keys["mistake"])
        say("csr is a key (json)", http.post("/csr", json={"csr": mistake.decode()}, headers=_bearer(admin)), 400)
        say(
            "csr is a key (pkcs10)",
            http.post("/csr", content=mistake, headers={**_bearer(admin), "Content-Type": "application/pkcs10"}),
            400,
        )

        say("tokens list", http.get("/tokens", headers=_bearer(admin)), 200)
        say("audit", http.get("/audit", params={"limit": 1000}, headers=_bearer(admin)), 200)
        say("certs", http.get("/certs", params={"limit": 1000}, headers=_bearer(admin)), 200)
        say("cert", http.get(f"/certs/{alice['serial']}", headers=_bearer(held.tokens["read"])), 200)

    # renewal over mTLS, revocation by token and by the holder
    held.keys["alice renewed"] = p256()
    with server.client(*pairs["alice"]) as http:
        say("whoami alice", http.get("/whoami"), 200)
        renewed = say(
            "renew", http.post("/csr", json={"csr": csr_pem(held.keys["alice renewed"], "alice").decode()}), 201
        )
    pairs["alice renewed"] = _write_pair(
        clients, "alice-renewed", held.keys["alice renewed"], renewed.json()["certificate"]
    )
    with server.client() as http:
        serial = renewed.json()["serial"]
        say(
            "revoke by token",
            http.post(f"/certs/{serial}/revoke", json={}, headers=_bearer(held.tokens["revoke"])),
            200,
        )
        say("revoke again", http.post(f"/certs/{serial}/revoke", json={}, headers=_bearer(held.tokens["revoke"])), 409)
    with server.client(*pairs["bob"]) as http:
        say("revoke by holder", http.post(f"/certs/{bob['serial']}/revoke", json={"reason": "keyCompromise"}), 200)
        say("whoami revoked", http.get("/whoami"), 403)
    return pairs


def _second_run(server: LiveServer, pairs: dict[str, tuple[Path, Path]], held: Secrets, say: Transcript) -> None:
    admin = held.tokens["admin"]
    with server.client() as http:
        say("healthz again", http.get("/healthz"), 200)
        held.keys["dave"] = p256()
        dave = say(
            "csr after restart",
            http.post("/csr", json={"csr": csr_pem(held.keys["dave"], "dave").decode()}, headers=_bearer(admin)),
            201,
        )
        say(
            "revoke after restart",
            http.post(f"/certs/{dave.json()['serial']}/revoke", json={}, headers=_bearer(admin)),
            200,
        )
    with server.client(*pairs["alice"]) as http:
        say("whoami after restart", http.get("/whoami"), 200)


def _serve_with_wrong_passphrase(data: Path, passphrase_file: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    env |= {
        "POCKETCA_DATA_DIR": str(data),
        "POCKETCA_PORT": str(free_port()),
        "POCKETCA_HTTP_PORT": "0",
        "POCKETCA_CA_KEY_PASSPHRASE_FILE": str(passphrase_file),
    }
    if url := database_url_for(data):
        env["POCKETCA_DATABASE_URL"] = url
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve"], env=env, cwd=data.parent, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0, result
    output = result.stdout + result.stderr
    assert "passphrase" in output.lower(), output
    return output


def test_a_full_session_leaves_no_secret_in_logs_responses_or_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    vault = tmp_path / "vault"  # outside the data dir, as it would be in production
    vault.mkdir(mode=0o700)
    server_tmp = tmp_path / "server-tmp"  # the server's TMPDIR: nothing may land there either
    server_tmp.mkdir()
    held, say = Secrets(), Transcript()
    held.words["ca passphrase"] = f"ca-{secrets.token_urlsafe(24)}"
    held.words["wrong ca passphrase"] = f"ca-{secrets.token_urlsafe(24)}"
    passphrase_file = vault / "ca-passphrase"
    passphrase_file.write_text(held.words["ca passphrase"] + "\n")
    passphrase_file.chmod(0o600)
    wrong_file = vault / "wrong-passphrase"
    wrong_file.write_text(held.words["wrong ca passphrase"] + "\n")
    env = {"POCKETCA_CA_KEY_PASSPHRASE_FILE": str(passphrase_file), "TMPDIR": str(server_tmp)}

    logs: list[str] = []
    server = start_server(data, workers=1, extra_env=env)
    try:
        pairs = _first_run(server, tmp_path, held, say)
    finally:
        server.stop()
        logs.append(server.log())
    server = start_server(data, workers=1, extra_env=env)
    try:
        _second_run(server, pairs, held, say)
        # the metrics' counter files (in the server's TMPDIR while it runs): label values, never a secret
        metric_files = [p.read_bytes() for p in server_tmp.rglob("*") if p.is_file()]
    finally:
        server.stop()
        logs.append(server.log())
    assert metric_files, "the service wrote no metrics: the search below would be vacuous"
    for text in held.texts():
        assert not any(text.encode() in content for content in metric_files), "a secret is in a metrics file"
    logs.append(_serve_with_wrong_passphrase(data, wrong_file))

    # the CA key: 0600, encrypted with the passphrase; the other private files 0600 too
    ca_key = data / "ca.key"
    assert stat.S_IMODE(ca_key.stat().st_mode) == 0o600
    assert ca_key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        load_pem_private_key(ca_key.read_bytes(), password=None)
    ca_private = load_pem_private_key(ca_key.read_bytes(), password=held.words["ca passphrase"].encode())
    ca_certificate = x509.load_pem_x509_certificate((data / "ca.pem").read_bytes())
    assert ca_private.public_key() == ca_certificate.public_key()
    server_private = load_pem_private_key((data / "server.key").read_bytes(), password=None)
    assert isinstance(ca_private, ec.EllipticCurvePrivateKey) and isinstance(server_private, ec.EllipticCurvePrivateKey)
    held.keys["CA"], held.keys["server"] = ca_private, server_private
    for name in ("ca.key", "server.key", "admin.token"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name

    forbidden = held.texts()
    admin = held.tokens["admin"]

    # the logs: the admin token only where the first start prints it once, nothing else secret at all
    log = "\n".join(logs)
    assert log.count(admin) == 1, log.count(admin)
    lines = log.splitlines()
    printed_at = next(i for i, line in enumerate(lines) if admin in line)
    assert lines[printed_at] == admin and lines[printed_at - 1].startswith("Admin token (shown once"), lines[
        printed_at - 1
    ]
    rest = "\n".join(lines[:printed_at] + lines[printed_at + 1 :])
    assert "PRIVATE KEY" not in log
    leaked = sorted({what for text, what in forbidden.items() if text in rest})
    assert not leaked, f"in the server log: {leaked}"

    # every response: nothing secret, except a new token once in the answer that creates it
    made = {
        label: response.json()["token"]
        for label, response in say.responses
        if label.startswith("tokens ") and response.status_code == 201
    }
    for label, response in say.responses:
        text = response.content.decode("latin-1") + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        own = made.get(label)
        if own is not None:
            assert text.count(own) == 1, label
            text = text.replace(own, "")
        assert "PRIVATE KEY" not in text, label
        leaked = sorted({what for secret_text, what in forbidden.items() if secret_text in text})
        assert not leaked, f"in the response to {label}: {leaked}"

    # tokens are stored as SHA-256 of their secret, and nothing else of them
    rows = query(data, "SELECT * FROM tokens")
    hashes = {str(row[0]): str(row[1]) for row in query(data, "SELECT id, secret_hash FROM tokens")}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values()), hashes
    for name in ("admin", "enrollment", "revoke", "read"):
        token_id, _, secret = held.tokens[name].removeprefix("pca_").partition("_")
        assert hashes[token_id] == hash_secret(secret), name
    assert not any(text in repr(row) for row in rows for text in forbidden), "a token secret is in the tokens table"

    # no file the service keeps holds a secret it should not (the database pages included)
    checked = 0
    for path in sorted(data.rglob("*")):
        if not path.is_file():
            continue
        content = path.read_bytes()
        allowed = {"admin.token": {"token admin"}, "server.key": {"key server"}}.get(path.name, set())
        for name, key in held.keys.items():
            if f"key {name}" not in allowed:
                assert not any(chunk in content for chunk in _key_bytes(key)), (path.name, name)
        for text, what in forbidden.items():
            if what not in allowed and not what.startswith("key "):
                assert text.encode() not in content, (path.name, what)
        checked += 1
    assert list(server_tmp.iterdir()) == []
    print(
        f"\nsecrets: {len(say.responses)} responses, {len(log.splitlines())} log lines, {checked} files searched "
        f"for {len(forbidden)} secret strings ({len(held.keys)} keys, {len(held.tokens)} tokens, "
        f"{len(held.words)} passwords and passphrases)"
    )
