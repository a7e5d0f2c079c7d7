"""The pure CPU cost of a CMP enrolment beside a CSR's, without HTTP, TLS or a database: for issue 26's target
(CMP server CPU per certificate within 2x of POST /csr's).

    .venv/bin/python -m bench.cmp_pure [-n 300]

The requests are `openssl cmp`'s own (written with -reqout), MAC-protected with PasswordBasedMac as openssl 3.0
sends it (500 iterations of SHA-256, HMAC-SHA1). Per certificate, process CPU:
- csr: load_csr + read_request + decide + sign_leaf (what POST /csr does between its HTTP and its database);
- cmp ir: load_pki_message + verify_mac_protection + read_certification_request + decide + sign_leaf +
  certification_response + build_response (signed by a P-256 or an RSA-2048 RA certificate);
- cmp certConf: load_pki_message + verify_mac_protection + check_confirmation + build_response(pkiConf): the second
  round trip of an enrolment without implicit confirmation;
and each step of the ir alone. The machine is shared: compare figures from one run, and run it twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ObjectIdentifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.ca.cmp_asn1 import CERT_CONFIRM_CONTENT, encode
from service.ca.cmp_confirm import PendingConfirmation, check_confirmation
from service.ca.cmp_message import BODY_TYPES, assemble, build_header, load_pki_message, protected_part
from service.ca.cmp_protection import compute_mac, load_mac_algorithm, mac_algorithm_identifier
from service.ca.cmp_request import read_certification_request
from service.ca.cmp_response import MacWith, SignedBy, build_response, certification_response, confirmation
from service.ca.cmp_verify import verify_mac_protection
from service.ca.csr import CertificateRequest, build_csr, load_csr, read_request
from service.ca.issue import build_ca_certificate, build_leaf_builder, random_serial_number
from service.ca.keys import PrivateKey
from service.ca.leaf import sign_leaf
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec, decide
from service.ca.profiles import BUILTIN_PROFILES, Profile
from service.keys.file_key import FileKeyStore

SECRET = b"bench secret"
PROFILE = BUILTIN_PROFILES["client"]
PEM = serialization.Encoding.PEM


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def cpu_per_call(n: int, one: Callable[[int], object], rounds: int = 3) -> float:
    """Median over `rounds` of the process CPU per call, in µs."""
    figures = []
    for _ in range(rounds):
        start = time.process_time()
        for i in range(n):
            one(i)
        figures.append((time.process_time() - start) / n * 1e6)
    return statistics.median(figures)


def openssl_irs(count: int, directory: Path) -> list[bytes]:
    """`count` ir messages from openssl cmp (-reqout; the server hangs up, so nothing else happens)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        while True:
            connection, _ = listener.accept()
            connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    openssl = shutil.which("openssl") or "openssl"
    messages = []
    for i in range(count):
        key = directory / f"k{i}.pem"
        key.write_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out = directory / f"ir{i}.der"
        subprocess.run(
            [openssl, "cmp", "-server", f"127.0.0.1:{port}", "-cmd", "ir", "-ref", "bench", "-secret",
             f"pass:{SECRET.decode()}", "-subject", f"/CN=bench-{i}", "-newkey", str(key), "-certout",
             str(directory / "c.pem"), "-reqout", str(out)],
            capture_output=True, check=False, timeout=30,
        )  # fmt: skip
        messages.append(out.read_bytes())
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=300, help="calls per figure (each figure: median of 3 rounds)")
    n = parser.parse_args().n
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build_ca_certificate(ca_key, "bench CA", now=now(), lifetime=dt.timedelta(days=30))
    signer = FileKeyStore(ca_key)
    ras: dict[str, SignedBy] = {}
    for kind in ("p256", "rsa2048"):
        key: PrivateKey = (
            ec.generate_private_key(ec.SECP256R1()) if kind == "p256" else rsa.generate_private_key(65537, 2048)
        )
        spec = LeafSpec(
            build_subject("ra"),
            "ra",
            (parse_general_name("ra.test"),),
            Profile("ra", (ObjectIdentifier("1.3.6.1.5.5.7.3.28"),)),
            30,
        )
        builder = build_leaf_builder(
            spec, key.public_key(), ca, serial_number=random_serial_number(), now=now(), public_url="http://b"
        )
        ras[kind] = SignedBy(key, builder.sign(ca_key, hashes.SHA256()))
    csrs = [build_csr(ec.generate_private_key(ec.SECP256R1()), f"bench-{i}", []).public_bytes(PEM) for i in range(20)]
    with tempfile.TemporaryDirectory() as scratch:
        irs = openssl_irs(20, Path(scratch))

    def issue(request: CertificateRequest) -> tuple[x509.Certificate, bytes]:
        spec = decide(request, PROFILE, None)
        return sign_leaf(signer, spec, request.public_key, ca, ca_key.public_key(),
                         serial_number=random_serial_number(), now=now(), public_url="http://b")  # fmt: skip

    def csr(i: int) -> None:
        issue(read_request(load_csr(csrs[i % len(csrs)])))

    def cmp_ir(kind: str, implicit: bool) -> Callable[[int], object]:
        def one(i: int) -> object:
            message = load_pki_message(irs[i % len(irs)])
            verify_mac_protection(message, SECRET)
            asked = read_certification_request(message)
            certificate, _ = issue(asked.request)
            body = certification_response(message, asked.cert_req_id, certificate)
            assert message.mac_algorithm is not None
            protection = ras[kind] if kind in ras else MacWith(SECRET, message.mac_algorithm, ca.subject, b"bench")
            return build_response(message.header, body, protection, now=now(), implicit_confirm=implicit)

        return one

    # a certConf as openssl would send it for one of the answers
    message = load_pki_message(irs[0])
    asked = read_certification_request(message)
    certificate, der = issue(asked.request)
    answer = build_response(message.header, certification_response(message, 0, certificate), ras["p256"], now=now())
    content = CERT_CONFIRM_CONTENT.clone()
    status = content.componentType.clone()
    status["certHash"] = hashlib.sha256(der).digest()
    status["certReqId"] = 0
    content.append(status)
    assert message.protection_algorithm is not None
    algorithm = load_mac_algorithm(message.protection_algorithm)
    header = build_header(pvno=2, sender=message.header.sender, recipient=message.header.recipient, now=now(),
                          protection_algorithm=mac_algorithm_identifier(algorithm), sender_kid=b"bench",
                          transaction_id=message.header.transaction_id, sender_nonce=b"c" * 16,
                          recip_nonce=answer.sender_nonce)  # fmt: skip
    tag = BODY_TYPES.index("certConf")
    body = encode(content)
    cert_conf = assemble(header, tag, body, compute_mac(algorithm, SECRET, protected_part(header, tag, body)), [])
    pending = PendingConfirmation(message.header.transaction_id, answer.sender_nonce, 0, der)

    def confirm(_: int) -> object:
        conf = load_pki_message(cert_conf)
        verify_mac_protection(conf, SECRET)
        check_confirmation(conf, pending)
        return build_response(conf.header, confirmation(), ras["p256"], now=now())

    results = {"csr: parse, policy, sign (POST /csr's pure part)": cpu_per_call(n, csr)}
    for kind in ("p256", "rsa2048", "mac"):
        label = "answer MAC-protected (same secret)" if kind == "mac" else f"answer signed by an RA {kind}"
        results[f"cmp ir, implicit confirm, {label}"] = cpu_per_call(n, cmp_ir(kind, True))
    results["cmp certConf + pkiConf, RA p256"] = cpu_per_call(n, confirm)
    parsed = load_pki_message(irs[0])
    steps: dict[str, Callable[[int], object]] = {
        "  ir step: load_pki_message": lambda i: load_pki_message(irs[i % len(irs)]),
        "  ir step: verify_mac_protection (PBM, 500 x SHA-256)": lambda _: verify_mac_protection(parsed, SECRET),
        "  ir step: read_certification_request (CRMF, POP)": lambda _: read_certification_request(parsed),
        "  ir step: decide + sign_leaf": lambda _: issue(asked.request),
        "  ir step: certification_response (ip body)": lambda _: certification_response(parsed, 0, certificate),
        "  ir step: build_response, RA p256": lambda _: build_response(
            parsed.header, confirmation(), ras["p256"], now=now()
        ),
        "  ir step: build_response, RA rsa2048": lambda _: build_response(
            parsed.header, confirmation(), ras["rsa2048"], now=now()
        ),
    }
    for label, one in steps.items():
        results[label] = cpu_per_call(n, one)
    base = results["csr: parse, policy, sign (POST /csr's pure part)"]
    width = max(len(label) for label in results)
    print(f"{'':{width}}  CPU µs   ÷ csr")
    for label, value in results.items():
        print(f"{label:{width}}  {value:7.0f}  {value / base:5.2f}")
    p256_total = (
        results["cmp ir, implicit confirm, answer signed by an RA p256"] + results["cmp certConf + pkiConf, RA p256"]
    )
    print(f"{'cmp ir + certConf (no implicit confirm), RA p256':{width}}  {p256_total:7.0f}  {p256_total / base:5.2f}")


if __name__ == "__main__":
    main()
