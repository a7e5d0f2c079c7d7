"""Request and response bodies, as the contract spells them."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel, ConfigDict, Field

from service.authority import ClientIdentity, IssuedCertificate, StoredCertificate
from service.ca.inspect import CertificateSummary

MAX_CSR_CHARS = 60_000


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode()


class CSRRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    csr: str = Field(max_length=MAX_CSR_CHARS, description="PKCS#10 request, PEM")
    profile: str | None = Field(None, max_length=64, description="client (default), server or peer")
    validity_days: int | None = Field(None, description="capped by the profile; default 90")


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class CertificateResponse(CertificateFields):
    issuer: str
    profile: str
    status: str = Field(description="valid, revoked or expired")
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    certificate: str

    @classmethod
    def build(cls, stored: StoredCertificate) -> CertificateResponse:
        return cls(
            issuer=stored.summary.issuer,
            profile=stored.profile,
            status=stored.status,
            revoked_at=stored.revoked_at,
            revocation_reason=stored.revocation_reason,
            certificate=pem(stored.certificate),
            **cls.summary_fields(stored.summary),  # type: ignore[arg-type]
        )


class IdentityResponse(CertificateFields):
    issuer: str

    @classmethod
    def build(cls, identity: ClientIdentity) -> IdentityResponse:
        return cls(issuer=identity.summary.issuer, **cls.summary_fields(identity.summary))  # type: ignore[arg-type]


class HealthResponse(BaseModel):
    status: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
