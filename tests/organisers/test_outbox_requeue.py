"""Organisers queue failed emails again: one or all, CSRF-checked and audited; they go out with
links that work, and a sent email cannot be queued again."""

from __future__ import annotations

from tests.conftest import BASE_URL
from tests.organisers.support import audit_rows, csrf, login_as
from tests.support import links, run_sql, wait_for, wait_for_mail


def states(database_url: str) -> dict[str, str]:
    return {r["to_addr"]: r["state"] for r in run_sql(database_url, "SELECT to_addr, state FROM outbox")}


def test_failed_confirmation_emails_are_queued_again_by_an_organiser(site, smtp, database_url):
    smtp.sink.refuse_with = "550 5.1.1 mailbox unavailable"
    addresses = ["first@bounced.example", "second@bounced.example", "third@bounced.example"]
    for address in addresses:
        assert site.endorse(contact_email=address, organisation_name="Org " + address).status_code == 303
    wait_for(lambda: set(states(database_url).values()) == {"failed"} and len(states(database_url)) == 3)
    smtp.sink.refuse_with = None  # the organisers fixed what the relay refused

    client = site.client
    me = login_as(client, "moderator")
    dashboard = client.get("/admin/").text
    assert 'href="/admin/outbox"' in dashboard
    page = client.get("/admin/outbox").text
    assert all(address in page for address in addresses) and "550" in page
    [first_id] = [
        r["id"] for r in run_sql(database_url, "SELECT id FROM outbox WHERE to_addr = 'first@bounced.example'")
    ]

    # Without the CSRF field: refused, nothing changes.
    assert client.post("/admin/outbox/requeue", data={"id": str(first_id)}).status_code == 403
    assert set(states(database_url).values()) == {"failed"}

    token = csrf(client, "/admin/outbox")
    response = client.post(
        "/admin/outbox/requeue", data={"csrf_token": token, "id": str(first_id)}, follow_redirects=False
    )
    assert response.status_code == 303
    [message] = wait_for_mail(smtp, "first@bounced.example")
    wait_for(lambda: states(database_url)["first@bounced.example"] == "sent")
    assert states(database_url)["second@bounced.example"] == "failed"
    [row] = audit_rows(client, "outbox.requeue")
    assert (row["organiser_id"], row["target_type"], row["target_id"]) == (me, "email", first_id)
    # Its link, signed when it was sent again, confirms the endorsement.
    [confirm_link] = [link for link in links(message, BASE_URL) if "/confirm/" in link]
    assert site.confirm(confirm_link).status_code == 303
    assert run_sql(database_url, "SELECT state FROM endorsements WHERE contact_email = 'first@bounced.example'") == [
        {"state": "confirmed"}
    ]

    # All the others at once; the sent one stays as it is.
    response = client.post("/admin/outbox/requeue", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    wait_for_mail(smtp, "second@bounced.example")
    wait_for_mail(smtp, "third@bounced.example")
    wait_for(lambda: set(states(database_url).values()) == {"sent"})
    # The first one's confirmation went once (the other email it got is the thank-you).
    assert [m["Message-ID"] for m in smtp.sink.to("first@bounced.example")].count(message["Message-ID"]) == 1
    assert len(audit_rows(client, "outbox.requeue")) == 3
    assert "No email has failed." in client.get("/admin/outbox").text
