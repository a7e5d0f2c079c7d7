"""Request and response bodies, as the contract spells them."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel, Field, SecretStr

from service.authority import ClientIdentity, IssuedCertificate, StoredCertificate
from service.ca.inspect import CertificateSummary
from service.http.bodies import RequestModel

MAX_CSR_CHARS = 60_000


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode()


@functools.lru_cache(maxsize=8)
def _chain_pem(chain: tuple[x509.Certificate, ...]) -> list[str]:
    return [pem(c) for c in chain]


def chain_pem(chain: list[x509.Certificate]) -> list[str]:
    """The issuing chain in PEM, encoded once, not on every response."""
    return list(_chain_pem(tuple(chain)))


class CSRRequest(RequestModel):
    csr: str = Field(max_length=MAX_CSR_CHARS, description="PKCS#10 request, PEM")
    profile: str | None = Field(None, max_length=64, description="client (default), server or peer")
    validity_days: int | None = Field(None, description="capped by the profile; default 90")


class RevokeRequest(RequestModel):
    reason: str | None = Field(None, max_length=64, description="RFC 5280 reason name, default unspecified")


class CertificateFields(BaseModel):
    serial: str
    subject: str
    cn: str | None
    sans: list[str]
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str

    @staticmethod
    def summary_fields(summary: CertificateSummary) -> dict[str, object]:
        return {
            "serial": summary.serial,
            "subject": summary.subject,
            "cn": summary.cn,
            "sans": list(summary.sans),
            "not_before": summary.not_before,
            "not_after": summary.not_after,
            "fingerprint_sha256": summary.fingerprint_sha256,
        }


class IssuedCertificateResponse(CertificateFields):
    certificate: str = Field(description="the new certificate, PEM")
    chain: list[str] = Field(description="the issuing chain, PEM, issuer first")
    profile: str

    @classmethod
    def build(cls, issued: IssuedCertificate, chain: list[str]) -> IssuedCertificateResponse:
        return cls(
            certificate=pem(issued.certificate),
            chain=chain,
            profile=issued.profile,
            **cls.summary_fields(issued.summary),  # type: ignore[arg-type]
        )


ISSUED_BY = Field(
    description="who asked for it, as the audit log names the actor: token:<id>, cert:<serial> (a renewal), "
    "acme:<account id>, local:<command>; null for rows older than the record"
)
ISSUED_VIA = Field(description="how it came in: token, enrollment, renewal, acme, console or local")


class CertificateResponse(CertificateFields):
    issuer: str
    profile: str
    status: str = Field(description="valid, revoked or expired")
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    issued_by: str | None = ISSUED_BY
    issued_via: str | None = ISSUED_VIA
    certificate: str

    @classmethod
    def build(cls, stored: StoredCertificate) -> CertificateResponse:
        return cls(
            issuer=stored.summary.issuer,
            profile=stored.profile,
            status=stored.status,
            revoked_at=stored.revoked_at,
            revocation_reason=stored.revocation_reason,
            issued_by=stored.issued_by,
            issued_via=stored.issued_via,
            certificate=pem(stored.certificate),
            **cls.summary_fields(stored.summary),  # type: ignore[arg-type]
        )


class IdentityResponse(CertificateFields):
    issuer: str

    @classmethod
    def build(cls, identity: ClientIdentity) -> IdentityResponse:
        return cls.build_from(identity.summary)

    @classmethod
    def build_from(cls, summary: CertificateSummary) -> IdentityResponse:
        return cls(issuer=summary.issuer, **cls.summary_fields(summary))  # type: ignore[arg-type]


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str
    warnings: list[str] | None = Field(
        default=None, description="what will make the service unready soon (a root CRL near its nextUpdate)"
    )


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str


class CertificateListItem(CertificateFields):  # model_validate(CertificateListing, from_attributes=True)
    profile: str
    status: str
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    issued_by: str | None = ISSUED_BY
    issued_via: str | None = ISSUED_VIA


class CertificateListResponse(BaseModel):
    items: list[CertificateListItem]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class TokenCreateRequest(RequestModel):
    scope: Literal["admin", "issue", "revoke", "read"] | None = Field(
        None, description="default admin; issue for an enrollment token"
    )
    cn: str | None = Field(None, max_length=64, description="bind the token to this CN (an enrollment token)")
    sans: list[str] = Field(default_factory=list, max_length=100, description="and exactly these SANs")
    profile: str | None = Field(None, max_length=64, description="the only profile the token may use")
    ttl_seconds: int | None = Field(None, ge=1, le=315_360_000, description="default: none; 24 h for enrollment")
    uses: int | None = Field(None, ge=1, le=1_000_000, description="default: unlimited; 1 for enrollment")


class TokenCreatedResponse(BaseModel):
    token: str = Field(description="the secret; shown only now")
    id: str
    expires_at: dt.datetime | None


class TokenResponse(BaseModel):  # model_validate(TokenInfo, from_attributes=True)
    id: str
    scope: str
    kind: str = Field(description="enrollment for a token bound to names (scope issue), else the scope")
    cn: str | None
    sans: list[str]
    profile: str | None
    expires_at: dt.datetime | None
    uses_left: int | None
    created_at: dt.datetime


class TokenListResponse(BaseModel):
    items: list[TokenResponse]


class PKCS12Request(RequestModel):
    cn: str = Field(min_length=1, max_length=64)
    sans: list[str] = Field(default_factory=list, max_length=100)
    profile: str | None = Field(None, max_length=64)
    validity_days: int | None = None
    password: SecretStr = Field(min_length=8, max_length=1024, description="protects the bundle; never stored")
    legacy: bool = Field(False, description="3DES + SHA-1 MAC for keystores that read nothing newer")


class AuditEventResponse(BaseModel):
    id: int
    at: dt.datetime
    action: str
    outcome: str
    actor: str
    token_id: str | None
    serial: str | None
    client_address: str | None
    detail: str | None


class AuditListResponse(BaseModel):
    items: list[AuditEventResponse]
    next_cursor: str | None
