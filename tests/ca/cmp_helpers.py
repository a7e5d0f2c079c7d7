"""The CMP tests' tools: a throwaway CA made with service.ca (P-256 root, CMP/RA certificates, devices), a small
client that writes requests (as `openssl cmp` would, or wrongly on purpose), a reader for answers, and
`openssl cmp` run offline to get the real client's requests (-reqout, with nothing listening at -server)."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from pyasn1.type import univ
from pyasn1_modules import rfc3280

from service.ca import cmp_asn1 as asn1
from service.ca.cmp_der import AlgorithmId, bit_string, split
from service.ca.cmp_message import BODY_TYPES, assemble, build_header, fresh_nonce, protected_part
from service.ca.cmp_names import NULL_DN, directory_name
from service.ca.cmp_protection import (
    MacAlgorithm,
    PasswordBasedMac,
    Pbmac1,
    compute_mac,
    mac_algorithm_identifier,
    sign,
    signature_algorithm,
)
from service.ca.der import tlv
from service.ca.issue import build_ca_certificate, build_leaf_builder, random_serial_number
from service.ca.keys import PrivateKey
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES, Profile
from tests.helpers import now, p256

CMC_RA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.28")  # id-kp-cmcRA
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
PBM = PasswordBasedMac(b"s" * 16, hashes.SHA256(), 500, hashes.SHA1(), "2.16.840.1.101.3.4.2.1", "1.3.6.1.5.5.8.1.2")
PBMAC1 = Pbmac1(b"t" * 16, 1000, 32, hashes.SHA256(), hashes.SHA256(), "1.2.840.113549.2.9", "1.2.840.113549.2.9")


@dataclass
class ThrowawayCA:
    """A P-256 root (pocketca's default key) that issues devices and CMP/RA certificates."""

    name: str = "CMP Test Root"
    key: ec.EllipticCurvePrivateKey = field(default_factory=p256)

    def __post_init__(self) -> None:
        self.certificate = build_ca_certificate(self.key, self.name, now=now(), lifetime=dt.timedelta(days=30))

    def issue(
        self,
        cn: str,
        key: PrivateKey | None = None,
        *,
        profile: Profile = BUILTIN_PROFILES["client"],
        not_before: dt.datetime | None = None,
        days: int = 30,
        public_key: CertificatePublicKeyTypes | None = None,
    ) -> tuple[PrivateKey, x509.Certificate]:
        """A leaf for `key` (a new P-256 key when None), or for `public_key` alone."""
        key = key or p256()
        spec = LeafSpec(build_subject(cn), cn, (parse_general_name(cn),), profile, days)
        builder = build_leaf_builder(
            spec,
            public_key or key.public_key(),
            self.certificate,
            serial_number=random_serial_number(),
            now=not_before or now(),
            public_url="http://ca.test",
        )
        return key, builder.sign(self.key, hashes.SHA256())

    def ra(self, kind: str = "ec") -> tuple[PrivateKey, x509.Certificate]:
        """A CMP/RA certificate: keyUsage digitalSignature (as every leaf), EKU id-kp-cmcRA."""
        key: PrivateKey = rsa.generate_private_key(65537, 2048) if kind == "rsa" else p256()
        return self.issue("cmp-ra.test", key, profile=Profile("cmp-ra", (CMC_RA,)))


@functools.cache
def cmp_ca() -> ThrowawayCA:
    return ThrowawayCA()


@functools.cache
def foreign_ca() -> ThrowawayCA:
    return ThrowawayCA("Foreign Root")


@functools.cache
def ra(kind: str = "ec") -> tuple[PrivateKey, x509.Certificate]:
    return cmp_ca().ra(kind)


@functools.cache
def device() -> tuple[PrivateKey, x509.Certificate]:
    return cmp_ca().issue("device.test")


# --- writing requests --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mac:
    secret: bytes
    reference: bytes = b"ref-1"
    algorithm: MacAlgorithm = PBM


@dataclass(frozen=True)
class Signature:
    key: PrivateKey
    certificate: x509.Certificate
    extra: tuple[x509.Certificate, ...] = ()


def request(
    body_type: str,
    content: bytes,
    protection: Mac | Signature | None,
    *,
    sender: x509.Name | None = None,
    transaction_id: bytes | None = None,
    sender_nonce: bytes | None = None,
    recip_nonce: bytes | None = None,
    implicit_confirm: bool = False,
    pvno: int = 2,
    when: dt.datetime | None = None,
    protection_value: bytes | None = None,
) -> bytes:
    """A PKIMessage as a CMP client writes it; `protection=None` leaves it unprotected; `protection_value`
    replaces the MAC or signature (for parameters no honest client would compute with)."""
    if isinstance(protection, Signature):
        algorithm = signature_algorithm(protection.key)
        kid = protection.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        sender = sender if sender is not None else protection.certificate.subject
    elif isinstance(protection, Mac):
        algorithm, kid = mac_algorithm_identifier(protection.algorithm), protection.reference
    else:
        algorithm, kid = signature_algorithm(p256()), None
    header = build_header(
        pvno=pvno,
        sender=directory_name(sender) if sender is not None else NULL_DN,
        recipient=NULL_DN,
        now=when or now(),
        protection_algorithm=algorithm,
        sender_kid=kid,
        transaction_id=transaction_id or fresh_nonce(),
        sender_nonce=sender_nonce or fresh_nonce(),
        recip_nonce=recip_nonce,
        implicit_confirm=implicit_confirm,
    )
    tag = BODY_TYPES.index(body_type)
    signed = protected_part(header, tag, content)
    if isinstance(protection, Signature):
        certificates = [c.public_bytes(DER) for c in (protection.certificate, *protection.extra)]
        value = protection_value or sign(protection.key, signed)
        return assemble(header, tag, content, value, certificates)
    if isinstance(protection, Mac):
        value = protection_value or compute_mac(protection.algorithm, protection.secret, signed)
        return assemble(header, tag, content, value, [])
    return tlv(0x30, header, tlv(0xA0 | tag, content))


def _name(name: x509.Name) -> Any:
    return asn1.decode(name.public_bytes(), rfc3280.RDNSequence())


def cert_req_messages(
    key: PrivateKey,
    subject: x509.Name | None,
    *,
    sans: tuple[str, ...] = (),
    cert_req_id: int = 0,
    pop: str | None = "signature",
    pop_key: PrivateKey | None = None,
    old_certificate: x509.Certificate | None = None,
    public_key: bool = True,
    count: int = 1,
) -> bytes:
    """CertReqMessages with `count` CertReqMsgs for `key`; POP "signature" (by `pop_key`, default `key`),
    "raVerified" or None."""
    messages = asn1.CERT_REQ_MESSAGES.clone()
    for _ in range(count):
        message = messages.componentType.clone()
        cert_req = message["certReq"]
        cert_req["certReqId"] = cert_req_id
        template = cert_req["certTemplate"]
        if subject is not None:
            template["subject"]["rdnSequence"] = _name(subject)
        if public_key:
            spki = key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            decoded = asn1.decode(spki, rfc3280.SubjectPublicKeyInfo())
            for part in ("algorithm", "subjectPublicKey"):
                template["publicKey"][part] = decoded[part]
        if sans:
            general_names = x509.SubjectAlternativeName([parse_general_name(s) for s in sans])
            extension = template["extensions"].componentType.clone()
            extension["extnID"] = univ.ObjectIdentifier("2.5.29.17")
            extension["extnValue"] = general_names.public_bytes()
            template["extensions"].append(extension)
        if old_certificate is not None:
            cert_id = asn1.CERT_ID.clone()
            cert_id["issuer"]["directoryName"]["rdnSequence"] = _name(old_certificate.issuer)
            cert_id["serialNumber"] = old_certificate.serial_number
            control = asn1.ATTRIBUTE_TYPE_AND_VALUE.clone()
            control["type"] = asn1.ID_REG_CTRL_OLD_CERT_ID
            control["value"] = univ.Any(asn1.encode(cert_id))
            cert_req["controls"].append(control)
        if pop == "signature":
            signer = pop_key or key
            popo = message["popo"]["signature"]
            popo["algorithmIdentifier"] = asn1.decode(signature_algorithm(signer).der(), rfc3280.AlgorithmIdentifier())
            popo["signature"] = univ.BitString.fromOctetString(sign(signer, asn1.encode(cert_req)))
        elif pop == "raVerified":
            message["popo"]["raVerified"] = ""
        messages.append(message)
    return asn1.encode(messages)


def cert_conf(cert_hash: bytes, cert_req_id: int = 0, *, rejected: bool = False) -> bytes:
    content = asn1.CERT_CONFIRM_CONTENT.clone()
    status = content.componentType.clone()
    status["certHash"] = cert_hash
    status["certReqId"] = cert_req_id
    if rejected:
        status["statusInfo"]["status"] = 2
    content.append(status)
    return asn1.encode(content)


def revocation_request(issuer: x509.Name | None, serial: int | None, reason: int | None = None) -> bytes:
    content = asn1.REV_REQ_CONTENT.clone()
    details = content.componentType.clone()
    template = details["certDetails"]
    if serial is not None:
        template["serialNumber"] = serial
    if issuer is not None:
        template["issuer"]["rdnSequence"] = _name(issuer)
    if reason is not None:
        extension = details["crlEntryDetails"].componentType.clone()
        extension["extnID"] = univ.ObjectIdentifier("2.5.29.21")
        extension["extnValue"] = tlv(0x0A, bytes((reason,)))
        details["crlEntryDetails"].append(extension)
    content.append(details)
    return asn1.encode(content)


def general_message(*info_types: str) -> bytes:
    return tlv(0x30, *(tlv(0x30, asn1.encode(univ.ObjectIdentifier(oid))) for oid in info_types))


# --- reading answers ---------------------------------------------------------------------------------------------


@dataclass
class Answer:
    header: Any
    body_type: str
    body: Any
    protected_part: bytes
    protection: bytes
    extra_certs: list[x509.Certificate]

    @property
    def protection_algorithm(self) -> AlgorithmId:
        algorithm = self.header["protectionAlg"]
        parameters = algorithm["parameters"].asOctets() if algorithm["parameters"].isValue else None
        return AlgorithmId(str(algorithm["algorithm"]), parameters)

    @property
    def status(self) -> Any:
        """The (first) PKIStatusInfo of an ip/cp/kup, rp or error."""
        if self.body_type in ("ip", "cp", "kup"):
            return self.body["response"][0]["status"]
        if self.body_type == "rp":
            return self.body["status"][0]
        return self.body["pKIStatusInfo"]

    @property
    def fail_info(self) -> set[int]:
        bits = self.status["failInfo"]
        return {index for index, bit in enumerate(bits) if bit} if bits.isValue else set()

    def certificate(self) -> x509.Certificate:
        choice = self.body["response"][0]["certifiedKeyPair"]["certOrEncCert"]
        return x509.load_der_x509_certificate(choice["certificate"].asOctets())


_SPECS = {
    "ip": asn1.CERT_REP_MESSAGE,
    "cp": asn1.CERT_REP_MESSAGE,
    "kup": asn1.CERT_REP_MESSAGE,
    "rp": asn1.REV_REP_CONTENT,
    "error": asn1.ERROR_MSG_CONTENT,
    "genp": asn1.INFO_TYPE_AND_VALUES,
}


def read_answer(der: bytes) -> Answer:
    parts = split(der)
    header = asn1.decode(parts[0][1], asn1.PKI_HEADER)
    body_type = BODY_TYPES[parts[1][0] - 0xA0]
    content = split(parts[1][1])[0][1]
    body = asn1.decode(content, _SPECS[body_type]) if body_type in _SPECS else content
    protection = bit_string(split(parts[2][1])[0][1])
    extra = [x509.load_der_x509_certificate(c) for _, c in split(split(parts[3][1])[0][1])] if len(parts) > 3 else []
    return Answer(header, body_type, body, tlv(0x30, parts[0][1], parts[1][1]), protection, extra)


# --- the real client, offline ------------------------------------------------------------------------------------


def openssl() -> str:
    path = shutil.which("openssl")
    assert path, "openssl is part of the test environment"
    return path


@functools.cache
def _hang_up() -> int:
    """A port whose listener closes every connection at once: openssl cmp writes its -reqout, then gives up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def openssl_requests(directory: Path, count: int, *arguments: str) -> list[bytes]:
    """The first `count` requests `openssl cmp` writes for `arguments` (-reqout), as it would send them to a
    server; with -rspin it takes the answers from files until they run out."""
    first = len(list(directory.glob("request-*")))
    outs = [directory / f"request-{first + index}.der" for index in range(count)]
    subprocess.run(
        [openssl(), "cmp", "-server", f"127.0.0.1:{_hang_up()}", "-reqout", ",".join(map(str, outs)), *arguments],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert all(out.exists() for out in outs), "openssl cmp wrote fewer requests than expected"
    return [out.read_bytes() for out in outs]


def openssl_request(directory: Path, *arguments: str) -> bytes:
    return openssl_requests(directory, 1, *arguments)[0]


def write_pem(directory: Path, name: str, item: x509.Certificate | PrivateKey) -> Path:
    path = directory / name
    if isinstance(item, x509.Certificate):
        path.write_bytes(item.public_bytes(PEM))
    else:
        path.write_bytes(item.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path
