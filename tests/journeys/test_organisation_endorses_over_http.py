"""An organisation endorses the demo appeal and confirms by email, over HTTP, with a real SMTP server."""

from __future__ import annotations

import csv
import io

from tests.conftest import BASE_URL
from tests.support import drain_outbox, links, text_body, translated, wait_for_mail

NAME = "Союз комитетов солдатских матерей"


def test_cyrillic_organisation_endorses_confirms_and_is_listed(site, smtp, client):
    email = "kontakt@soldiers-mothers.example"
    response = site.endorse(
        organisation_name=NAME,
        country="RU",
        city="Москва",
        contact_email=email,
        website="http://soldiers-mothers.example/about",
        lang="ru",
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/appeals/protect-deserters/check-email")
    page = client.get(response.headers["location"])
    # Whoever endorsed in Russian goes on reading Russian: the page, the email, the confirmation.
    assert '<html lang="ru"' in page.text
    assert f"<h1>{translated('Check your email', 'ru')}</h1>" in page.text

    [message] = wait_for_mail(smtp, email)
    assert message["Message-ID"]
    assert message["Content-Language"] == "ru"
    assert message["Subject"] == translated("Please confirm your endorsement", "ru")
    [link] = links(message, BASE_URL)
    assert link.startswith(f"{BASE_URL}/confirm/")
    assert NAME in text_body(message)

    # Following the link (as a mail scanner would) confirms nothing.
    shown = client.get(link.replace(BASE_URL, ""))
    assert shown.status_code == 200
    assert NAME in shown.text
    assert f"<h1>{translated('Confirm your endorsement', 'ru')}</h1>" in shown.text
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert shown.headers["Cache-Control"] == "no-store"
    assert NAME not in client.get("/appeals/protect-deserters").text
    assert client.get("/api/appeals/protect-deserters").json()["counts"]["total"] == 0

    confirmed = site.confirm(link)
    assert confirmed.status_code == 303
    done = client.get(confirmed.headers["location"])
    assert done.status_code == 200
    thanks = translated("Thank you: the endorsement of your organisation is confirmed.", "ru")
    assert f'<p role="status">{thanks}</p>' in done.text

    # Listed in the page, the list page, the JSON and the CSV.
    assert NAME in client.get("/appeals/protect-deserters").text
    assert NAME in client.get("/appeals/protect-deserters/signatories").text
    appeal = client.get("/api/appeals/protect-deserters").json()
    assert appeal["counts"] == {"total": 1, "by_country": {"RU": 1}, "unattributed": 0}
    items = client.get("/api/appeals/protect-deserters/endorsements").json()["items"]
    assert [i["organisation_name"] for i in items] == [NAME]
    assert items[0]["website"] == "https://soldiers-mothers.example/about"
    assert items[0]["city"] == "Москва"
    assert "contact_email" not in items[0] and email not in str(items)
    rows = list(csv.DictReader(io.StringIO(client.get("/appeals/protect-deserters/endorsements.csv").text)))
    assert [r["organisation_name"] for r in rows] == [NAME]

    # The thank-you email follows the confirmation.
    messages = wait_for_mail(smtp, email, count=2)
    assert len({m["Message-ID"] for m in messages}) == 2


def test_second_confirm_changes_nothing_and_is_friendly(site, smtp, client):
    email = "info@second.example"
    site.endorse(contact_email=email, organisation_name="Second Org")
    [message] = wait_for_mail(smtp, email)
    [link] = links(message, BASE_URL)
    first = site.confirm(link)
    assert first.status_code == 303
    page = client.get(link.replace(BASE_URL, ""))
    again = client.post(link.replace(BASE_URL, ""), data={"csrf_token": site.csrf()}, follow_redirects=True)
    assert again.status_code == 200
    assert 'role="status"' in again.text
    assert client.get("/api/appeals/protect-deserters").json()["counts"]["total"] == 1
    assert page.status_code == 200
    # Exactly one thank-you email, however often Confirm is pressed.
    drain_outbox(client)
    assert len(smtp.sink.to(email)) == 2
