"""A PKIMessage's header (RFC 4210 5.1.1), as read: what a response needs from a request's header, and what the
caller decides on. Its own module so that cmp_failures (whose errors carry the header they answer) and
cmp_message (which reads it) need not import each other."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from service.ca.cmp_names import name_of


@dataclass(frozen=True)
class CmpHeader:
    """What a response needs from a request's header, and what the caller decides on."""

    pvno: int
    sender: bytes  # a GeneralName, whole (`sender_name` reads a directoryName)
    recipient: bytes
    transaction_id: bytes
    sender_nonce: bytes
    recip_nonce: bytes | None = None
    sender_kid: bytes | None = None
    message_time: dt.datetime | None = None
    implicit_confirm: bool = False

    @property
    def sender_name(self) -> x509.Name | None:
        return name_of(self.sender)

    @property
    def recipient_name(self) -> x509.Name | None:
        return name_of(self.recipient)
