"""The PKCS#12 the service makes for the no-JavaScript path (service/ca/pkcs12.py), modern and legacy, opened by the
readers people have: `openssl pkcs12` (OpenSSL 3) and NSS's `pk12util` into a fresh database, where `certutil` lists
the identity with its key. A password that is not ASCII too: PBKDF2 takes UTF-8, the MAC's KDF a BMPString."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from service.ca.issue import build_ca_certificate, build_leaf_builder, random_serial_number
from service.ca.keys import generate_private_key, parse_key_type
from service.ca.names import build_subject, parse_general_name
from service.ca.pkcs12 import build_pkcs12
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES
from tests.helpers import now, p256

PASSWORD = "Grüße aus Köln 2026"

pytestmark = pytest.mark.skipif(
    not (shutil.which("pk12util") and shutil.which("certutil")), reason="needs libnss3-tools (.ci/run installs it)"
)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("key_type", ["p256", "rsa2048"])
@pytest.mark.parametrize(
    ("legacy", "algorithms"),
    [
        (False, ["MAC: sha256, Iteration 2048",
                 "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256",
                 "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"]),
        (True, ["MAC: sha1, Iteration 2048",
                "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 20000",
                "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 20000"]),
    ],
    ids=["modern", "legacy"],
)
def test_openssl_and_nss_open_the_service_made_bundle(
    tmp_path: Path, key_type: str, legacy: bool, algorithms: list[str]
) -> None:
    ca_key = p256()
    ca = build_ca_certificate(ca_key, "pocketca root CA", now=now(), lifetime=dt.timedelta(days=2))
    key = generate_private_key(parse_key_type(key_type))
    spec = LeafSpec(build_subject("Alice Example"), "Alice Example", (parse_general_name("alice@example.com"),),
                    BUILTIN_PROFILES["client"], 30)
    leaf = build_leaf_builder(spec, key.public_key(), ca, serial_number=random_serial_number(), now=now(),
                              public_url="http://localhost").sign(ca_key, hashes.SHA256())
    bundle = tmp_path / "alice.p12"
    bundle.write_bytes(build_pkcs12(key, leaf, [ca], PASSWORD.encode(), friendly_name="Alice Example", legacy=legacy))

    info = run(["openssl", "pkcs12", "-info", "-noout", "-in", str(bundle), "-passin", f"pass:{PASSWORD}"])
    assert info.returncode == 0, info.stderr  # OpenSSL 3.0 reads 3DES without -legacy (only RC2-40 needs it)
    for line in algorithms:
        assert line in info.stderr, info.stderr
    assert info.stderr.count("Certificate bag") == 2
    with_legacy = run(["openssl", "pkcs12", "-legacy", "-info", "-noout", "-in", str(bundle),
                       "-passin", f"pass:{PASSWORD}"])
    assert with_legacy.returncode == 0, with_legacy.stderr
    wrong = run(["openssl", "pkcs12", "-info", "-noout", "-in", str(bundle), "-passin", "pass:Grusse aus Koln 2026"])
    assert wrong.returncode != 0 and "mac verify error" in wrong.stderr.lower()

    nssdb = f"sql:{tmp_path / 'nssdb'}"
    (tmp_path / "nssdb").mkdir()
    assert run(["certutil", "-N", "-d", nssdb, "--empty-password"]).returncode == 0
    imported = run(["pk12util", "-d", nssdb, "-i", str(bundle), "-W", PASSWORD])
    assert imported.returncode == 0 and "PKCS12 IMPORT SUCCESSFUL" in imported.stdout, imported.stderr
    listed = run(["certutil", "-L", "-d", nssdb]).stdout
    assert re.search(r"^Alice Example\s+u,u,u$", listed, re.MULTILINE), listed
    keys = run(["certutil", "-K", "-d", nssdb]).stdout
    kind = "ec" if key_type == "p256" else "rsa"
    assert re.search(rf"<\s*0>\s+{kind}\s+[0-9a-f]{{40}}\s+Alice Example$", keys, re.MULTILINE), keys
