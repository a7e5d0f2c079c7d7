"""A SCEP client for the tests: a device with an RSA key and a self-signed certificate that builds pkiMessages
(with every knob a hostile test needs) and reads CertReps. Written against pyasn1 and cryptography directly, not
with the server's builders, so a test that passes is two implementations agreeing."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as block_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AttributeOID, NameOID
from pyasn1.codec.ber import decoder
from pyasn1.codec.der import encoder
from pyasn1.type import char, univ, useful
from pyasn1_modules import rfc4055, rfc5280, rfc5652

SCEP = "2.16.840.1.113733.1.9."
OIDS = {
    "messageType": SCEP + "2",
    "pkiStatus": SCEP + "3",
    "failInfo": SCEP + "4",
    "senderNonce": SCEP + "5",
    "recipientNonce": SCEP + "6",
    "transactionID": SCEP + "7",
    "failInfoText": "1.3.6.1.5.5.7.24.1",
    "contentType": "1.2.840.113549.1.9.3",
    "messageDigest": "1.2.840.113549.1.9.4",
    "signingTime": "1.2.840.113549.1.9.5",
}
CIPHERS = {  # name: (oid, key size, block size)
    "des": ("1.3.14.3.2.7", 8, 8),
    "des3": ("1.2.840.113549.3.7", 24, 8),
    "aes128": ("2.16.840.1.101.3.4.1.2", 16, 16),
    "aes192": ("2.16.840.1.101.3.4.1.22", 24, 16),
    "aes256": ("2.16.840.1.101.3.4.1.42", 32, 16),
}
DIGESTS = {  # name: (oid, hash)
    "md5": ("1.2.840.113549.2.5", hashes.MD5),
    "sha1": ("1.3.14.3.2.26", hashes.SHA1),
    "sha256": ("2.16.840.1.101.3.4.2.1", hashes.SHA256),
    "sha384": ("2.16.840.1.101.3.4.2.2", hashes.SHA384),
    "sha512": ("2.16.840.1.101.3.4.2.3", hashes.SHA512),
}


def enc(value: object) -> bytes:
    return bytes(encoder.encode(value))


def block_cipher(name: str, key: bytes) -> object:
    if name == "des":
        return TripleDES(key * 3)
    if name == "des3":
        return TripleDES(key)
    return algorithms.AES(key)


def self_signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def envelope(
    content: bytes,
    recipients: Sequence[x509.Certificate],
    cipher: str = "aes128",
    *,
    transport: str = "pkcs1",
    by_key_id: bool = False,
) -> bytes:
    """An EnvelopedData; `transport` "pkcs1", "oaep" (SHA-1 defaults), "oaep-sha256" or an OID to refuse;
    `by_key_id` names recipients by subject key identifier instead of issuer and serial."""
    oid, key_size, block = CIPHERS[cipher]
    key, iv = os.urandom(key_size), os.urandom(block)
    padder = block_padding.PKCS7(block * 8).padder()
    encryptor = Cipher(block_cipher(cipher, key), modes.CBC(iv)).encryptor()  # type: ignore[arg-type]
    encrypted = encryptor.update(padder.update(content) + padder.finalize()) + encryptor.finalize()
    data = rfc5652.EnvelopedData()
    data["version"] = 0
    for recipient in recipients:
        info = rfc5652.KeyTransRecipientInfo()
        info["version"] = 0
        if by_key_id:
            ski = recipient.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            info["rid"]["subjectKeyIdentifier"] = ski
        else:
            rid = rfc5652.IssuerAndSerialNumber()
            rid["issuer"] = decoder.decode(recipient.issuer.public_bytes(), asn1Spec=rfc5280.Name())[0]
            rid["serialNumber"] = recipient.serial_number
            info["rid"]["issuerAndSerialNumber"] = rid
        public_key = recipient.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        if transport == "pkcs1":
            info["keyEncryptionAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.840.113549.1.1.1")
            info["keyEncryptionAlgorithm"]["parameters"] = univ.Any(enc(univ.Null("")))
            info["encryptedKey"] = public_key.encrypt(key, padding.PKCS1v15())
        elif transport.startswith("oaep"):
            info["keyEncryptionAlgorithm"]["algorithm"] = rfc4055.id_RSAES_OAEP
            hash_type: type[hashes.HashAlgorithm] = hashes.SHA1
            if transport == "oaep-sha256":
                hash_type = hashes.SHA256
                info["keyEncryptionAlgorithm"]["parameters"] = univ.Any(enc(rfc4055.rSAES_OAEP_SHA256_Params))
            else:
                info["keyEncryptionAlgorithm"]["parameters"] = univ.Any(enc(rfc4055.RSAES_OAEP_params()))
            oaep = padding.OAEP(mgf=padding.MGF1(hash_type()), algorithm=hash_type(), label=None)
            info["encryptedKey"] = public_key.encrypt(key, oaep)
        else:
            info["keyEncryptionAlgorithm"]["algorithm"] = univ.ObjectIdentifier(transport)
            info["encryptedKey"] = public_key.encrypt(key, padding.PKCS1v15())
        choice = rfc5652.RecipientInfo()
        choice["ktri"] = info
        data["recipientInfos"].append(choice)
    eci = data["encryptedContentInfo"]
    eci["contentType"] = rfc5652.id_data
    eci["contentEncryptionAlgorithm"]["algorithm"] = univ.ObjectIdentifier(oid)
    eci["contentEncryptionAlgorithm"]["parameters"] = univ.Any(enc(univ.OctetString(iv)))
    eci["encryptedContent"] = encrypted
    info = rfc5652.ContentInfo()
    info["contentType"] = rfc5652.id_envelopedData
    info["content"] = univ.Any(enc(data))
    return enc(info)


@dataclass
class Device:
    """A device enrolling: its key, the self-signed certificate it signs PKCSReq with, its transaction id."""

    cn: str = "device-1"
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    certificate: x509.Certificate | None = None
    transaction_id: str = ""

    def __post_init__(self) -> None:
        if self.certificate is None:
            self.certificate = self_signed(self.key, self.cn)
        if not self.transaction_id:
            self.transaction_id = os.urandom(20).hex()

    def csr(self, challenge: str | None = None, key: rsa.RSAPrivateKey | None = None, cn: str | None = None) -> bytes:
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or self.cn)])
        )
        if challenge is not None:
            builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
        return builder.sign(key or self.key, hashes.SHA256()).public_bytes(Encoding.DER)

    def message(
        self,
        message_type: int | str,
        content: bytes | None,
        recipients: Sequence[x509.Certificate],
        *,
        cipher: str = "aes128",
        digest: str = "sha256",
        signer: x509.Certificate | None = None,
        signer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
        nonce: bytes | None = None,
        signing_time: dt.datetime | None = None,
        attributes: dict[str, object] | None = None,
        omit: Sequence[str] = (),
        signature_algorithm: str = "1.2.840.113549.1.1.1",
        envelope_bytes: bytes | None = None,
        message_digest: bytes | None = None,
        tamper_signature: bool = False,
    ) -> bytes:
        """A pkiMessage; `attributes` replace or add signed attributes (name or OID → pyasn1 value)."""
        signer = signer or self.certificate
        signer_key = signer_key or self.key
        assert signer is not None
        inner = (
            envelope_bytes
            if envelope_bytes is not None
            else (envelope(content, recipients, cipher) if content is not None else None)
        )
        digest_oid, hash_type = DIGESTS[digest]
        values: dict[str, object] = {
            "contentType": rfc5652.id_data,
            "messageDigest": univ.OctetString(message_digest or hashlib.new(hash_type.name, inner or b"").digest()),
            "signingTime": useful.UTCTime((signing_time or dt.datetime.now(dt.UTC)).strftime("%y%m%d%H%M%SZ")),
            "messageType": char.PrintableString(str(message_type)),
            "transactionID": char.PrintableString(self.transaction_id),
            "senderNonce": univ.OctetString(nonce if nonce is not None else os.urandom(16)),
        }
        values.update(attributes or {})
        signed_attrs = rfc5652.SignedAttributes()
        for name, value in values.items():
            if name in omit:
                continue
            item = rfc5652.Attribute()
            item["attrType"] = univ.ObjectIdentifier(OIDS.get(name, name))
            item["attrValues"].append(univ.Any(enc(value)))
            signed_attrs.append(item)
        to_sign = enc(signed_attrs)
        if isinstance(signer_key, rsa.RSAPrivateKey):
            signature = signer_key.sign(to_sign, padding.PKCS1v15(), hash_type())
        else:
            signature = signer_key.sign(to_sign, ec.ECDSA(hash_type()))
        if tamper_signature:
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        info = rfc5652.SignerInfo()
        info["version"] = 1
        sid = rfc5652.IssuerAndSerialNumber()
        sid["issuer"] = decoder.decode(signer.issuer.public_bytes(), asn1Spec=rfc5280.Name())[0]
        sid["serialNumber"] = signer.serial_number
        info["sid"]["issuerAndSerialNumber"] = sid
        info["digestAlgorithm"]["algorithm"] = univ.ObjectIdentifier(digest_oid)
        info["signedAttrs"].extend(list(signed_attrs))
        info["signatureAlgorithm"]["algorithm"] = univ.ObjectIdentifier(signature_algorithm)
        info["signature"] = signature
        signed = rfc5652.SignedData()
        signed["version"] = 1
        algorithm = rfc5652.DigestAlgorithmIdentifier()
        algorithm["algorithm"] = univ.ObjectIdentifier(digest_oid)
        signed["digestAlgorithms"].append(algorithm)
        signed["encapContentInfo"]["eContentType"] = rfc5652.id_data
        if inner is not None:
            signed["encapContentInfo"]["eContent"] = inner
        choice = rfc5652.CertificateChoices()
        choice["certificate"] = decoder.decode(signer.public_bytes(Encoding.DER), asn1Spec=rfc5280.Certificate())[0]
        signed["certificates"].append(choice)
        signed["signerInfos"].append(info)
        outer = rfc5652.ContentInfo()
        outer["contentType"] = rfc5652.id_signedData
        outer["content"] = univ.Any(enc(signed))
        return enc(outer)


@dataclass
class CertRep:
    """A CertRep as a client reads it (signature checked against `ra`)."""

    status: str
    fail_info: str | None
    fail_info_text: str | None
    transaction_id: str
    recipient_nonce: bytes
    sender_nonce: bytes
    digest_oid: str
    signature_oid: str
    envelope: bytes | None
    signing_time: dt.datetime | None


def read_cert_rep(der: bytes, ra: x509.Certificate) -> CertRep:
    outer, rest = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())
    assert not rest and outer["contentType"] == rfc5652.id_signedData
    signed, _ = decoder.decode(bytes(outer["content"]), asn1Spec=rfc5652.SignedData())
    (info,) = list(signed["signerInfos"])
    attrs = {str(a["attrType"]): bytes(a["attrValues"][0]) for a in info["signedAttrs"]}
    to_verify = enc(rfc5652.SignedAttributes().setComponents(*info["signedAttrs"]))
    hash_type = {v[0]: v[1] for v in DIGESTS.values()}[str(info["digestAlgorithm"]["algorithm"])]
    ra.public_key().verify(bytes(info["signature"]), to_verify, padding.PKCS1v15(), hash_type())  # type: ignore[union-attr,call-arg]
    content = bytes(signed["encapContentInfo"]["eContent"]) if signed["encapContentInfo"]["eContent"].isValue else None
    digest = decoder.decode(attrs[OIDS["messageDigest"]])[0]
    assert bytes(digest) == hashlib.new(hash_type.name, content or b"").digest()

    def text(name: str) -> str | None:
        raw = attrs.get(OIDS[name])
        return None if raw is None else str(decoder.decode(raw)[0])

    def octets(name: str) -> bytes:
        return bytes(decoder.decode(attrs[OIDS[name]])[0])

    when = attrs.get(OIDS["signingTime"])
    return CertRep(
        status=text("pkiStatus") or "",
        fail_info=text("failInfo"),
        fail_info_text=text("failInfoText"),
        transaction_id=text("transactionID") or "",
        recipient_nonce=octets("recipientNonce"),
        sender_nonce=octets("senderNonce"),
        digest_oid=str(info["digestAlgorithm"]["algorithm"]),
        signature_oid=str(info["signatureAlgorithm"]["algorithm"]),
        envelope=content,
        signing_time=None if when is None else decoder.decode(when)[0].asDateTime,
    )


def open_cert_rep(envelope_der: bytes, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> tuple[str, bytes]:
    """Decrypts a CertRep's envelope as the device: (cipher name, degenerate PKCS#7)."""
    outer, _ = decoder.decode(envelope_der, asn1Spec=rfc5652.ContentInfo())
    data, _ = decoder.decode(bytes(outer["content"]), asn1Spec=rfc5652.EnvelopedData())
    (choice,) = list(data["recipientInfos"])
    rid = choice["ktri"]["rid"]["issuerAndSerialNumber"]
    assert int(rid["serialNumber"]) == certificate.serial_number
    key_bytes = key.decrypt(bytes(choice["ktri"]["encryptedKey"]), padding.PKCS1v15())
    eci = data["encryptedContentInfo"]
    oid = str(eci["contentEncryptionAlgorithm"]["algorithm"])
    name = next(n for n, v in CIPHERS.items() if v[0] == oid)
    iv = bytes(decoder.decode(bytes(eci["contentEncryptionAlgorithm"]["parameters"]))[0])
    decryptor = Cipher(block_cipher(name, key_bytes), modes.CBC(iv)).decryptor()  # type: ignore[arg-type]
    padded = decryptor.update(bytes(eci["encryptedContent"])) + decryptor.finalize()
    unpadder = block_padding.PKCS7(CIPHERS[name][2] * 8).unpadder()
    return name, unpadder.update(padded) + unpadder.finalize()
