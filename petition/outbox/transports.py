"""Where queued emails go: an SMTP relay (aiosmtplib), or `.eml` files when none is set."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from petition.settings import Settings

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


class SMTPTransport:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage, *, kind: str) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=str(s.smtp_password) if s.smtp_password else None,
                use_tls=s.smtp_tls == "tls",
                start_tls=True if s.smtp_tls == "starttls" else False,
                timeout=s.smtp_timeout,
            )
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
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = str(message["Message-ID"]).strip("<>").split("@")[0]
        path = self.directory / f"{kind}-{stem}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        os.replace(tmp, path)
        log.info("email %s written to %s", kind, path)
        if kind == "confirm":
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            for link in _LINK.findall(text):
                if link.startswith(self.base_url):
                    log.warning("No SMTP_HOST set: open this link to confirm: %s", link)


def make_transport(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SMTPTransport(settings)
    return FileTransport(settings)
