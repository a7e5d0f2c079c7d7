"""The RA certificate SCEP clients encrypt their requests to and whose key signs every CertRep.

RSA whatever the CA's key is: every SCEP client transports the envelope's key with RSA, strongSwan 5.9.8 refuses a
response whose signer is not RSA, and micromdm's scepclient cannot encrypt to anything else. keyUsage
digitalSignature and keyEncipherment; no CA flag, so clients that sort GetCACert's certificates (certmonger,
strongSwan) find the RA among them.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from service.ca.issue import BACKDATE, authority_key_identifier, random_serial_number

MIN_RA_BITS: Final = 2048


def build_ra_builder(
    public_key: rsa.RSAPublicKey,
    common_name: str,
    issuer: x509.Certificate,
    *,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.CertificateBuilder:
    """The RA certificate before the CA signs it: never outliving the CA."""
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < MIN_RA_BITS:
        raise ValueError(f"the SCEP RA key must be RSA of at least {MIN_RA_BITS} bits")
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    return x509.CertificateBuilder(
        issuer_name=issuer.subject,
        subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
        public_key=public_key,
        serial_number=random_serial_number(),
        not_valid_before=now - BACKDATE,
        not_valid_after=min(now + lifetime, issuer.not_valid_after_utc),
        extensions=[
            x509.Extension(x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=False, path_length=None)),
            x509.Extension(x509.KeyUsage.oid, True, usage),
            x509.Extension(x509.SubjectKeyIdentifier.oid, False, x509.SubjectKeyIdentifier.from_public_key(public_key)),
            x509.Extension(x509.AuthorityKeyIdentifier.oid, False, authority_key_identifier(issuer)),
        ],
    )
