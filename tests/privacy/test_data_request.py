"""A contact asks for everything stored about their endorsement and gets it as JSON."""

from __future__ import annotations

import json

from tests.conftest import BASE_URL
from tests.support import csrf_from, db_rows, drain_outbox, links, run_sql, wait_for_mail

SLUG = "protect-deserters"


def ask(client, email: str):
    page = client.get("/privacy/data")
    assert page.status_code == 200
    return client.post(
        "/privacy/data", data={"contact_email": email, "csrf_token": csrf_from(page.text)}, follow_redirects=False
    )


def test_known_contact_receives_a_link_to_all_their_data(site, smtp, client):
    email = "data@subject.example"
    site.endorse(contact_email=email, organisation_name="Data Subject Org", contact_name="Dana Subject")
    [confirmation] = wait_for_mail(smtp, email)
    site.confirm(links(confirmation, BASE_URL)[0])
    wait_for_mail(smtp, email, count=2)

    answer = ask(client, "DATA@subject.example")
    assert answer.status_code == 303 and answer.headers["location"] == "/privacy/data/sent"
    message = wait_for_mail(smtp, email, count=3)[2]
    [link] = links(message, BASE_URL)
    assert "/privacy/data/" in link

    download = client.get(link.replace(BASE_URL, ""))
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/json")
    assert download.headers["Cache-Control"] == "no-store"
    assert download.headers["Referrer-Policy"] == "no-referrer"
    assert "attachment" in download.headers["Content-Disposition"]
    data = json.loads(download.text)
    [item] = data["endorsements"]
    assert item["organisation_name"] == "Data Subject Org"
    assert item["contact_name"] == "Dana Subject"
    assert item["contact_email"] == email
    assert item["consent_version"]
    assert item["state"] == "confirmed"
    assert [s["state"] for s in item["state_history"]] == ["submitted", "confirmed", "listed"]
    assert all(s["at"].endswith("Z") for s in item["state_history"]), item["state_history"]
    assert [m["kind"] for m in item["emails"]] == ["confirm", "thank_you", "data_request"]
    assert "token_nonce" not in item

    # A token of another purpose downloads nothing.
    confirm_token = links(confirmation, BASE_URL)[0].split("/confirm/")[1].split("?")[0]
    assert client.get(f"/privacy/data/{confirm_token}").status_code == 400


def test_unknown_address_gets_the_same_answer_and_no_email(site, smtp, client):
    site.endorse(contact_email="known@subject.example")
    wait_for_mail(smtp, "known@subject.example")
    known = ask(client, "known@subject.example")
    unknown = ask(client, "nobody@subject.example")
    assert (known.status_code, known.headers["location"]) == (unknown.status_code, unknown.headers["location"])
    assert client.get(known.headers["location"]).text == client.get(unknown.headers["location"]).text
    drain_outbox(client)
    assert len(smtp.sink.to("known@subject.example")) == 2  # the confirmation, and the data
    assert smtp.sink.to("nobody@subject.example") == []


def test_invalid_address_is_a_form_error_with_the_value_kept(client):
    answer = ask(client, "not-an-address")
    assert answer.status_code == 400
    assert 'value="not-an-address"' in answer.text
    assert answer.headers["Cache-Control"] == "no-store"


def test_data_requests_are_capped(site, smtp, client, database_url):
    site.endorse(contact_email="bombed@subject.example")
    wait_for_mail(smtp, "bombed@subject.example")
    for _ in range(6):
        assert ask(client, "bombed@subject.example").status_code == 303
    drain_outbox(client)
    assert len(smtp.sink.to("bombed@subject.example")) == 4  # the confirmation and three copies
    assert len(run_sql(database_url, "SELECT id FROM outbox WHERE kind = 'data_request'")) == 3


def test_the_export_names_an_email_not_sent_yet_by_its_subject(site, smtp, database_url):
    import asyncio

    from petition.db import Database
    from petition.privacy.queries import export_data
    from petition.templating import make_environment

    smtp.stop()  # the confirmation stays queued: the worker renders an email only to send it
    site.endorse(contact_email="waiting@subject.example", lang="de")
    [row] = db_rows(database_url, "SELECT id, token_nonce FROM endorsements")

    async def export():
        db = Database(database_url)
        await db.connect()
        try:
            return await export_data(db, env=make_environment(), endorsement_id=row["id"], nonce=row["token_nonce"])
        finally:
            await db.disconnect()

    [item] = asyncio.run(export())["endorsements"]
    [email] = item["emails"]
    assert email["kind"] == "confirm" and email["state"] in ("queued", "sending")  # not sent
    assert "bestätigen" in email["subject"].lower()  # in the language it will be sent in
    assert "context" not in email  # what it says in full holds its signed link


def test_the_export_holds_the_submissions_that_wait_unconfirmed_beside_the_record(site, smtp, client):
    email = "waiting@subject.example"
    site.endorse(contact_email=email, organisation_name="First Name Org")
    site.endorse(
        contact_email="Waiting+later@subject.example", organisation_name="Later Name Org", visibility="anonymous"
    )
    wait_for_mail(smtp, email)
    ask(client, email)
    message = [m for m in wait_for_mail(smtp, email, count=2) if "/privacy/data/" in str(links(m, BASE_URL))][0]
    [link] = links(message, BASE_URL)
    [item] = json.loads(client.get(link.replace(BASE_URL, "")).text)["endorsements"]
    assert item["organisation_name"] == "First Name Org"
    [waiting] = item["waiting_submissions"]
    assert waiting["organisation_name"] == "Later Name Org" and waiting["visibility"] == "anonymous"
    assert waiting["submitted_at"].endswith("Z") and "token_nonce" not in waiting
