"""The application layer (the Authority facade in core.py; issuance.py is the one pipeline). Re-exports what the
API, the CLI and the tests use."""

from service.authority.callers import (
    SCOPES,
    TOKEN_PREFIX,
    AcmeCaller,
    Caller,
    ClientIdentity,
    LocalCaller,
    TokenCaller,
    describe_issuer,
    hash_secret,
)
from service.authority.core import Authority
from service.authority.renewal import build_renewal_token, is_renewal_token
from service.authority.state import utcnow
from service.authority.values import (
    AuditEntry,
    CertificateListing,
    CRLDocument,
    IssuedCertificate,
    NewToken,
    Page,
    PKCS12Bundle,
    StoredCertificate,
    TokenInfo,
)

__all__ = [
    "SCOPES",
    "TOKEN_PREFIX",
    "AcmeCaller",
    "AuditEntry",
    "Authority",
    "CRLDocument",
    "Caller",
    "CertificateListing",
    "ClientIdentity",
    "IssuedCertificate",
    "LocalCaller",
    "NewToken",
    "PKCS12Bundle",
    "Page",
    "StoredCertificate",
    "TokenCaller",
    "TokenInfo",
    "build_renewal_token",
    "describe_issuer",
    "hash_secret",
    "is_renewal_token",
    "utcnow",
]
