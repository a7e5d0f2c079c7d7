"""Issuance with the CA key in SoftHSM2 (PKCS#11) against the same key type in a file, and where the time goes.

    .venv/bin/python -m bench.hsm            # 2000 signatures each (~10 s)
    .venv/bin/python -m bench.hsm -n 500

A throwaway SoftHSM2 token in a temp dir (SOFTHSM2_CONF), a P-256 CA key made in it, and a P-256 key in memory
(what FileKeyStore holds). Both sign the same leaf (service.ca.issue.build_leaf_builder, profile "client"), one
at a time in one thread, as the service's issuance path does. For the token the parts are timed too: the stand-in
encode + sign (cryptography, software), the token's C_Sign over the TBS (through python-pkcs11), the software
verify of the token's signature, and splicing + parsing the result. Markdown to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from service.ca import der
from service.ca.issue import build_leaf_builder, build_root_builder, random_serial_number
from service.ca.names import build_subject
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES
from service.keys.file_key import FileKeyStore
from service.keys.pkcs11_key import Pkcs11KeyStore, _stand_in
from service.keys.pkcs11_uri import parse_pkcs11_uri

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def _time(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e6)
    return out


def _row(name: str, samples: list[float]) -> str:
    median = statistics.median(samples)
    p99 = sorted(samples)[int(len(samples) * 0.99) - 1]
    return f"| {name} | {median:.0f} | {p99:.0f} | {1e6 / median:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "tokens").mkdir()
        (root / "softhsm2.conf").write_text(f"directories.tokendir = {root / 'tokens'}\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(root / "softhsm2.conf")
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "123456"],
            check=True, capture_output=True,
        )  # fmt: skip
        (root / "pin").write_text("1234\n")
        uri = parse_pkcs11_uri(f"pkcs11:token=bench;object=ca?module-path={MODULE}&pin-source=file:{root / 'pin'}")
        token = Pkcs11KeyStore(uri, create="p256")
        file = FileKeyStore(ec.generate_private_key(ec.SECP256R1()))
        now = dt.datetime.now(dt.UTC)
        issuers = {}
        for name, store in (("token", token), ("file", file)):
            builder = build_root_builder(store.public_key(), f"bench {name}", now=now, lifetime=dt.timedelta(days=9))
            issuers[name] = store.sign_certificate(builder)
        leaf_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        spec = LeafSpec(
            subject=build_subject("alice"),
            common_name="alice",
            sans=(x509.DNSName("alice.example"),),
            profile=BUILTIN_PROFILES["client"],
            validity_days=30,
        )

        def builder_for(name: str) -> x509.CertificateBuilder:
            return build_leaf_builder(
                spec, leaf_key, issuers[name], serial_number=random_serial_number(), now=now,
                public_url="https://ca.example", issuer_id="0123456789abcdef",
            )  # fmt: skip

        build = builder_for("token")
        draft = build.sign(_stand_in("p256"), hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        tbs = der.tbs_of(draft)
        signature = token._sign(tbs)

        def token_sign_only() -> None:
            digest = hashes.Hash(hashes.SHA256())
            digest.update(tbs)
            token._private.sign(digest.finalize(), mechanism=__import__("pkcs11").Mechanism.ECDSA)

        rows = [
            _row(
                "file key: build + sign (FileKeyStore.sign_certificate)",
                _time(lambda: file.sign_certificate(builder_for("file")), n),
            ),
            _row(
                "token: build + sign (Pkcs11KeyStore.sign_certificate)",
                _time(lambda: token.sign_certificate(builder_for("token")), n),
            ),
            _row("  part: build the leaf builder", _time(lambda: builder_for("token"), n)),
            _row(
                "  part: stand-in encode + sign (cryptography)",
                _time(lambda: build.sign(_stand_in("p256"), hashes.SHA256()), n),
            ),
            _row("  part: the store's _sign (hash, C_Sign, DER, verify)", _time(lambda: token._sign(tbs), n)),
            _row("    of which C_Sign over the digest (python-pkcs11 + SoftHSM2)", _time(token_sign_only, n)),
            _row("    of which the verify of the token's signature (software)", _time(
                lambda: token.public_key().verify(signature, tbs, ec.ECDSA(hashes.SHA256())), n)),  # type: ignore[call-arg,union-attr]
            _row("  part: splice + parse the certificate", _time(
                lambda: x509.load_der_x509_certificate(der.with_signature(draft, signature)), n)),
        ]  # fmt: skip
        token.close()
    print(f"CA key P-256, leaf P-256, one thread, {n} signatures each (µs)\n")
    print("| what | median µs | p99 µs | per second |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
