"""The pkcsPKIEnvelope (RFC 8894 §3.2.2): CMS EnvelopedData with RSA key transport, opened with the RA key and
sealed to a requester's certificate.

Ciphers: DES-CBC, DES-EDE3-CBC, AES-128/192/256-CBC (`Cipher`). Key transport: RSA PKCS#1 v1.5 (what every SCEP
client sends) and RSAES-OAEP. An RSA unwrap that fails is not told apart from one that succeeds: a random key
takes the failed one's place (implicit rejection), so the answer is the same badMessageCheck either way and the
RA key is no padding oracle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import padding as block_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher as CipherContext
from cryptography.hazmat.primitives.ciphers import modes
from pyasn1.type import univ
from pyasn1_modules import rfc4055, rfc5652

from service.ca import scep_der as der
from service.ca.scep_asn1 import (
    ENVELOPED_CONTENT,
    ID_DATA,
    ID_ENVELOPED_DATA,
    KEY_TRANS,
    RSA_ENCRYPTION,
    RSAES_OAEP,
    decode,
    is_issuer_and_serial_of,
)
from service.ca.scep_types import Cipher, Digest, FailInfo, ScepError

MAX_CONTENT: Final = 256 * 1024  # a CSR or a query; an envelope bigger than this is not a SCEP client's
_OAEP_HASHES: Final = {digest.oid: digest for digest in Digest}
_MGF1: Final = "1.2.840.113549.1.1.8"


@dataclass(frozen=True)
class OpenedEnvelope:
    content: bytes
    cipher: Cipher


def open_envelope(data: bytes, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> OpenedEnvelope:
    """The content of an EnvelopedData addressed to `certificate` (by issuer and serial or by key identifier)."""
    content_info = decode(data, ENVELOPED_CONTENT, "pkcsPKIEnvelope (a CMS EnvelopedData)")
    if content_info["contentType"] != ID_ENVELOPED_DATA:
        raise ScepError(FailInfo.BAD_REQUEST, "the pkcsPKIEnvelope is not an EnvelopedData")
    enveloped = content_info["content"]
    recipient = _recipient_for(enveloped["recipientInfos"], certificate)
    encrypted_info = enveloped["encryptedContentInfo"]
    algorithm = encrypted_info["contentEncryptionAlgorithm"]
    cipher = Cipher.from_oid(str(algorithm["algorithm"]))
    if cipher is None:
        raise ScepError(FailInfo.BAD_ALG, f"content encryption {algorithm['algorithm']} is not supported")
    iv = _iv_of(algorithm, cipher)
    if not encrypted_info["encryptedContent"].isValue:
        raise ScepError(FailInfo.BAD_REQUEST, "the EnvelopedData has no encrypted content")
    encrypted = bytes(encrypted_info["encryptedContent"])
    if not encrypted or len(encrypted) % cipher.block_size or len(encrypted) > MAX_CONTENT:
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the encrypted content has an impossible length")
    session_key = _unwrap(recipient, key, cipher)
    decryptor = CipherContext(cipher.algorithm(session_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(encrypted) + decryptor.finalize()
    unpadder = block_padding.PKCS7(cipher.block_size * 8).unpadder()
    try:
        content = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the envelope does not decrypt with the RA key") from None
    return OpenedEnvelope(content=content, cipher=cipher)


def seal_envelope(content: bytes, recipient: x509.Certificate, cipher: Cipher) -> bytes:
    """An EnvelopedData (in its ContentInfo) of `content` for the RSA key of `recipient`, PKCS#1 v1.5 key
    transport (the one every SCEP client reads)."""
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ScepError(FailInfo.BAD_ALG, "a SCEP response can only be encrypted to an RSA key")
    session_key, iv = os.urandom(cipher.key_size), os.urandom(cipher.block_size)
    padder = block_padding.PKCS7(cipher.block_size * 8).padder()
    encryptor = CipherContext(cipher.algorithm(session_key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padder.update(content) + padder.finalize()) + encryptor.finalize()

    transport = der.sequence(
        der.integer(0),
        der.issuer_and_serial(recipient),
        der.algorithm(str(RSA_ENCRYPTION), der.null()),
        der.octets(public_key.encrypt(session_key, padding.PKCS1v15())),
    )
    encrypted_info = der.sequence(
        der.oid(str(ID_DATA)),
        der.algorithm(cipher.oid, der.octets(iv)),
        der.primitive(0x80, encrypted),  # [0] IMPLICIT OCTET STRING
    )
    enveloped = der.sequence(der.integer(0), der.set_of(transport), encrypted_info)
    return der.content_info(str(ID_ENVELOPED_DATA), enveloped)


def _recipient_for(recipients: univ.SetOf, certificate: x509.Certificate) -> univ.Sequence:
    """The KeyTransRecipientInfo naming `certificate`: its rid compared whole to the certificate's issuer and
    serial or key identifier, then by the names' meaning when the encodings differ."""
    by_serial = der.issuer_and_serial(certificate)
    by_key_id = der.primitive(0x80, _subject_key_identifier(certificate))
    transports = [
        decode(bytes(choice), KEY_TRANS, "KeyTransRecipientInfo")
        for choice in recipients
        if bytes(choice)[:1] == bytes((der.SEQUENCE,))  # the other kinds of RecipientInfo are tagged [1] to [4]
    ]
    for transport in transports:
        if bytes(transport["rid"]) in (by_serial, by_key_id):
            return transport
    for transport in transports:
        rid = bytes(transport["rid"])
        if rid[:1] == bytes((der.SEQUENCE,)) and is_issuer_and_serial_of(
            decode(rid, rfc5652.IssuerAndSerialNumber(), "recipient"), certificate
        ):
            return transport
    raise ScepError(FailInfo.BAD_CERT_ID, "the envelope is not addressed to this RA certificate")


def _subject_key_identifier(certificate: x509.Certificate) -> bytes:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def _iv_of(algorithm: univ.Sequence, cipher: Cipher) -> bytes:
    parameters = algorithm["parameters"]
    iv = decode(bytes(parameters), univ.OctetString(), "cipher's IV") if parameters.isValue else b""
    if len(iv) != cipher.block_size:
        raise ScepError(FailInfo.BAD_REQUEST, f"the {cipher.name} IV must be {cipher.block_size} bytes")
    return bytes(iv)


def _unwrap(transport: univ.Sequence, key: rsa.RSAPrivateKey, cipher: Cipher) -> bytes:
    algorithm = transport["keyEncryptionAlgorithm"]
    oid = algorithm["algorithm"]
    if oid == RSA_ENCRYPTION:
        scheme: padding.AsymmetricPadding = padding.PKCS1v15()
    elif oid == RSAES_OAEP:
        scheme = _oaep(algorithm["parameters"])
    else:
        raise ScepError(FailInfo.BAD_ALG, f"key transport {oid} is not supported")
    try:
        session_key = key.decrypt(bytes(transport["encryptedKey"]), scheme)
    except ValueError:
        session_key = b""
    if len(session_key) != cipher.key_size:  # implicit rejection: go on with a key nobody knows
        session_key = os.urandom(cipher.key_size)
    return session_key


def _oaep(parameters: univ.Any) -> padding.OAEP:
    digest, mask_digest = Digest.SHA1, Digest.SHA1
    if parameters.isValue:
        params = decode(bytes(parameters), rfc4055.RSAES_OAEP_params(), "RSAES-OAEP parameters")
        if params["hashFunc"].isValue:
            digest = _oaep_digest(str(params["hashFunc"]["algorithm"]))
        if params["maskGenFunc"].isValue:
            mgf = params["maskGenFunc"]
            if str(mgf["algorithm"]) != _MGF1 or not mgf["parameters"].isValue:
                raise ScepError(FailInfo.BAD_ALG, "RSAES-OAEP with a mask generation other than MGF1")
            inner = decode(bytes(mgf["parameters"]), rfc5652.DigestAlgorithmIdentifier(), "MGF1 digest")
            mask_digest = _oaep_digest(str(inner["algorithm"]))
        if params["pSourceFunc"].isValue:
            raise ScepError(FailInfo.BAD_ALG, "RSAES-OAEP with a label is not supported")
    return padding.OAEP(mgf=padding.MGF1(mask_digest.algorithm()), algorithm=digest.algorithm(), label=None)


def _oaep_digest(oid: str) -> Digest:
    digest = _OAEP_HASHES.get(oid)
    if digest is None:
        raise ScepError(FailInfo.BAD_ALG, f"RSAES-OAEP with digest {oid} is not supported")
    return digest
