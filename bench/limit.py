"""Row 4: the limit, what one core signs (`openssl speed`) and cryptography's own cost to issue a leaf."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import run


def openssl_speed(seconds: int) -> dict[str, float]:
    cmd = ["openssl", "speed", "-seconds", str(seconds), "ecdsap256", "rsa2048"]
    result = run(cmd, timeout=seconds * 8 + 60, kind="openssl speed")
    out = result.stdout
    rsa = re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)", out)
    ec = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)", out)
    if not (rsa and ec):
        raise RuntimeError(f"openssl speed: {out}{result.stderr}")
    return {"rsa2048": float(rsa.group(1)), "p256": float(ec.group(1))}


def cryptography_costs(data_dir: Path, csr_pems: list[str], seconds: float) -> dict[str, float]:
    """CPU ms per raw signature and per leaf issued from a CSR, with this CA's key, in this process."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

    key = serialization.load_pem_private_key((data_dir / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((data_dir / "ca.pem").read_bytes())
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    base = "https://localhost:8443"
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    digest = b"\x01" * 32

    def sign_raw() -> None:
        if is_rsa:
            key.sign(digest, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg,union-attr]
        else:
            key.sign(digest, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]

    counter = iter(range(10**9))

    def issue_leaf() -> None:
        pem = csr_pems[next(counter) % len(csr_pems)]
        csr = x509.load_pem_x509_csr(pem.encode())
        if not csr.is_signature_valid:
            raise ValueError("bad CSR")
        public_key = csr.public_key()
        now = dt.datetime.now(dt.UTC)
        cn = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        builder = x509.CertificateBuilder(
            issuer_name=ca.subject,
            subject_name=csr.subject,
            public_key=public_key,
            serial_number=secrets.randbits(159) | 1,
            not_valid_before=now - dt.timedelta(minutes=5),
            not_valid_after=now + dt.timedelta(days=90),
        )
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
            .add_extension(aki, critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(str(cn))]), critical=False)
            .add_extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([x509.UniformResourceIdentifier(f"{base}/crl")], None, None, None)]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{base}/ocsp")
                        ),
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(f"{base}/ca.crt")
                        ),
                    ]
                ),
                critical=False,
            )
        )
        cert = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
        cert.public_bytes(serialization.Encoding.PEM)

    def cpu_ms(fn: Callable[[], None]) -> float:
        for _ in range(20):
            fn()
        n, start, deadline = 0, time.process_time(), time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            for _ in range(10):
                fn()
            n += 10
        return (time.process_time() - start) * 1000 / n

    return {"sign_ms": cpu_ms(sign_raw), "leaf_ms": cpu_ms(issue_leaf)}
