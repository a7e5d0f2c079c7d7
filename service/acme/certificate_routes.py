"""The ACME certificate routes: download (RFC 8555 §7.4.2), revocation (§7.6), renewal information (RFC 9773)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.acme.exchange import ServerDep, acme_headers, signed, urls_for, verify_account
from service.acme.problems import problem_response
from service.acme.server import AcmeServer
from service.authority import AcmeCaller, LocalCaller
from service.authority.acme import jws
from service.authority.acme.problems import AcmeProblem, malformed, unauthorized
from service.authority.acme.renewal import renewal_window
from service.authority.acme.urls import Urls
from service.ca.inspect import format_serial
from service.errors import ServiceError

router = APIRouter()  # included under /acme by service.acme.routes
PEM_CHAIN = "application/pem-certificate-chain"
REASON_CODES = {
    0: "unspecified",
    1: "keyCompromise",
    2: "cACompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
    9: "privilegeWithdrawn",
    10: "aACompromise",
}


@router.post("/cert/{serial}", include_in_schema=False)
async def certificate(request: Request, server: ServerDep, serial: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        if not verified.is_post_as_get:
            raise malformed("download a certificate with POST-as-GET (an empty payload)")
        server.orders.check_owner(account, serial)
        stored = server.authority.get_certificate(serial, caller=LocalCaller("acme"))
        pem = b"".join(c.public_bytes(Encoding.PEM) for c in [stored.certificate, *server.authority.chain])
        return Response(pem, media_type=PEM_CHAIN, headers=acme_headers(server, urls))

    return await signed(request, server, handle)


@router.post("/revoke-cert", include_in_schema=False)
async def revoke_cert(request: Request, server: ServerDep) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        message = jws.parse_jws(body)
        if "jwk" in message.protected:  # signed by the certificate's own key
            verified = jws.verify_request(body, url=url, nonces=server.nonces, allow_jwk=True, lookup_kid=lambda k: {})
            account = None
        else:
            verified, account = verify_account(server, urls, body, url, request)
        payload = verified.payload()
        der = jws.b64decode(payload.get("certificate"), "certificate")
        try:
            submitted = x509.load_der_x509_certificate(der)
        except ValueError:
            raise malformed("certificate is not a DER X.509 certificate") from None
        reason = payload.get("reason", 0)
        if not isinstance(reason, int) or isinstance(reason, bool) or reason not in REASON_CODES:
            raise AcmeProblem("badRevocationReason", f"reason {reason!r} is not allowed; use 0-5, 9 or 10")
        serial = format_serial(submitted.serial_number)
        try:
            stored = server.authority.get_certificate(serial, caller=LocalCaller("acme"))
        except ServiceError:
            raise AcmeProblem("malformed", "this certificate was not issued by this server", status=404) from None
        if stored.certificate != submitted:
            raise AcmeProblem("malformed", "this certificate was not issued by this server", status=404)
        if account is not None:
            server.orders.check_may_revoke(account, serial, _identifiers(submitted))
            caller = account.caller(address)
        else:
            spki = submitted.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            if verified.key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != spki:
                raise unauthorized("the JWS key is not the certificate's key")
            caller = AcmeCaller("certkey:" + jws.thumbprint(verified.jwk or {})[:24], address=address)
        if stored.status == "revoked":
            raise AcmeProblem("alreadyRevoked", f"certificate {serial} is already revoked")
        server.nonces.spend_now()  # the authority's own transaction revokes: the nonce goes first
        server.authority.revoke(serial, reason=REASON_CODES[reason], caller=caller)
        return Response(status_code=200, headers=acme_headers(server, urls))

    return await signed(request, server, handle)


def _identifiers(certificate: x509.Certificate) -> list[tuple[str, str]]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [("dns", str(v)) for v in sans.get_values_for_type(x509.DNSName)]
    names += [("ip", str(v)) for v in sans.get_values_for_type(x509.IPAddress)]
    others = len(sans) - len(names)
    return names if not others else []  # a name no ACME authorization covers: only the orderer may revoke


# --- renewal information (RFC 9773) ---------------------------------------------------------------------------------


@router.get("/renewal-info/{cert_id}", summary="ACME renewal information (RFC 9773)")
async def renewal_info(request: Request, server: ServerDep, cert_id: str) -> Response:
    urls = urls_for(request)
    try:
        window, retry = await run_in_threadpool(renewal_window, server.authority, cert_id)
    except AcmeProblem as exc:
        return problem_response(exc)
    return JSONResponse(
        {"suggestedWindow": window}, headers={"Retry-After": str(retry), "Link": f'<{urls.directory}>;rel="index"'}
    )
