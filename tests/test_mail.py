"""Mail through a real SMTP server on 127.0.0.1 (aiosmtpd): plain to a local relay, STARTTLS with a certificate of
a throwaway CA, smtps, AUTH; a server that is down at first and comes back; one that answers 4xx, then 2xx; one that
refuses for good. The received message is read back and its parts checked; nothing secret reaches the log."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.issue import build_ca_certificate, build_leaf_builder, random_serial_number
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES
from service.errors import ConfigurationError
from service.mail import Invitation, Mailer, Outcome, SmtpConfig, build_message, is_local, load_smtp_config
from tests.helpers import ForeignCA, free_port, now, p256, write_pair

SECRET = "s3cr3t-0123456789abcdef0123456789abcdef"
URL = f"https://ca.corp.example/enroll/{SECRET}"
SMTP_PASSWORD = "relay-password-42"
FINGERPRINT = "ab" * 32
INVITATION = Invitation(
    reference="inv-7f3a", to="alice@example.com", cn="Alice Example", url=URL, invited_by="Bob Admin",
    expires_at=dt.datetime(2031, 3, 4, 5, 6, tzinfo=dt.UTC), ca_fingerprint=FINGERPRINT, ca_name="Corp CA",
)
FAST = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.0)  # the test's backoff; the service's is minutes


@dataclass
class Inbox:
    """aiosmtpd's handler: keeps what arrived, and can answer RCPT with a refusal for the first few tries."""

    messages: list[tuple[EmailMessage, bool, bytes | None]] = field(default_factory=list)  # (message, tls, login)
    refuse: list[str] = field(default_factory=list)  # answers to give to RCPT, one per attempt, before accepting
    attempts: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.attempts += 1
        if self.refuse:
            return self.refuse.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        tls = server.transport.get_extra_info("ssl_object") is not None  # STARTTLS or smtps alike
        self.messages.append((message, tls, login))
        self.arrived.set()
        return "250 Message accepted"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"pocketca", SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)  # not handled: aiosmtpd answers


@dataclass
class TLSFiles:
    ca_file: Path
    server_context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA of our own service.ca, and the mail server's certificate for 127.0.0.1 under it."""
    directory = tmp_path_factory.mktemp("smtp-tls")
    ca_key = p256()
    ca = build_ca_certificate(ca_key, "mail test CA", now=now(), lifetime=dt.timedelta(days=1))
    key = p256()
    spec = LeafSpec(build_subject("127.0.0.1"), "127.0.0.1", (parse_general_name("127.0.0.1"),),
                    BUILTIN_PROFILES["server"], 1)
    leaf = build_leaf_builder(spec, key.public_key(), ca, serial_number=random_serial_number(), now=now(),
                              public_url="http://127.0.0.1").sign(ca_key, hashes.SHA256())
    cert_file, key_file = write_pair(directory, "smtp", key, leaf)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(Encoding.PEM))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return TLSFiles(ca_file, context)


@pytest.fixture
def servers() -> Iterator[list[Controller]]:
    started: list[Controller] = []
    yield started
    for controller in started:
        controller.stop()


def start(servers: list[Controller], inbox: Inbox, port: int | None = None, **kwargs: Any) -> int:
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    servers.append(controller)
    return port


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[Outcome] = []
        self.event = threading.Event()

    def __call__(self, outcome: Outcome) -> None:
        self.seen.append(outcome)
        self.event.set()

    def wait(self, timeout: float = 30) -> Outcome:
        assert self.event.wait(timeout), "no outcome in time"
        return self.seen[-1]


def mailer(config: SmtpConfig, outcomes: Outcomes, **kwargs: Any) -> Mailer:
    return Mailer(config, delays=kwargs.pop("delays", FAST), timeout=5, on_outcome=outcomes, **kwargs)


def config(port: int, **changes: Any) -> SmtpConfig:
    return replace(SmtpConfig("127.0.0.1", port, False, "pocketca@ca.corp.example"), **changes)


def secrets_in_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    text = "\n".join(record.getMessage() for record in caplog.records)
    return [word for word in (SECRET, SMTP_PASSWORD) if word in text]


def test_a_local_relay_gets_the_invitation_with_both_parts(
    servers: list[Controller], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pocketca.mail")
    inbox = Inbox()
    port = start(servers, inbox)
    outcomes = Outcomes()
    sender = mailer(config(port), outcomes)
    sender.send_invitation(INVITATION)
    assert outcomes.wait() == Outcome("inv-7f3a", True, 1)
    sender.close()
    message, tls, login = inbox.messages[0]
    assert (tls, login) == (False, None)
    assert message["From"] == "pocketca@ca.corp.example"
    assert message["To"] == "Alice Example <alice@example.com>"
    assert message["Subject"] == "Bob Admin invites you to get your certificate from Corp CA"
    assert message["Auto-Submitted"] == "auto-generated" and message["Message-ID"].endswith("@ca.corp.example>")
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert plain is not None and page is not None
    text, markup = plain.get_content(), page.get_content()
    fingerprint = ":".join(["ab"] * 32)
    for part in (text, markup):
        assert URL in part and "Bob Admin" in part and "2031-03-04 05:06 UTC" in part and fingerprint in part
    assert f'<a href="{URL}">' in markup
    assert "Hello Alice Example," in text
    assert "inv-7f3a" in caplog.text and secrets_in_log(caplog) == []


def test_the_reminder_says_when_the_certificate_expires(servers: list[Controller]) -> None:
    inbox = Inbox()
    outcomes = Outcomes()
    sender = mailer(config(start(servers, inbox)), outcomes)
    renews = dt.datetime(2031, 2, 28, 12, 0, tzinfo=dt.UTC)
    sender.send_invitation(replace(INVITATION, reference="inv-renew", renews=renews))
    assert outcomes.wait().delivered
    sender.close()
    message = inbox.messages[0][0]
    assert message["Subject"] == "Your certificate expires on 2031-02-28: renew it"
    body = message.get_body(("plain",))
    assert body is not None and "expires on 2031-02-28 12:00 UTC" in body.get_content()
    assert URL in body.get_content()


def test_starttls_with_auth(servers: list[Controller], tls: TLSFiles, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pocketca.mail")
    inbox = Inbox()
    port = start(servers, inbox, tls_context=tls.server_context, require_starttls=True, authenticator=authenticator,
                 auth_required=True)
    outcomes = Outcomes()
    sender = mailer(config(port, username="pocketca", password=SMTP_PASSWORD), outcomes,
                    ssl_context=tls.client_context())
    sender.send_invitation(INVITATION)
    assert outcomes.wait() == Outcome("inv-7f3a", True, 1)
    sender.close()
    _, was_tls, login = inbox.messages[0]
    assert was_tls and login == b"pocketca"
    assert secrets_in_log(caplog) == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # it is TLS: smtps
def test_smtps_with_auth(servers: list[Controller], tls: TLSFiles) -> None:
    inbox = Inbox()
    port = start(servers, inbox, ssl_context=tls.server_context, authenticator=authenticator, auth_required=True,
                 auth_require_tls=False)  # aiosmtpd counts only STARTTLS as TLS; this connection is TLS throughout
    outcomes = Outcomes()
    sender = mailer(config(port, implicit_tls=True, username="pocketca", password=SMTP_PASSWORD), outcomes,
                    ssl_context=tls.client_context())
    sender.send_invitation(INVITATION)
    assert outcomes.wait().delivered
    sender.close()
    assert inbox.messages[0][1:] == (True, b"pocketca")


def test_a_wrong_password_is_given_up_at_once_and_not_logged(
    servers: list[Controller], tls: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pocketca.mail")
    inbox = Inbox()
    port = start(servers, inbox, tls_context=tls.server_context, require_starttls=True, authenticator=authenticator,
                 auth_required=True)
    outcomes = Outcomes()
    wrong = "not-the-relay-password"
    sender = mailer(config(port, username="pocketca", password=wrong), outcomes, ssl_context=tls.client_context())
    sender.send_invitation(INVITATION)
    outcome = outcomes.wait()
    sender.close()
    assert (outcome.delivered, outcome.attempts) == (False, 1)
    assert outcome.error is not None and outcome.error.startswith("535")
    assert inbox.messages == [] and wrong not in caplog.text and secrets_in_log(caplog) == []


def test_a_server_certificate_from_another_ca_is_refused(
    servers: list[Controller], tls: TLSFiles, tmp_path: Path, foreign_ca: ForeignCA
) -> None:
    inbox = Inbox()
    port = start(servers, inbox, tls_context=tls.server_context, require_starttls=True)
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(foreign_ca.certificate.public_bytes(Encoding.PEM))
    outcomes = Outcomes()
    sender = mailer(config(port), outcomes, ssl_context=ssl.create_default_context(cafile=str(foreign)))
    sender.send_invitation(INVITATION)
    outcome = outcomes.wait()
    sender.close()
    assert (outcome.delivered, outcome.attempts) == (False, 1)
    reason = "the server's certificate does not verify (unable to get local issuer certificate)"
    assert outcome.error == f"TLS failed: {reason}"
    assert inbox.messages == []


def test_no_password_goes_out_without_starttls(servers: list[Controller]) -> None:
    inbox = Inbox()
    outcomes = Outcomes()
    sender = mailer(config(start(servers, inbox), username="pocketca", password=SMTP_PASSWORD), outcomes)
    sender.send_invitation(INVITATION)
    outcome = outcomes.wait()
    sender.close()
    assert not outcome.delivered and outcome.error is not None and "does not offer STARTTLS" in outcome.error
    assert inbox.messages == [] and inbox.attempts == 0


def test_only_a_relay_on_this_machine_may_go_without_tls() -> None:
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost") and is_local("127.1.2.3")
    assert not is_local("mail.corp.example") and not is_local("10.0.0.25") and not is_local("localhost.evil")


def test_a_server_that_is_down_at_first_gets_the_mail_when_it_comes_back(
    servers: list[Controller], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pocketca.mail")
    port = free_port()  # nothing listens here yet
    outcomes = Outcomes()
    sender = mailer(config(port), outcomes, delays=(0.5,) * 20)
    sender.send_invitation(INVITATION)  # returns at once: the request that invites never waits on the mail server
    assert outcomes.seen == []
    deadline = time.monotonic() + 20
    while "attempt 2" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "ConnectionRefusedError" in caplog.text and "attempt 2" in caplog.text
    inbox = Inbox()
    start(servers, inbox, port=port)
    outcome = outcomes.wait()
    sender.close()
    assert outcome.delivered and outcome.attempts >= 3
    assert len(inbox.messages) == 1 and secrets_in_log(caplog) == []


def test_a_server_that_answers_try_later_gets_it_on_a_later_attempt(servers: list[Controller]) -> None:
    inbox = Inbox(refuse=["451 4.7.1 Greylisted, try again later", "421 4.3.2 Busy"])
    outcomes = Outcomes()
    sender = mailer(config(start(servers, inbox)), outcomes)
    sender.send_invitation(INVITATION)
    outcome = outcomes.wait()
    sender.close()
    assert outcome == Outcome("inv-7f3a", True, 3)
    assert inbox.attempts == 3 and len(inbox.messages) == 1


def test_a_server_that_refuses_for_good_is_not_asked_again(
    servers: list[Controller], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pocketca.mail")
    inbox = Inbox(refuse=["550 5.1.1 No such user"] * 5)
    outcomes = Outcomes()
    sender = mailer(config(start(servers, inbox)), outcomes)
    sender.send_invitation(INVITATION)
    outcome = outcomes.wait()
    time.sleep(1)  # longer than the first backoff: no second attempt comes
    sender.close()
    assert outcome == Outcome("inv-7f3a", False, 1, "recipient refused (550)")
    assert inbox.attempts == 1 and inbox.messages == []
    assert "inv-7f3a" in caplog.text and "giving up" in caplog.text and secrets_in_log(caplog) == []


def test_retries_end(servers: list[Controller]) -> None:
    inbox = Inbox(refuse=["451 4.3.0 Later"] * 10)
    outcomes = Outcomes()
    sender = mailer(config(start(servers, inbox)), outcomes, delays=(0.1, 0.1))
    sender.send_invitation(INVITATION)
    outcome = outcomes.wait()
    sender.close()
    assert (outcome.delivered, outcome.attempts) == (False, 3) and inbox.attempts == 3


def test_a_cn_cannot_add_headers() -> None:
    invitation = replace(INVITATION, cn="Alice\r\nBcc: mallory@evil.example", invited_by="Bob\nX-Evil: 1")
    message = build_message(invitation, "pocketca@ca.corp.example")
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["To"] == '"Alice Bcc: mallory@evil.example" <alice@example.com>'
    assert "\n" not in message["Subject"]
    with pytest.raises((ValueError, IndexError)):
        build_message(replace(INVITATION, to="not an address"), "pocketca@ca.corp.example")


def test_the_settings_as_values(tmp_path: Path) -> None:
    secret = tmp_path / "smtp.secret"
    secret.write_text("relay@corp.example:pa:ss word\n")
    loaded = load_smtp_config("smtp://mail.corp.example:25", password_file=secret, sender="ca@corp.example")
    assert loaded == SmtpConfig("mail.corp.example", 25, False, "ca@corp.example", "relay@corp.example", "pa:ss word")
    assert "pa:ss" not in repr(loaded)
    assert load_smtp_config("smtp://mail", password_file=None, sender="a@b.example").port == 587
    implicit = load_smtp_config("smtps://mail/", password_file=None, sender="a@b.example")
    assert (implicit.port, implicit.implicit_tls, implicit.username) == (465, True, None)
    secret.write_text("no colon here\n")
    refusals = [
        ("http://mail:25", None, "must be smtp://host:port or smtps://host:port"),
        ("smtp://user:pw@mail:25", None, "holds no user or password"),
        ("smtp://mail:25/path", None, "must be smtp://host:port"),
        ("smtp://mail:port", None, "not a number"),
        ("smtp://mail:25", secret, "must hold one line user:password"),
        ("smtp://mail:25", tmp_path / "missing", "cannot read POCKETCA_SMTP_PASSWORD_FILE"),
    ]
    for url, password_file, message in refusals:
        with pytest.raises(ConfigurationError, match=message) as caught:
            load_smtp_config(url, password_file=password_file, sender="a@b.example")
        assert "pw" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="POCKETCA_SMTP_FROM"):
        load_smtp_config("smtp://mail", password_file=None, sender="not an address")
