"""One endorsement per email address and appeal; the answer never tells whether it was known."""

from __future__ import annotations

from tests.conftest import BASE_URL
from tests.support import db_rows, links, text_body, wait_for


def mail_for(smtp, address, count):
    """Messages to `address` in any case of its letters, once `count` have arrived."""

    def found():
        with smtp.sink.lock:
            ms = [m for m in smtp.sink.messages if str(m["To"]).lower() == address.lower()]
        return ms if len(ms) >= count else None

    return wait_for(found)


EMAIL = "office@connection-ev.example"


def endorsements(database_url):
    return db_rows(
        database_url,
        "SELECT id, state, organisation_name, contact_email, email_canonical, confirmed_at FROM endorsements",
    )


def test_the_same_email_twice_gives_the_same_answer_and_one_endorsement(site, client, smtp, database_url):
    first = site.endorse(contact_email=EMAIL)
    second = site.endorse(contact_email="  Office@Connection-EV.example ", organisation_name="Connection")
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert client.get(first.headers["location"]).text == client.get(second.headers["location"]).text

    [row] = endorsements(database_url)
    assert row["state"] == "pending"
    assert row["email_canonical"] == EMAIL
    # While pending, the second submission sends the confirmation again, and both links work.
    messages = mail_for(smtp, EMAIL, 2)
    assert all(m["Subject"] == messages[0]["Subject"] for m in messages)
    assert len({m["Message-ID"] for m in messages}) == 2
    first_link = links(messages[0], BASE_URL)[0]
    second_link = links(messages[1], BASE_URL)[0]
    assert client.get(first_link.replace(BASE_URL, "")).status_code == 200
    assert site.confirm(second_link).status_code == 303
    assert [r["state"] for r in endorsements(database_url)] == ["confirmed"]


def test_a_confirmed_email_gets_an_already_endorsed_email_and_nothing_new(site, client, smtp, database_url):
    site.endorse(contact_email=EMAIL)
    [message] = mail_for(smtp, EMAIL, 1)
    site.confirm(links(message, BASE_URL)[0])
    [before] = endorsements(database_url)
    assert before["state"] == "confirmed"
    mail_for(smtp, EMAIL, 2)  # the thank-you email

    first = site.endorse(contact_email=EMAIL.upper(), organisation_name="Someone Else")
    assert first.status_code == 303
    assert first.headers["location"].endswith("/check-email")

    [after] = endorsements(database_url)
    assert after == before  # same row, same name, same state, same confirmation time
    messages = mail_for(smtp, EMAIL, 3)
    already = messages[-1]
    assert already["To"] == "OFFICE@connection-ev.example"
    assert "already" in already["Subject"].lower()
    # It carries no confirmation link: nothing more to confirm.
    assert not [u for u in links(already, BASE_URL) if "/confirm/" in u]
    assert "Someone Else" not in text_body(already)
    assert client.get("/api/appeals/protect-deserters").json()["counts"]["total"] == 1
    names = [i["organisation_name"] for i in client.get("/api/appeals/protect-deserters/endorsements").json()["items"]]
    assert names == ["Connection e.V."]


def test_different_emails_are_different_endorsements(site, database_url):
    site.endorse(contact_email="a@one.example")
    site.endorse(contact_email="b@one.example")
    assert len(endorsements(database_url)) == 2
