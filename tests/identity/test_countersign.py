"""A second officer countersigns a named organisation's endorsement: "confirmed by two officers".

The contact invites another person of the organisation from the thank-you email's link; that
person's own email leads to a page whose GET shows and only whose POST countersigns. What an
attacker tries first: the contact's own mailbox in another spelling, an old invitation's link,
changing the record after it was countersigned, a flood of invitations, an anonymous record.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from typing import Any

from petition.tokens import Purpose, Tokens
from tests.conftest import BASE_URL, TEST_SECRET
from tests.organisers.support import login_as
from tests.support import SMTPServer, csrf_from, db_rows, links, mail_to, run_sql, text_body

LIST = "/appeals/protect-deserters/signatories"
MARK = "confirmed by two officers"
CONTACT = "office@zwei-leute.example"
OFFICER = "vorstand@zwei-leute.example"


def _thank_you(site: Any, smtp: SMTPServer, address: str = CONTACT, **fields: str) -> Any:
    fields.setdefault("organisation_name", "Zwei Leute e.V.")
    fields.setdefault("website", "zwei-leute.example")
    assert site.endorse(contact_email=address, **fields).status_code == 303
    [confirmation] = mail_to(smtp, address)
    [confirm_link] = links(confirmation, BASE_URL)
    assert site.confirm(confirm_link).status_code == 303
    return mail_to(smtp, address, count=2)[1]


def _invite_path(thank_you: Any) -> str:
    [url] = [u for u in links(thank_you, BASE_URL) if "/countersign/" in u]
    return url.replace(BASE_URL, "")


def _invite(site: Any, path: str, address: str) -> Any:
    page = site.client.get(path)
    assert page.status_code == 200, page.text
    return site.client.post(path, data={"csrf_token": csrf_from(page.text), "email": address}, follow_redirects=False)


def _officer_path(smtp: SMTPServer, address: str = OFFICER, count: int = 1) -> str:
    invitation = mail_to(smtp, address, count=count)[count - 1]
    [url] = [u for u in links(invitation, BASE_URL) if "/countersignature/" in u]
    return url.replace(BASE_URL, "")


def _answer(site: Any, path: str, **fields: str) -> Any:
    page = site.client.get(path)
    assert page.status_code == 200, page.text
    form = {"csrf_token": csrf_from(page.text), "action": "countersign", **fields}
    return site.client.post(path, data=form, follow_redirects=False)


def _countersign(site: Any, path: str) -> Any:
    return _answer(site, path, officer_name="Hanna Vorstand", officer_role="Chair", authorised="yes")


def _plain(page: str) -> str:
    """A page's text as read: entities decoded, the bidi isolates around names dropped."""
    return html.unescape(re.sub(r"</?bdi>", "", page))


def _marked(site: Any) -> bool:
    return MARK in site.client.get(LIST).text


def test_a_second_officer_countersigns_and_the_list_json_and_csv_say_so(site: Any, smtp: SMTPServer):
    invite_path = _invite_path(_thank_you(site, smtp))
    page = site.client.get(invite_path)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert _invite(site, invite_path, OFFICER).status_code == 303
    [invitation] = mail_to(smtp, OFFICER)
    assert "Zwei Leute e.V." in str(invitation["Subject"])
    body = text_body(invitation)
    assert "Rudi Friedrich (Coordinator)" in body  # who asks, so the officer can judge it
    # The contact's page tells the invitation went, naming the domain and never the address.
    status = _plain(site.client.get(invite_path).text)
    assert "an address at zwei-leute.example" in status and OFFICER not in status

    officer_path = _officer_path(smtp)
    # Mail scanners follow links: GETs show and change nothing.
    for _ in range(2):
        shown = site.client.get(officer_path)
        assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
        assert "Zwei Leute e.V." in shown.text and "Countersign" in shown.text
    assert not _marked(site)

    # Missing name, role and authority: the form comes back with errors first, values kept.
    wrong = _answer(site, officer_path, officer_name="Hanna Vorstand", officer_role="")
    assert wrong.status_code == 400
    assert "<title>Error:" in wrong.text and 'class="error-summary"' in wrong.text
    assert 'value="Hanna Vorstand"' in wrong.text
    assert "Please enter your role in the organisation." in wrong.text
    assert not _marked(site)

    assert _countersign(site, officer_path).status_code == 303
    assert "you countersigned" in site.client.get(officer_path).text
    assert _marked(site)
    [item] = [
        i
        for i in site.client.get("/api/appeals/protect-deserters/endorsements").json()["items"]
        if i["organisation_name"] == "Zwei Leute e.V."
    ]
    assert item["confirmed_by_two_officers"] is True
    rows = list(csv.DictReader(io.StringIO(site.client.get("/appeals/protect-deserters/endorsements.csv").text)))
    [row] = [r for r in rows if r["organisation_name"] == "Zwei Leute e.V."]
    assert row["confirmed_by_two_officers"] == "true"
    # The contact sees who countersigned; the public sees only the mark, never the name.
    assert "Hanna Vorstand (Chair) countersigned" in _plain(site.client.get(invite_path).text)
    assert "Hanna Vorstand" not in site.client.get(LIST).text
    assert "Hanna Vorstand" not in str(item)

    # The organisers see it, with the officer's name and role, and filter on it.
    login_as(site.client, "moderator")
    listed = site.client.get("/admin/endorsements?officers=two")
    assert "Zwei Leute e.V." in listed.text and MARK in listed.text
    assert "Zwei Leute e.V." not in site.client.get("/admin/endorsements?officers=declined").text
    assert site.client.get("/admin/endorsements?officers=many").status_code == 400


def test_the_contacts_own_mailbox_in_another_spelling_cannot_countersign(site: Any, smtp: SMTPServer):
    invite_path = _invite_path(_thank_you(site, smtp))
    for variant in ("Office+zweiter@Zwei-Leute.EXAMPLE", "OFFICE@zwei-leute.example"):
        refused = _invite(site, invite_path, variant)
        assert refused.status_code == 400
        assert "This is the address that endorsed." in _plain(refused.text)
        assert f'value="{variant}"' in refused.text  # the value is kept
        assert "<title>Error:" in refused.text
    assert len(mail_to(smtp, CONTACT, count=2)) == 2  # the confirmation and the thank-you only
    with smtp.sink.lock:
        assert not [m for m in smtp.sink.messages if "countersign" in str(m["Subject"]).lower()]


def test_a_new_invitation_kills_the_last_ones_link(site: Any, smtp: SMTPServer):
    invite_path = _invite_path(_thank_you(site, smtp))
    assert _invite(site, invite_path, OFFICER).status_code == 303
    first = _officer_path(smtp)
    assert _invite(site, invite_path, "kasse@zwei-leute.example").status_code == 303
    second = _officer_path(smtp, "kasse@zwei-leute.example")
    assert site.client.get(first).status_code == 404
    page = site.client.get(second)
    # A POST with the old link (a form kept open) countersigns nothing either.
    stale = site.client.post(
        first,
        data={
            "csrf_token": csrf_from(page.text),
            "action": "countersign",
            "officer_name": "X",
            "officer_role": "Y",
            "authorised": "yes",
        },
        follow_redirects=False,
    )
    assert stale.status_code == 404 and not _marked(site)
    assert _countersign(site, second).status_code == 303 and _marked(site)


def test_changing_the_record_after_the_countersignature_drops_the_mark(site: Any, smtp: SMTPServer):
    invite_path = _invite_path(_thank_you(site, smtp))
    assert _invite(site, invite_path, OFFICER).status_code == 303
    assert _countersign(site, _officer_path(smtp)).status_code == 303 and _marked(site)
    # An organiser corrects the name: the officer did not countersign this record.
    login_as(site.client, "moderator")
    listed = site.client.get("/admin/endorsements?officers=two")
    [endorsement_id] = {int(i) for i in re.findall(r"/admin/endorsements/(\d+)\"", listed.text)}
    page = site.client.get(f"/admin/endorsements/{endorsement_id}")
    fields = dict(
        re.findall(r'name="(organisation_name|country|city|organisation_type|website)" value="([^"]*)"', page.text)
    )
    fields.update(organisation_name="Drei Leute e.V.", country="DE", organisation_type="peace")
    fields["seen_at"] = re.search(r'name="seen_at" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    fields["csrf_token"] = csrf_from(page.text)
    saved = site.client.post(f"/admin/endorsements/{endorsement_id}", data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert "countersigned details changed since" in site.client.get(f"/admin/endorsements/{endorsement_id}").text
    site.client.cookies.clear()
    listing = site.client.get(LIST).text
    assert "Drei Leute e.V." in listing and MARK not in listing
    assert "no longer shows the countersignature" in _plain(site.client.get(invite_path).text)


def test_the_person_invited_can_say_it_is_not_their_organisations_doing(site: Any, smtp: SMTPServer):
    invite_path = _invite_path(_thank_you(site, smtp))
    assert _invite(site, invite_path, OFFICER).status_code == 303
    officer_path = _officer_path(smtp)
    page = site.client.get(officer_path)
    declined = site.client.post(
        officer_path, data={"csrf_token": csrf_from(page.text), "action": "decline"}, follow_redirects=False
    )
    assert declined.status_code == 303
    assert "You answered that you do not know of this endorsement" in site.client.get(officer_path).text
    # The declined link cannot countersign afterwards.
    again = site.client.post(
        officer_path,
        data={
            "csrf_token": csrf_from(page.text),
            "action": "countersign",
            "officer_name": "Hanna",
            "officer_role": "Chair",
            "authorised": "yes",
        },
        follow_redirects=False,
    )
    assert again.status_code == 303 and not _marked(site)
    assert "do not know of this endorsement" in _plain(site.client.get(invite_path).text)
    login_as(site.client, "moderator")
    flagged = site.client.get("/admin/endorsements?officers=declined").text
    assert "Zwei Leute e.V." in flagged and "second officer: not known to them" in flagged


def test_invitations_are_capped_so_no_address_becomes_a_target(site: Any, smtp: SMTPServer):
    invite_path = _invite_path(_thank_you(site, smtp))
    for n in range(3):
        assert _invite(site, invite_path, f"person{n}@zwei-leute.example").status_code == 303
    flood = _invite(site, invite_path, "person3@zwei-leute.example")
    assert flood.status_code == 429
    assert "Too many invitations have been sent today." in flood.text
    for n in range(3):
        mail_to(smtp, f"person{n}@zwei-leute.example")
    with smtp.sink.lock:
        assert not [m for m in smtp.sink.messages if "person3" in str(m["To"])]


def test_one_mailbox_gets_few_invitations_whoever_asks(site: Any, smtp: SMTPServer):
    target = "victim@elsewhere.example"
    for n in range(4):
        path = _invite_path(_thank_you(site, smtp, f"office{n}@sender{n}.example", organisation_name=f"Sender {n}"))
        answer = _invite(site, path, target)
        assert answer.status_code == (303 if n < 3 else 429)
    assert len(mail_to(smtp, target, count=3)) == 3


def test_no_countersignature_for_an_anonymous_organisation(site: Any, smtp: SMTPServer, database_url: str):
    thank_you = _thank_you(site, smtp, visibility="anonymous")
    assert not [u for u in links(thank_you, BASE_URL) if "/countersign/" in u]
    # A link made for it anyway (forged with the secret, or an older email) opens nothing.
    [row] = db_rows(
        database_url, "SELECT id, token_nonce FROM endorsements WHERE organisation_name = $1", "Zwei Leute e.V."
    )
    tokens = Tokens(TEST_SECRET)
    path = "/countersign/" + tokens.make(Purpose.COUNTERSIGN_INVITE, endorsement_id=row["id"], nonce=row["token_nonce"])
    refused = site.client.get(path)
    assert refused.status_code == 404 and "not named" in refused.text and "Zwei Leute" not in refused.text
    # Nor does an invitation written behind its back make any page or mark name it.
    run_sql(
        database_url,
        "INSERT INTO countersignatures (endorsement_id, nonce, email_domain, invited_at)"
        " VALUES (:id, :n, 'x.example', :at)",
        id=row["id"],
        n="0" * 32,
        at=dt.datetime(2026, 12, 1),
    )
    officer = "/countersignature/" + tokens.make(Purpose.COUNTERSIGN, endorsement_id=row["id"], nonce="0" * 32)
    assert site.client.get(officer).status_code == 404


def test_a_withdrawn_endorsement_can_no_longer_be_countersigned(site: Any, smtp: SMTPServer):
    thank_you = _thank_you(site, smtp)
    invite_path = _invite_path(thank_you)
    assert _invite(site, invite_path, OFFICER).status_code == 303
    officer_path = _officer_path(smtp)
    [withdraw] = [u for u in links(thank_you, BASE_URL) if "/withdraw/" in u]
    assert site.confirm(withdraw).status_code == 303
    assert site.client.get(officer_path).status_code == 404
    assert site.client.get(invite_path).status_code == 404


def test_links_are_bound_to_their_purpose_and_need_the_csrf_token(site: Any, smtp: SMTPServer):
    invite_path = _invite_path(_thank_you(site, smtp))
    token = invite_path.split("/countersign/")[1].split("?")[0]
    # The contact's link is no invitation's link.
    assert site.client.get(f"/countersignature/{token}").status_code == 400
    assert site.client.post(invite_path, data={"email": OFFICER}, follow_redirects=False).status_code == 403
    with smtp.sink.lock:
        assert not [m for m in smtp.sink.messages if "vorstand" in str(m["To"])]
