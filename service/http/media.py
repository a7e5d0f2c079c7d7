"""Media types the API speaks besides JSON."""

from fastapi import Request

PEM_CHAIN = "application/pem-certificate-chain"
PKIX_CERT = "application/pkix-cert"
PKIX_CRL = "application/pkix-crl"
PEM_FILE = "application/x-pem-file"


def wants_pem_chain(request: Request) -> bool:
    return PEM_CHAIN in request.headers.get("accept", "")
