"""International addresses reach their mailbox: domains as A-labels, SMTPUTF8 where it is needed.

A real SMTP server (aiosmtpd) that records each envelope, with or without the SMTPUTF8
extension; the worker is driven by hand, one pass at a time.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from petition.db import Database
from petition.outbox.messages import Mailer
from petition.outbox.transports import FileTransport, make_transport
from petition.outbox.worker import OutboxWorker
from petition.settings import Settings
from tests.conftest import BASE_URL, make_settings
from tests.support import MailSink, SMTPServer, db_rows, links, wait_for, wait_for_mail


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    content: bytes


class EnvelopeSink(MailSink):
    """Keeps each message's envelope as well: what RCPT TO really said."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Received] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.envelopes.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    list(envelope.mail_options),
                    bytes(envelope.original_content or b""),
                )
            )
        return await super().handle_DATA(server, session, envelope)


class RelayServer(SMTPServer):
    """The test suite's SMTP server, recording envelopes, offering SMTPUTF8 or not."""

    def __init__(self, *, smtputf8: bool) -> None:
        super().__init__(smtputf8=smtputf8)
        self.sink = EnvelopeSink()

    @property
    def envelopes(self) -> list[Received]:
        return self.sink.envelopes


def relay(smtputf8: bool) -> Iterator[RelayServer]:
    server = RelayServer(smtputf8=smtputf8)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def plain_relay() -> Iterator[RelayServer]:
    """A relay without SMTPUTF8 (aiosmtpd's default, and that of some real relays)."""
    yield from relay(False)


@pytest.fixture
def utf8_relay() -> Iterator[RelayServer]:
    yield from relay(True)


@pytest.fixture
def smtp(plain_relay: RelayServer) -> RelayServer:
    """What the `site` and `client` fixtures send through: the relay without SMTPUTF8."""
    return plain_relay


def queue_and_send(database_url: str, settings: Settings, to: str, passes: int = 1) -> dict[str, Any]:
    """Queue one email to `to` as the app does, run the worker `passes` times; its outbox row."""

    async def go() -> None:
        db = Database(database_url)
        await db.connect()
        try:
            async with db.write():
                await Mailer(settings).queue(
                    db,
                    name="already_endorsed",
                    to=to,
                    language="en",
                    context={"appeal_url": BASE_URL + "/", "title": "Appeal"},
                )
            worker = OutboxWorker(db, settings, make_transport(settings))
            for _ in range(passes):
                await worker.run_once()
        finally:
            await db.disconnect()

    asyncio.run(go())
    [row] = db_rows(database_url, "SELECT * FROM outbox ORDER BY id")
    return row


def header_lines(raw: bytes, name: bytes) -> list[bytes]:
    return [line.rstrip(b"\r") for line in raw.split(b"\n") if line.lower().startswith(name.lower() + b":")]


def test_an_eszett_domain_is_delivered_to_its_a_label_by_a_relay_without_smtputf8(database_url, tmp_path, plain_relay):
    settings = make_settings(database_url, tmp_path / "data", plain_relay, run_worker=False)
    row = queue_and_send(database_url, settings, "info@straße.de")
    assert (row["state"], row["last_error"]) == ("sent", None)
    [received] = plain_relay.envelopes
    assert received.rcpt_tos == ["info@xn--strae-oqa.de"]  # not strasse.de, someone else's domain
    assert received.mail_from == "appeal@petition.example"
    assert "SMTPUTF8" not in received.mail_options
    # The To header is plain ASCII with the same A-label, not an encoded word inside the domain.
    assert header_lines(received.content, b"To") == [b"To: info@xn--strae-oqa.de"]
    [message] = plain_relay.messages
    assert message["To"] == "info@xn--strae-oqa.de"


def test_a_final_sigma_domain_keeps_its_sigma(database_url, tmp_path, plain_relay):
    settings = make_settings(database_url, tmp_path / "data", plain_relay, run_worker=False)
    queue_and_send(database_url, settings, "office@σίσυφος.gr")
    [received] = plain_relay.envelopes
    assert received.rcpt_tos == ["office@xn--kxa6ajbbmh.gr"]  # σίσυφοσ.gr would be xn--kxa6akbbkh.gr


def test_a_cyrillic_local_part_is_delivered_with_smtputf8_by_a_relay_that_offers_it(database_url, tmp_path, utf8_relay):
    settings = make_settings(database_url, tmp_path / "data", utf8_relay, run_worker=False)
    row = queue_and_send(database_url, settings, "пётр@example.org")
    assert (row["state"], row["last_error"]) == ("sent", None)
    [received] = utf8_relay.envelopes
    assert received.rcpt_tos == ["пётр@example.org"]
    assert "SMTPUTF8" in received.mail_options
    assert header_lines(received.content, b"To") == ["To: пётр@example.org".encode()]
    [message] = utf8_relay.messages
    assert message["To"] == "пётр@example.org"


def test_a_cyrillic_address_at_a_cyrillic_domain_goes_to_the_domain_a_label(database_url, tmp_path, utf8_relay):
    settings = make_settings(database_url, tmp_path / "data", utf8_relay, run_worker=False)
    row = queue_and_send(database_url, settings, "пётр@почта.рф")
    assert row["state"] == "sent"
    [received] = utf8_relay.envelopes
    assert received.rcpt_tos == ["пётр@xn--80a1acny.xn--p1ai"]
    assert "SMTPUTF8" in received.mail_options
    # A message that needs SMTPUTF8 anyway shows the address as its owner writes it.
    assert utf8_relay.messages[0]["To"] == "пётр@почта.рф"


def test_a_cyrillic_local_part_fails_at_once_with_the_reason_at_a_relay_without_smtputf8(
    database_url, tmp_path, plain_relay
):
    settings = make_settings(database_url, tmp_path / "data", plain_relay, run_worker=False)
    row = queue_and_send(database_url, settings, "пётр@example.org")
    # Not "relay unreachable", retried forever: failed, on the first attempt, saying why.
    assert row["state"] == "failed"
    assert row["attempts"] == 1
    assert row["last_error"] == "the relay does not support SMTPUTF8, needed for a non-ASCII address"
    assert row["subject"]  # kept for the contact's data export, as for any failed email
    assert plain_relay.envelopes == [] and plain_relay.messages == []


def test_a_domain_with_no_a_label_form_fails_at_once_with_the_reason(database_url, tmp_path, utf8_relay):
    # The form refuses such an address; a row written some other way still never loops.
    settings = make_settings(database_url, tmp_path / "data", utf8_relay, run_worker=False)
    row = queue_and_send(database_url, settings, "info@bad_ü.example")
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == "the address's domain is not a valid internationalised domain name"
    assert utf8_relay.envelopes == []


def test_ascii_addresses_are_sent_exactly_as_before(database_url, tmp_path, plain_relay):
    settings = make_settings(database_url, tmp_path / "data", plain_relay, run_worker=False)
    queue_and_send(database_url, settings, "Office@Connection-EV.example")
    [received] = plain_relay.envelopes
    assert received.rcpt_tos == ["Office@Connection-EV.example"]
    assert plain_relay.messages[0]["To"] == "Office@Connection-EV.example"


def test_a_contact_at_an_eszett_domain_gets_the_confirmation_through_a_relay_without_smtputf8(site, smtp, database_url):
    assert site.endorse(contact_email="info@Straße.de").status_code == 303
    [row] = db_rows(database_url, "SELECT contact_email, email_canonical FROM endorsements")
    assert row == {"contact_email": "info@straße.de", "email_canonical": "info@xn--strae-oqa.de"}
    [message] = wait_for_mail(smtp, "info@xn--strae-oqa.de")
    assert smtp.envelopes[0].rcpt_tos == ["info@xn--strae-oqa.de"]
    assert site.confirm(links(message, BASE_URL)[0]).status_code == 303
    wait_for(lambda: db_rows(database_url, "SELECT state FROM endorsements")[0]["state"] != "pending")


@pytest.mark.parametrize("to", ["пётр@example.org", "info@straße.de", "пётр@почта.рф"])
def test_the_file_transport_writes_international_addresses(tmp_path: Path, database_url, to):
    settings = make_settings(database_url, tmp_path / "data", None, run_worker=False)
    assert isinstance(make_transport(settings), FileTransport)
    queue_and_send(database_url, settings, to)
    [row] = db_rows(database_url, "SELECT state, last_error FROM outbox")
    assert row == {"state": "sent", "last_error": None}
    [path] = list(settings.mail_dir.glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    expected = {"info@straße.de": "info@xn--strae-oqa.de"}.get(to, to)
    assert message["To"] == expected
    assert b"=?utf-8?" not in b"".join(header_lines(path.read_bytes(), b"To"))
