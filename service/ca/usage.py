"""Key usage that follows from the leaf's key and purpose, for every profile, built in or configured.

- keyUsage is digitalSignature, plus keyEncipherment only for an RSA key whose extended key usage has serverAuth
  (TLS RSA key transport; RFC 5280 4.2.1.12 asks the two extensions to agree, and a clientAuth, codeSigning or
  timeStamping key never decrypts).
- extendedKeyUsage is critical when it is timeStamping alone (RFC 3161 2.3), which a profile must then be.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID


def has_key_encipherment(
    public_key: CertificatePublicKeyTypes, extended_key_usage: Sequence[x509.ObjectIdentifier]
) -> bool:
    return isinstance(public_key, rsa.RSAPublicKey) and ExtendedKeyUsageOID.SERVER_AUTH in extended_key_usage


def is_extended_key_usage_critical(extended_key_usage: Sequence[x509.ObjectIdentifier]) -> bool:
    return tuple(extended_key_usage) == (ExtendedKeyUsageOID.TIME_STAMPING,)


def extended_key_usage_problems(extended_key_usage: Sequence[x509.ObjectIdentifier]) -> list[str]:
    """What makes a profile's extended key usage contradict itself."""
    if ExtendedKeyUsageOID.TIME_STAMPING in extended_key_usage and len(extended_key_usage) > 1:
        return ["timeStamping must be the only extended key usage (RFC 3161 2.3)"]
    return []
