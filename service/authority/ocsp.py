"""The OCSP responder: one indexed lookup per question; signed answers cached while the status holds."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable

from cryptography import x509

from service import metrics
from service.ca.inspect import format_serial
from service.ca.issue import Signer
from service.ca.ocsp import (
    MalformedOCSPRequestError,
    OCSPAnswer,
    OCSPQuestion,
    build_ocsp_response,
    build_unsuccessful,
    is_for_issuer,
    load_ocsp_request,
)
from service.db import certificates as certificate_rows
from service.db.session import Database

DEFAULT_OCSP_VALIDITY = dt.timedelta(hours=1)
CACHE_SIZE = 10_000


class OCSPResponder:
    def __init__(
        self,
        db: Database,
        signer: Signer,
        issuer: x509.Certificate,
        *,
        validity: dt.timedelta = DEFAULT_OCSP_VALIDITY,
        clock: Callable[[], dt.datetime],
        issuer_id: str | None = None,
    ) -> None:
        self.db = db
        self.signer = signer
        self.issuer = issuer
        self.issuer_id = issuer_id  # None: one CA, every row is its own
        self.validity = validity
        self.clock = clock
        self._cache: OrderedDict[tuple[int, str], tuple[OCSPAnswer, dt.datetime, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def respond(self, data: bytes) -> tuple[bytes, dt.datetime | None]:
        """DER request -> (DER response, its nextUpdate or None for an unsuccessful one). Never raises for input."""
        try:
            question = load_ocsp_request(data)
        except MalformedOCSPRequestError:
            metrics.ocsp("malformedRequest")
            return build_unsuccessful("malformedRequest"), None
        if question.serial_number < 0:  # no certificate has one; an OCSP response cannot even name it
            metrics.ocsp("malformedRequest")
            return build_unsuccessful("malformedRequest"), None
        if not self.answers(question):
            metrics.ocsp("unauthorized")
            return build_unsuccessful("unauthorized"), None
        return self.respond_to(question)

    def answers(self, question: OCSPQuestion) -> bool:
        return is_for_issuer(question, self.issuer)

    def respond_to(self, question: OCSPQuestion) -> tuple[bytes, dt.datetime | None]:
        """A question `answers` accepted: a signed response."""
        answer = self._answer(question.serial_number)
        metrics.ocsp(answer.status)
        now = self.clock()
        key = (question.serial_number, question.hash_name)
        if question.nonce is None:  # a nonce makes each response unique: those are never cached
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and hit[0] == answer and now < hit[1] + self.validity / 2:
                    self._cache.move_to_end(key)
                    return hit[2], hit[1] + self.validity
        der = build_ocsp_response(
            self.signer, self.issuer, question, answer, this_update=now, next_update=now + self.validity
        )
        if question.nonce is None:
            with self._lock:
                self._cache[key] = (answer, now, der)
                self._cache.move_to_end(key)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return der, now + self.validity

    def _answer(self, serial_number: int) -> OCSPAnswer:
        state = certificate_rows.revocation_state(self.db, format_serial(serial_number))
        if state is None:
            return OCSPAnswer("unknown")
        status, revoked_at, reason, issuer_id = state
        if self.issuer_id is not None and issuer_id not in (self.issuer_id, None):
            return OCSPAnswer("unknown")  # that serial is another issuer's
        if status == "revoked":
            return OCSPAnswer("revoked", revoked_at, reason or "unspecified")
        return OCSPAnswer("good")
