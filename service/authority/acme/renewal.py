"""Renewal information (ARI, RFC 9773): the certID of a certificate, and the window we suggest renewing in."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from service.authority import Authority
from service.authority.acme import jws
from service.authority.acme.problems import malformed
from service.ca.inspect import format_serial
from service.ca.issue import authority_key_identifier
from service.db import certificates

RETRY_AFTER = 6 * 3600  # seconds until a client asks again


def renewal_window(authority: Authority, cert_id: str) -> tuple[dict[str, str], int]:
    key_id_text, _, serial_text = cert_id.partition(".")
    key_id = jws.b64decode(key_id_text, "the certID's key identifier")
    serial_bytes = jws.b64decode(serial_text, "the certID's serial")
    issuer = _issuer_with_key_id(authority, key_id)
    if not serial_bytes or issuer is None:
        raise malformed("no certificate with this certID here", status=404)
    serial = format_serial(int.from_bytes(serial_bytes, "big"))
    record = certificates.get(authority.db, serial)
    if record is None or record.issuer_id not in (issuer, None):
        raise malformed("no certificate with this certID here", status=404)
    now = authority.clock()
    found = authority.issuers[issuer]
    if record.status == "revoked" or (  # renew now: a window in the past; also when the root revoked the issuer
        found.parents and authority.root_crls.revokes(found.certificate, found.parents[-1])
    ):
        start, end = now - dt.timedelta(hours=1), now - dt.timedelta(minutes=1)
    else:
        life = record.not_after - record.not_before
        start = record.not_before + life * 2 / 3
        end = record.not_before + life * 7 / 9
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"start": start.strftime(fmt), "end": end.strftime(fmt)}, RETRY_AFTER


def _issuer_with_key_id(authority: Authority, key_id: bytes) -> str | None:
    """Which of the issuers that still answer OCSP (the current one and those a rotation retired) the certID's
    key identifier names: the one whose key identifier its certificates carry as their AKI."""
    for issuer in authority.issuers.values():
        if authority_key_identifier(issuer.certificate).key_identifier == key_id:
            return issuer.id
    return None


def cert_id(certificate: x509.Certificate) -> str:
    """The RFC 9773 certID of a certificate (for tests and the CLI)."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier or b""
    n = certificate.serial_number
    serial = n.to_bytes((n.bit_length() + 8) // 8, "big")
    return f"{jws.b64encode(aki)}.{jws.b64encode(serial)}"
