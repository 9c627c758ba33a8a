"""Where queued emails go: an SMTP relay (aiosmtplib), or `.eml` files when none is set."""

from __future__ import annotations

import asyncio
import logging
import re
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from petition.outbox.messages import ascii_domain
from petition.settings import Settings, private_directory, write_private_file

log = logging.getLogger("petition.outbox")


class TemporaryFailure(Exception):
    """Try again later: relay unreachable, timed out, or answered 4xx."""

    def __init__(self, message: str, *, counts: bool = True) -> None:
        super().__init__(message)
        #: False when the relay never answered: such failures never exhaust attempts.
        self.counts = counts


class PermanentFailure(Exception):
    """The relay refused this message for good (5xx)."""


class Transport(Protocol):
    async def send(self, message: EmailMessage, *, kind: str) -> None: ...


#: Why an address with a non-ASCII local part ("пётр@example.org") was not sent: organisers
#: see it as the email's last error. Not retried: the relay's extensions do not come and go.
NO_SMTPUTF8 = "the relay does not support SMTPUTF8, needed for a non-ASCII address"
#: Why an address whose domain has no A-label form was not sent (the form refuses such domains).
BAD_DOMAIN = "the address's domain is not a valid internationalised domain name"


def envelope(message: EmailMessage) -> tuple[str | None, list[str]]:
    """MAIL FROM and RCPT TO of a message: its Sender or From, and its To, Cc and Bcc.

    Each domain goes as A-labels ("info@xn--strae-oqa.de" for "info@straße.de"): what
    RFC 5321 asks for without SMTPUTF8, and what every relay takes with it, so only a
    non-ASCII local part needs SMTPUTF8.
    """

    def spec(address: Address) -> str:
        try:
            domain = ascii_domain(address.domain)
        except UnicodeError as exc:
            raise PermanentFailure(BAD_DOMAIN) from exc
        return Address(username=address.username, domain=domain).addr_spec

    sender_header = message["Sender"] or message["From"]
    senders = [spec(a) for a in sender_header.addresses] if sender_header is not None else []
    recipients = [
        spec(a) for name in ("To", "Cc", "Bcc") for header in message.get_all(name, []) for a in header.addresses
    ]
    return (senders[0] if senders else None), recipients


def needs_smtputf8(sender: str | None, recipients: list[str]) -> bool:
    return not all(address.isascii() for address in [sender or "", *recipients])


async def _offers_smtputf8(client: aiosmtplib.SMTP) -> bool:
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            return False  # a relay without ESMTP has no extensions at all
    return client.supports_extension("smtputf8")


class SMTPTransport:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage, *, kind: str) -> None:
        s = self.settings
        sender, recipients = envelope(message)
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=str(s.smtp_password) if s.smtp_password else None,
            use_tls=s.smtp_tls == "tls",
            start_tls=True if s.smtp_tls == "starttls" else False,
            timeout=s.smtp_timeout,
        )
        try:
            async with client:
                # Asked before MAIL FROM, so that the reason is ours and not aiosmtplib's wording.
                if needs_smtputf8(sender, recipients) and not await _offers_smtputf8(client):
                    raise PermanentFailure(NO_SMTPUTF8)
                # With a non-ASCII envelope this sends SMTPUTF8 and UTF-8 headers (RFC 6531, 6532).
                await client.send_message(message, sender=sender, recipients=recipients or None)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if codes and all(500 <= c < 600 for c in codes):
                raise PermanentFailure(f"recipient refused ({codes[0]})") from exc
            raise TemporaryFailure(f"recipient deferred ({codes[0] if codes else '?'})") from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # A configuration problem, not this message's: keep it until it is fixed.
            raise TemporaryFailure(f"authentication failed ({exc.code})", counts=False) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"refused ({exc.code})") from exc
            raise TemporaryFailure(f"deferred ({exc.code})") from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"relay unreachable ({type(exc).__name__})", counts=False) from exc


_LINK = re.compile(r"https?://\S+")


class FileTransport:
    """The embedded default's mailer: one `.eml` file per email in DATA_DIR/mail.

    It logs the links of confirmation emails so that a newcomer without a mail
    relay can click them; a real deployment sets SMTP_HOST and nothing is logged.
    """

    def __init__(self, settings: Settings) -> None:
        self.directory = settings.mail_dir
        self.base_url = settings.base_url

    async def send(self, message: EmailMessage, *, kind: str) -> None:
        await asyncio.to_thread(self._write, message, kind)

    def _write(self, message: EmailMessage, kind: str) -> None:
        private_directory(self.directory)
        stem = str(message["Message-ID"]).strip("<>").split("@")[0]
        path = self.directory / f"{kind}-{stem}.eml"
        write_private_file(path, _file_bytes(message))  # it holds an address and a personal link
        log.info("email %s written to %s", kind, path)
        if kind == "confirm":
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            for link in _LINK.findall(text):
                if link.startswith(self.base_url):
                    log.warning("No SMTP_HOST set: open this link to confirm: %s", link)


def _file_bytes(message: EmailMessage) -> bytes:
    """The message as a file: a non-ASCII address (one that needs SMTPUTF8) is written in UTF-8,
    as an SMTPUTF8 relay would receive it, not as an encoded word nobody could reply to."""
    try:
        utf8 = needs_smtputf8(*envelope(message))
    except PermanentFailure:  # a domain with no A-label form: written all the same
        utf8 = True
    if not utf8:
        return bytes(message)
    # utf8 is a field of EmailPolicy, which typeshed's _PolicyBase.clone does not know.
    return message.as_bytes(policy=message.policy.clone(utf8=True))  # type: ignore[call-arg]


def make_transport(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SMTPTransport(settings)
    return FileTransport(settings)
