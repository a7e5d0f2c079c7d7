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

from service.ca.scep_asn1 import (
    ID_DATA,
    ID_ENVELOPED_DATA,
    RSA_ENCRYPTION,
    RSAES_OAEP,
    algorithm_identifier,
    decode,
    encode,
    is_issuer_and_serial_of,
    issuer_and_serial,
)
from service.ca.scep_types import Cipher, Digest, FailInfo, ScepError

MAX_CONTENT: Final = 256 * 1024  # a CSR or a query; an envelope bigger than this is not a SCEP client's
_OAEP_HASHES: Final = {digest.oid: digest for digest in Digest}
_MGF1: Final = "1.2.840.113549.1.1.8"


@dataclass(frozen=True)
class OpenedEnvelope:
    content: bytes
    cipher: Cipher


def open_envelope(der: bytes, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> OpenedEnvelope:
    """The content of an EnvelopedData addressed to `certificate` (by issuer and serial or by key identifier)."""
    content_info = decode(der, rfc5652.ContentInfo(), "pkcsPKIEnvelope")
    if content_info["contentType"] != ID_ENVELOPED_DATA:
        raise ScepError(FailInfo.BAD_REQUEST, "the pkcsPKIEnvelope is not an EnvelopedData")
    enveloped = decode(bytes(content_info["content"]), rfc5652.EnvelopedData(), "EnvelopedData")
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

    transport = rfc5652.KeyTransRecipientInfo()
    transport["version"] = 0
    transport["rid"]["issuerAndSerialNumber"] = issuer_and_serial(recipient)
    algorithm_identifier(transport["keyEncryptionAlgorithm"], RSA_ENCRYPTION, univ.Null(""))
    transport["encryptedKey"] = public_key.encrypt(session_key, padding.PKCS1v15())
    recipient_info = rfc5652.RecipientInfo()
    recipient_info["ktri"] = transport

    enveloped = rfc5652.EnvelopedData()
    enveloped["version"] = 0
    enveloped["recipientInfos"].append(recipient_info)
    encrypted_info = enveloped["encryptedContentInfo"]
    encrypted_info["contentType"] = ID_DATA
    algorithm_identifier(encrypted_info["contentEncryptionAlgorithm"], cipher.oid, univ.OctetString(iv))
    encrypted_info["encryptedContent"] = encrypted
    content_info = rfc5652.ContentInfo()
    content_info["contentType"] = ID_ENVELOPED_DATA
    content_info["content"] = univ.Any(encode(enveloped))
    return encode(content_info)


def _recipient_for(recipients: rfc5652.RecipientInfos, certificate: x509.Certificate) -> univ.Sequence:
    key_id = _subject_key_identifier(certificate)
    for choice in recipients:
        if choice.getName() != "ktri":
            continue
        transport = choice["ktri"]
        rid = transport["rid"]
        if rid.getName() == "issuerAndSerialNumber" and is_issuer_and_serial_of(
            rid["issuerAndSerialNumber"], certificate
        ):
            return transport
        if rid.getName() == "subjectKeyIdentifier" and bytes(rid["subjectKeyIdentifier"]) == key_id:
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
