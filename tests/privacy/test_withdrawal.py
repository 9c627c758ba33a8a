"""Suzie withdraws her organisation's endorsement with the link from the thank-you email."""

from __future__ import annotations

from tests.conftest import BASE_URL
from tests.support import csrf_from, links, run_sql, wait_for_mail

SLUG = "protect-deserters"
NAME = "Withdrawing Peace Network"


def endorse_and_confirm(site, smtp, email: str, **fields: str):
    site.endorse(contact_email=email, organisation_name=NAME, **fields)
    [confirmation] = wait_for_mail(smtp, email)
    confirm_links = links(confirmation, BASE_URL)
    assert len(confirm_links) == 1  # the confirmation email keeps exactly one link
    assert site.confirm(confirm_links[0]).status_code == 303
    thank_you = wait_for_mail(smtp, email, count=2)[1]
    return confirm_links[0], thank_you


def public(client) -> str:
    return "\n".join(
        client.get(p).text
        for p in (
            f"/appeals/{SLUG}",
            f"/appeals/{SLUG}/signatories",
            f"/api/appeals/{SLUG}/endorsements",
            f"/appeals/{SLUG}/endorsements.csv",
        )
    )


def test_withdrawal_link_removes_the_organisation_at_once(site, smtp, client, database_url):
    email = "suzie@withdraw.example"
    confirm_link, thank_you = endorse_and_confirm(site, smtp, email)
    assert NAME in public(client)
    withdraw_links = [u for u in links(thank_you, BASE_URL) if "/withdraw/" in u]
    assert len(withdraw_links) == 1
    path = withdraw_links[0].replace(BASE_URL, "")
    # The HTML part carries the same link.
    assert withdraw_links[0].replace("&", "&amp;") in thank_you.get_body(("html",)).get_content()

    # A mail scanner following the link changes nothing.
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert NAME in public(client)

    # Without the CSRF field nothing happens.
    assert client.post(path, data={}).status_code == 403
    assert NAME in public(client)

    done = client.post(path, data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert done.status_code == 303
    shown = client.get(done.headers["location"])
    assert 'role="status"' in shown.text
    assert NAME not in public(client)
    assert client.get(f"/api/appeals/{SLUG}").json()["counts"]["total"] == 0
    [row] = run_sql(database_url, "SELECT state, withdrawn_at, listed_at FROM endorsements")
    assert row["state"] == "withdrawn" and row["withdrawn_at"] is not None and row["listed_at"] is None

    # Pressing again is harmless; the confirmation link cannot bring it back.
    again = client.post(path, data={"csrf_token": csrf_from(page.text)}, follow_redirects=True)
    assert again.status_code == 200
    assert client.get(confirm_link.replace(BASE_URL, "")).status_code == 410
    assert NAME not in public(client)


def test_withdrawal_token_has_its_own_salt(site, smtp, client):
    confirm_link, thank_you = endorse_and_confirm(site, smtp, "salt@withdraw.example")
    confirm_token = confirm_link.replace(BASE_URL, "").split("/confirm/")[1].split("?")[0]
    withdraw_url = next(u for u in links(thank_you, BASE_URL) if "/withdraw/" in u)
    withdraw_token = withdraw_url.replace(BASE_URL, "").split("/withdraw/")[1].split("?")[0]
    # A confirmation token cannot withdraw, a withdrawal token cannot confirm.
    assert client.get(f"/withdraw/{confirm_token}").status_code == 400
    assert client.get(f"/confirm/{withdraw_token}").status_code == 400
    assert client.get("/withdraw/garbage").status_code == 400
    assert NAME in public(client)


def test_anonymous_endorsement_withdrawn_leaves_the_counts(site, smtp, client):
    _link, thank_you = endorse_and_confirm(site, smtp, "anon@withdraw.example", visibility="anonymous")
    assert client.get(f"/api/appeals/{SLUG}").json()["counts"]["total"] == 1
    path = next(u for u in links(thank_you, BASE_URL) if "/withdraw/" in u).replace(BASE_URL, "")
    client.post(path, data={"csrf_token": csrf_from(client.get(path).text)})
    assert client.get(f"/api/appeals/{SLUG}").json()["counts"]["total"] == 0
