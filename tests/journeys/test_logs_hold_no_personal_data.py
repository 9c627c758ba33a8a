"""A whole endorse → confirm journey with SMTP configured logs no email address or token."""

from __future__ import annotations

import json
import logging

import pytest

from petition.logs import JsonFormatter, RequestIdFilter
from tests.conftest import BASE_URL
from tests.support import links, wait_for_mail

EMAIL = "Kontakt.Person@Soldiers-Mothers.example"

# The test's own HTTP client and SMTP server log what they send and receive; the app does not.
NOT_THE_APP = ("httpx", "httpcore", "mail.log", "asyncio")


class JsonLines(logging.Handler):
    """What LOG_FORMAT=json writes (petition.logs), kept as lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(NOT_THE_APP):
            self.lines.append(self.format(record))


@pytest.fixture
def json_lines():
    handler = JsonLines()
    logging.getLogger().addHandler(handler)
    try:
        yield handler.lines
    finally:
        logging.getLogger().removeHandler(handler)


def test_endorse_and_confirm_logs_no_email_address_or_token(site, smtp, client, caplog, json_lines):
    caplog.set_level(logging.DEBUG)
    assert site.endorse(contact_email=EMAIL, contact_name="Valentina Melnikova").status_code == 303
    [message] = wait_for_mail(smtp, "Kontakt.Person@soldiers-mothers.example")
    [link] = links(message, BASE_URL)
    token = link.split("/confirm/", 1)[1].split("?", 1)[0]
    assert site.confirm(link).status_code == 303
    thank_you = wait_for_mail(smtp, "Kontakt.Person@soldiers-mothers.example", count=2)[1]
    [receipt] = [url for url in links(thank_you, BASE_URL) if "/receipts/" in url]
    receipt_token = receipt.split("/receipts/", 1)[1].split("?", 1)[0]
    for path in ("", ".json"):
        client.get(f"/receipts/{receipt_token}{path}")
    # Also the refusals: a bad form and bad tokens.
    site.endorse(contact_email=EMAIL, country="XX")
    client.get(f"/confirm/{token}x")
    client.get(f"/receipts/{receipt_token}x.json")

    records = [r for r in caplog.records if not r.name.startswith(NOT_THE_APP)]
    assert records, "expected the app to log something (the outbox worker at least)"
    secrets = [EMAIL.lower(), "kontakt.person", "soldiers-mothers", token, token[:20], "Valentina", receipt_token]
    for record in records:
        text = " ".join([record.getMessage(), str(record.args), record.exc_text or ""]).lower()
        for secret in secrets:
            assert secret.lower() not in text, (record.name, record.getMessage())
    # The same as JSON lines: one object each, and nothing more in them than in the text.
    assert len(json_lines) == len(records)
    for line in json_lines:
        assert json.loads(line)["message"]
        for secret in secrets:
            assert secret.lower() not in line.lower(), line
