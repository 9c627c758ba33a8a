"""A data export holds the records of the mailbox that asked, never those of its IDNA 2003 twin.

"info@strasse.de" and "info@straße.de" are two mailboxes of two owners. Here the ß one is
an organisation that asked not to be named: its record must never reach the ss twin, not
through a merged canonical form and not through a row still stored under one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from petition.appeals.states import Moderation
from tests.conftest import BASE_URL
from tests.organisers.support import make_appeal
from tests.support import SMTPServer, csrf_from, links, mail_to, mailbox_key, run_sql, wait_for

ESZETT = "info@straße.de"
SS_TWIN = "info@strasse.de"
HIDDEN = "Straße Refuge Network"  # anonymous: named to nobody but organisers and itself


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    # Offers SMTPUTF8, as most relays do: mail reaches the ß mailbox however its domain is sent.
    server = SMTPServer(smtputf8=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def data_requests(smtp: SMTPServer) -> list[EmailMessage]:
    with smtp.sink.lock:
        return [m for m in smtp.sink.messages if any("/privacy/data/" in u for u in links(m, BASE_URL))]


def endorse_and_confirm(site: Any, smtp: SMTPServer, address: str, name: str, **fields: str) -> None:
    assert site.endorse(contact_email=address, organisation_name=name, **fields).status_code == 303
    [confirmation] = mail_to(smtp, address)
    link = next(u for u in links(confirmation, BASE_URL) if "/confirm/" in u)
    assert site.confirm(link).status_code == 303
    mail_to(smtp, address, 2)  # the thank-you email


def ask_for_data(client: Any, address: str) -> None:
    page = client.get("/privacy/data")
    answer = client.post(
        "/privacy/data", data={"contact_email": address, "csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert answer.status_code == 303


def download(client: Any, message: EmailMessage) -> dict[str, Any]:
    [link] = [u for u in links(message, BASE_URL) if "/privacy/data/" in u]
    response = client.get(link.replace(BASE_URL, ""))
    assert response.status_code == 200
    return json.loads(response.text)  # type: ignore[no-any-return]


def test_ss_twin_data_export_holds_only_its_own_records(site, smtp, client, database_url):
    make_appeal(client, "second-appeal", moderation=Moderation.POST)
    # The twin's record is the older one: the mailbox a request by either would have reached.
    endorse_and_confirm(site, smtp, SS_TWIN, "Strasse Collective")
    endorse_and_confirm(site, smtp, ESZETT, HIDDEN, visibility="anonymous", country="RU", slug="second-appeal")

    ask_for_data(client, SS_TWIN)
    [message] = wait_for(lambda: data_requests(smtp))
    assert mailbox_key(str(message["To"])) == mailbox_key(SS_TWIN)
    export = download(client, message)
    assert [item["contact_email"] for item in export["endorsements"]] == [SS_TWIN]
    assert HIDDEN not in json.dumps(export, ensure_ascii=False)

    # The ß mailbox gets its own record, and only that.
    ask_for_data(client, ESZETT)
    [_, own] = wait_for(lambda: (lambda ms: ms if len(ms) == 2 else None)(data_requests(smtp)))
    assert mailbox_key(str(own["To"])) == mailbox_key(ESZETT)
    export = download(client, own)
    assert [item["organisation_name"] for item in export["endorsements"]] == [HIDDEN]


def test_a_row_stored_under_the_old_merged_canonical_form_stays_out_of_the_twins_export(
    site, smtp, client, database_url
):
    """Defence in depth: until every stored canonical form is recomputed, a ß row may still say
    "info@strasse.de". The twin's request neither goes to it nor exports it."""
    make_appeal(client, "second-appeal", moderation=Moderation.POST)
    # The ß record is the older one here: a lookup by canonical form alone would pick it.
    endorse_and_confirm(site, smtp, ESZETT, HIDDEN, visibility="anonymous", country="RU")
    endorse_and_confirm(site, smtp, SS_TWIN, "Strasse Collective", slug="second-appeal")
    # What the IDNA 2003 code stored for the ß address.
    run_sql(
        database_url,
        "UPDATE endorsements SET email_canonical = :old WHERE contact_email = :eszett",
        old=SS_TWIN,
        eszett=ESZETT,
    )

    ask_for_data(client, SS_TWIN)
    [message] = wait_for(lambda: data_requests(smtp))
    assert mailbox_key(str(message["To"])) == mailbox_key(SS_TWIN)  # not sent to the ß mailbox
    export = download(client, message)
    assert [item["contact_email"] for item in export["endorsements"]] == [SS_TWIN]
    assert HIDDEN not in json.dumps(export, ensure_ascii=False)
