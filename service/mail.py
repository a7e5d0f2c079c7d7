"""Mail: invitations and renewal reminders, delivered over SMTP in the background.

`load_smtp_config` reads the contract's settings as values (`POCKETCA_SMTP_URL`, `POCKETCA_SMTP_PASSWORD_FILE`,
`POCKETCA_SMTP_FROM`). A `Mailer` owns one thread and a schedule: `send()` only queues, so a request never waits on
a mail server; the thread delivers, retrying a server that is down or answers 4xx with growing delays, and gives up
at once on a 5xx or a TLS failure (trying again cannot help). `smtp://` speaks STARTTLS, required unless the server
is on this machine (a local relay) and no password is configured; `smtps://` is TLS from the first byte.

Nothing secret is logged: a message is named by its reference (the invitation id), never by its link, which holds
the invitation's secret; the SMTP password stays in `SmtpConfig`, whose repr leaves it out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import html
import ipaddress
import itertools
import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from service.errors import ConfigurationError

log = logging.getLogger("pocketca.mail")

DEFAULT_DELAYS: Final = (10.0, 60.0, 300.0, 900.0, 3600.0, 3600.0)  # between attempts: seven in about 2.5 hours
MAX_PENDING: Final = 1000  # messages waiting at once; past that a new one is dropped (and logged)
PORTS: Final = {"smtp": 587, "smtps": 465}


@dataclasses.dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool  # smtps://
    sender: str
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class Invitation:
    """What a mail says. `url` holds the invitation's secret: it goes into the message and nowhere else. With
    `renews` (the expiring certificate's not_after) the mail is the renewal reminder."""

    reference: str
    to: str
    cn: str
    url: str
    invited_by: str
    expires_at: dt.datetime
    ca_fingerprint: str  # SHA-256 of the root, hex
    ca_name: str = "pocketca"
    renews: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    reference: str
    delivered: bool
    attempts: int
    error: str | None = None


class PermanentError(Exception):
    """A failure that another attempt cannot mend: a 5xx answer, a TLS failure, a server without STARTTLS."""


def load_smtp_config(url: str, *, password_file: Path | None, sender: str) -> SmtpConfig:
    """`smtp://host[:587]` or `smtps://host[:465]`, `user:password` from the file; ConfigurationError says what
    to fix."""
    parts = urlsplit(url.strip())
    if parts.scheme not in PORTS or not parts.hostname:
        raise ConfigurationError(f"POCKETCA_SMTP_URL must be smtp://host:port or smtps://host:port, not {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError("POCKETCA_SMTP_URL holds no user or password: put user:password in a file and "
                                 "name it in POCKETCA_SMTP_PASSWORD_FILE")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ConfigurationError(f"POCKETCA_SMTP_URL must be smtp://host:port or smtps://host:port, not {url!r}")
    try:
        port = parts.port or PORTS[parts.scheme]
    except ValueError:
        raise ConfigurationError(f"POCKETCA_SMTP_URL has a port that is not a number: {url!r}") from None
    try:
        Address(addr_spec=sender)
    except (ValueError, IndexError):
        raise ConfigurationError(f"POCKETCA_SMTP_FROM is not a mail address: {sender!r}") from None
    username = password = None
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read POCKETCA_SMTP_PASSWORD_FILE {password_file}: {exc}") from None
        username, colon, password = text.partition(":")
        if not colon or not username or not password:
            raise ConfigurationError(f"{password_file} must hold one line user:password")
    return SmtpConfig(parts.hostname, port, parts.scheme == "smtps", sender, username, password)


def default_sender(public_host: str) -> str:
    return f"pocketca@{public_host}"


def is_local(host: str) -> bool:
    """A relay on this machine (loopback) may take mail without TLS; any other server must offer STARTTLS."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_message(invitation: Invitation, sender: str) -> EmailMessage:
    """Plain text with an HTML alternative: the link, who invited, until when, the CA's fingerprint."""
    cn, by = _one_line(invitation.cn), _one_line(invitation.invited_by)
    until = _when(invitation.expires_at)
    fingerprint = ":".join(invitation.ca_fingerprint[i : i + 2] for i in range(0, len(invitation.ca_fingerprint), 2))
    if invitation.renews is None:
        subject = f"{by} invites you to get your certificate from {_one_line(invitation.ca_name)}"
        opening = f"{by} invites you to get your client certificate from {invitation.ca_name}."
    else:
        subject = f"Your certificate expires on {_when(invitation.renews)[:10]}: renew it"
        opening = (f"Your client certificate from {invitation.ca_name} expires on {_when(invitation.renews)}. "
                   f"Get its successor from this link ({by} set it up).")
    closing = "If you did not expect this mail, ignore it: nothing happens unless the link is opened."
    text = (
        f"Hello {cn},\n\n{opening}\nOpen this link on the device that should hold the certificate:\n\n"
        f"  {invitation.url}\n\nThe link works once, until {until}.\n\n"
        f"Before you trust the page, check that the certificate authority's SHA-256 fingerprint is\n"
        f"  {fingerprint}\n\n{closing}\n"
    )
    e = html.escape
    page = (
        f"<!doctype html><html><body><p>Hello {e(cn)},</p><p>{e(opening)}<br>Open this link on the device that "
        f"should hold the certificate:</p><p><a href=\"{e(invitation.url)}\">{e(invitation.url)}</a></p>"
        f"<p>The link works once, until {e(until)}.</p><p>Before you trust the page, check that the certificate "
        f"authority's SHA-256 fingerprint is<br><code>{e(fingerprint)}</code></p><p>{e(closing)}</p></body></html>\n"
    )
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = Address(addr_spec=sender)
    message["To"] = Address(display_name=cn, addr_spec=invitation.to)
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(page, subtype="html")
    return message


class Mailer:
    """One thread delivering queued messages; `send` never waits. `on_outcome` hears of each message once, when
    it is delivered or given up (e.g. to audit it), on the mailer's thread."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        delays: Sequence[float] = DEFAULT_DELAYS,
        timeout: float = 30.0,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.config = config
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.delays = tuple(delays)
        self.timeout = timeout
        self.on_outcome = on_outcome
        self._due: list[tuple[float, int, int, str, EmailMessage]] = []  # (when, order, attempts, reference, message)
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="pocketca-mail", daemon=True)
        self._thread.start()

    def send_invitation(self, invitation: Invitation) -> None:
        self.send(build_message(invitation, self.config.sender), invitation.reference)

    def send(self, message: EmailMessage, reference: str) -> None:
        with self._wake:
            if self._stopping or len(self._due) >= MAX_PENDING:
                log.error("mail for %s dropped: the mailer is %s", reference, "stopping" if self._stopping else "full")
                return
            heapq.heappush(self._due, (time.monotonic(), next(self._order), 0, reference, message))
            self._wake.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Stops the thread after the attempt under way; messages still waiting are logged as not sent."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout)
        for _, _, _, reference, _ in self._due:
            log.warning("mail for %s not sent: the service stopped before it could be delivered", reference)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._wake.wait(None if not self._due else self._due[0][0] - time.monotonic())
                if self._stopping:
                    return
                _, _, attempts, reference, message = heapq.heappop(self._due)
            self._attempt(attempts + 1, reference, message)

    def _attempt(self, attempt: int, reference: str, message: EmailMessage) -> None:
        try:
            self._deliver(message)
        except Exception as exc:  # every failure is either retried or reported: the thread must not die
            reason, permanent = _describe(exc)
            if permanent or attempt > len(self.delays):
                log.error("mail for %s not delivered after %d attempt(s), giving up: %s", reference, attempt, reason)
                self._report(Outcome(reference, False, attempt, reason))
                return
            delay = self.delays[attempt - 1]
            log.warning(
                "mail for %s not delivered (attempt %d): %s; next try in %gs", reference, attempt, reason, delay
            )
            with self._wake:
                heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), attempt, reference, message))
            return
        log.info("mail for %s handed to %s:%d (attempt %d)", reference, self.config.host, self.config.port, attempt)
        self._report(Outcome(reference, True, attempt))

    def _report(self, outcome: Outcome) -> None:
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:
                log.exception("the mail outcome handler failed for %s", outcome.reference)

    def _deliver(self, message: EmailMessage) -> None:
        config = self.config
        client: smtplib.SMTP
        if config.implicit_tls:
            client = smtplib.SMTP_SSL(config.host, config.port, timeout=self.timeout, context=self.ssl_context)
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=self.timeout)
        with client:
            client.ehlo()
            if not config.implicit_tls:
                if client.has_extn("starttls"):
                    client.starttls(context=self.ssl_context)
                    client.ehlo()
                elif config.password is not None or not is_local(config.host):
                    raise PermanentError(f"{config.host} does not offer STARTTLS; pocketca sends no mail in clear "
                                         "beyond this machine, and never a password")
            if config.username is not None and config.password is not None:
                client.login(config.username, config.password)
            client.send_message(message)


def _describe(exc: Exception) -> tuple[str, bool]:
    """A short, safe reason (an SMTP code and the server's first line, or the error's kind) and whether it is
    permanent."""
    if isinstance(exc, PermanentError):
        return str(exc), True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return f"recipient refused ({', '.join(map(str, codes))})", all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text.splitlines()[0][:200] if text else ''}".strip(), exc.smtp_code >= 500
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"the server does not support it: {exc}", True
    if isinstance(exc, ssl.SSLCertVerificationError):  # before OSError: it will not start to verify by itself
        return f"TLS failed: the server's certificate does not verify ({exc.verify_message})", True
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}", True
    if isinstance(exc, OSError | smtplib.SMTPException):
        return f"{type(exc).__name__}: {exc}", False
    return f"{type(exc).__name__}", True


def _one_line(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
