"""Answering for each issuer, current or retired, and for the offline roots: their CRLs, certificates, OCSP."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cryptography import x509

from service.authority.values import CRLDocument
from service.ca.ocsp import MalformedOCSPRequestError, build_unsuccessful, load_ocsp_request
from service.errors import CRLNotPublishedError, IssuerNotFoundError

if TYPE_CHECKING:
    from service.authority.state import AuthorityState


def issuer_crl(authority: AuthorityState, issuer: str) -> CRLDocument:
    """The CRL of one issuer, current or retired (GET /crl/{issuer id})."""
    publisher = authority.crl_publishers.get(issuer)
    if publisher is not None:
        return publisher.current()
    if issuer in authority.root_crls.roots or issuer in authority.root_crls.aliases:  # an offline root's (`ca crl`)
        published = authority.root_crls.current(issuer)
        if published is None:
            raise CRLNotPublishedError(issuer)
        return published.document
    raise IssuerNotFoundError(issuer, [*authority.crl_publishers, *authority.root_crls.roots])


def issuer_certificate(authority: AuthorityState, issuer: str) -> x509.Certificate:
    found = authority.issuers.get(issuer)
    if found is not None:
        return found.certificate
    if issuer in authority.root_crls.roots:
        return authority.root_crls.roots[issuer][0]
    raise IssuerNotFoundError(issuer, [*authority.issuers, *authority.root_crls.roots])


def answer_ocsp(authority: AuthorityState, request: bytes) -> tuple[bytes, dt.datetime | None]:
    """Each issuer answers for its own certificates; a question naming no issuer of ours is `unauthorized`."""
    if len(authority.ocsp_responders) == 1:
        return authority.ocsp.respond(request)
    try:
        question = load_ocsp_request(request)
    except MalformedOCSPRequestError:
        return build_unsuccessful("malformedRequest"), None
    if question.serial_number < 0:
        return build_unsuccessful("malformedRequest"), None
    for responder in authority.ocsp_responders:
        if responder.answers(question):
            return responder.respond_to(question)
    return build_unsuccessful("unauthorized"), None
