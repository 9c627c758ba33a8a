"""Moderation: the queue, decisions singly and in bulk, corrections, hints, anonymous names."""

from __future__ import annotations

import re

from petition.appeals.states import Moderation
from petition.endorsements.lifecycle import Event, sources
from petition.organisers.moderation import domain_match
from tests.factories import add_endorsements
from tests.organisers.support import (
    audit_rows,
    csrf,
    endorsement,
    login_as,
    make_appeal,
)


def _ids_on(page) -> list[int]:
    return [int(x) for x in re.findall(r'name="ids" value="(\d+)"', page.text)]


def test_the_queue_holds_confirmed_endorsements_of_pre_moderated_appeals_only(client):
    pre = make_appeal(client, "pre-appeal", moderation=Moderation.PRE)
    post = make_appeal(client, "post-appeal", moderation=Moderation.POST)
    waiting = add_endorsements(client, 2, appeal=pre["id"])
    add_endorsements(client, appeal=pre["id"], state="pending")
    add_endorsements(client, appeal=post["id"])
    login_as(client, "moderator")
    page = client.get("/admin/moderation")
    assert sorted(_ids_on(page)) == waiting
    assert "2 endorsements are waiting for review." in client.get("/admin/").text
    # Every endorsement of any appeal is searchable and filterable by state.
    assert len(_ids_on(client.get("/admin/endorsements"))) == 4
    assert len(_ids_on(client.get(f"/admin/endorsements?state=pending&appeal={pre['id']}"))) == 1
    assert client.get("/admin/endorsements?state=bogus").status_code == 400
    email = endorsement(client, waiting[0])["contact_email"]
    assert _ids_on(client.get("/admin/endorsements", params={"q": email.upper()})) == [waiting[0]]
    assert _ids_on(client.get("/admin/endorsements", params={"q": str(waiting[1])})) == [waiting[1]]


def test_bulk_approval_of_a_thousand_endorsements_in_one_request(client):
    appeal = make_appeal(client, "big-appeal", moderation=Moderation.PRE)
    ids = add_endorsements(client, 1000, appeal=appeal["id"])
    [pending] = add_endorsements(client, appeal=appeal["id"], state="pending")
    organiser_id = login_as(client, "moderator")
    response = client.post(
        "/admin/endorsements/decisions",
        data={
            "csrf_token": csrf(client, "/admin/"),
            "decision": "approve",
            "ids": [str(i) for i in [*ids, pending]],
            "next": "/admin/moderation",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "approved=1000" in response.headers["location"]
    public = client.get("/api/appeals/big-appeal").json()
    assert public["counts"]["total"] == 1000
    # The pending one cannot go straight to approved (states.py), so it was left alone.
    assert endorsement(client, pending)["state"] == "pending"
    rows = audit_rows(client, "endorsement.approve")
    assert len(rows) == 1000 and {r["target_id"] for r in rows} == set(ids)
    assert {r["organiser_id"] for r in rows} == {organiser_id}
    first = endorsement(client, ids[0])
    assert first["state"] == "approved" and first["listed_at"] is not None and first["moderated_at"] is not None


def test_rejection_takes_a_listed_endorsement_off_every_public_list(client):
    appeal = make_appeal(client, "post-listed", moderation=Moderation.POST)
    [eid] = add_endorsements(client, appeal=appeal["id"], organisation_name="Listed Then Rejected")
    assert "Listed Then Rejected" in client.get("/appeals/post-listed/endorsements.csv").text
    login_as(client, "moderator")
    detail = client.get(f"/admin/endorsements/{eid}")
    response = client.post(
        f"/admin/endorsements/{eid}/decision",
        data={"csrf_token": csrf(client, "/admin/"), "decision": "reject"},
        follow_redirects=True,
    )
    assert response.status_code == 200 and "1 endorsement rejected." in response.text
    assert detail.status_code == 200
    assert "Listed Then Rejected" not in client.get("/appeals/post-listed/endorsements.csv").text
    assert "Listed Then Rejected" not in client.get("/appeals/post-listed/signatories").text
    assert client.get("/api/appeals/post-listed/endorsements").json()["items"] == []
    assert client.get("/api/appeals/post-listed").json()["counts"]["total"] == 0
    assert [r["target_id"] for r in audit_rows(client, "endorsement.reject")] == [eid]
    assert endorsement(client, eid)["listed_at"] is None
    # Re-approving gives it back a public date.
    client.post(
        f"/admin/endorsements/{eid}/decision", data={"csrf_token": csrf(client, "/admin/"), "decision": "approve"}
    )
    assert endorsement(client, eid)["listed_at"] is not None


def test_decisions_follow_the_transition_table():
    assert sorted(sources(Event.APPROVE)) == ["confirmed", "quarantined", "rejected"]
    assert "pending" not in sources(Event.APPROVE)
    assert "withdrawn" not in sources(Event.REJECT)
    assert sources(Event.RELEASE) == ["quarantined"]  # release, never confirm


def test_a_withdrawn_endorsement_cannot_be_approved(client):
    appeal = make_appeal(client, "withdrawn-appeal")
    [eid] = add_endorsements(client, appeal=appeal["id"], state="withdrawn")
    login_as(client, "moderator")
    page = client.get(f"/admin/endorsements/{eid}")
    assert 'value="approve"' not in page.text
    response = client.post(
        f"/admin/endorsements/{eid}/decision",
        data={"csrf_token": csrf(client, "/admin/"), "decision": "approve"},
        follow_redirects=False,
    )
    assert "approved=0" in response.headers["location"]
    assert endorsement(client, eid)["state"] == "withdrawn"
    assert audit_rows(client, "endorsement.approve") == []


def test_correcting_typos_is_validated_like_the_public_form(client):
    appeal = make_appeal(client, "typo-appeal")
    [eid] = add_endorsements(
        client, appeal=appeal["id"], organisation_name="Amnesty Internatonal", visibility="anonymous"
    )
    login_as(client, "moderator")
    token = csrf(client, "/admin/")
    form = {
        "csrf_token": token,
        "organisation_name": "Amnesty International",
        "country": "XX",
        "city": "Bonn",
        "organisation_type": "human_rights",
        "website": "not a website",
        "comment": "",
    }
    bad = client.post(f"/admin/endorsements/{eid}", data=form)
    assert bad.status_code == 400
    assert "Please enter a web address" in bad.text
    assert "Please choose the country" in bad.text
    assert 'value="Amnesty International"' in bad.text  # what was typed is kept
    assert endorsement(client, eid)["organisation_name"] == "Amnesty Internatonal"

    form.update(country="DE", website="www.amnesty.example")
    good = client.post(f"/admin/endorsements/{eid}", data=form, follow_redirects=True)
    assert good.status_code == 200 and "The corrections were saved." in good.text
    row = endorsement(client, eid)
    assert row["organisation_name"] == "Amnesty International"
    assert row["name_normalised"] == "amnesty international"
    assert row["website"] == "https://www.amnesty.example" and row["city"] == "Bonn"
    [audit] = audit_rows(client, "endorsement.edit")
    assert audit["target_id"] == eid
    # The audit names fields, not values: this organisation asked not to be named.
    assert "Amnesty" not in audit["detail"] and "organisation_name" in audit["detail"]


def test_anonymous_names_are_shown_to_organisers_only(client):
    appeal = make_appeal(client, "anon-appeal", moderation=Moderation.POST)
    secret = "Hidden Objectors Collective"
    [eid] = add_endorsements(client, appeal=appeal["id"], organisation_name=secret, visibility="anonymous")
    assert secret not in client.get("/appeals/anon-appeal/signatories").text
    assert secret not in client.get("/api/appeals/anon-appeal/endorsements").text
    assert client.get("/api/appeals/anon-appeal").json()["counts"]["total"] == 1
    login_as(client, "moderator")
    assert secret in client.get(f"/admin/endorsements/{eid}").text
    assert secret in client.get("/admin/endorsements").text
    assert "counted, not named" in client.get(f"/admin/endorsements/{eid}").text


def test_duplicate_hints_and_domain_match(client):
    appeal = make_appeal(client, "dupes")
    other = make_appeal(client, "other-appeal")
    [a] = add_endorsements(
        client,
        appeal=appeal["id"],
        organisation_name="Connection e.V.",
        country="DE",
        contact_email="office@connection.example",
        website="https://www.connection.example",
    )
    [b] = add_endorsements(client, appeal=appeal["id"], organisation_name="CONNECTION  e. V.", country="DE")
    [c] = add_endorsements(
        client,
        appeal=appeal["id"],
        organisation_name="Connection e.V.",
        country="AT",
        website="https://connection.example",
    )
    [d] = add_endorsements(client, appeal=other["id"], contact_email="office@connection.example")
    login_as(client, "moderator")
    page = client.get(f"/admin/endorsements/{a}").text
    assert "domain match" in page and "no domain match" not in page
    assert re.search(rf"same email as\s*<a href=\"/admin/endorsements/{d}\">#{d}</a>", page)
    assert re.search(rf"same name and country as\s*<a href=\"/admin/endorsements/{b}\">#{b}</a>", page)
    assert f"#{c}<" not in page  # another country is another organisation
    assert "no domain match" in client.get(f"/admin/endorsements/{c}").text


def test_domain_match_rules():
    """Through the Public Suffix List (issue 18): one registrable domain, whatever the subdomains."""
    assert domain_match("a@example.org", "https://example.org/about")
    assert domain_match("a@www.example.org", "https://example.org")
    assert domain_match("a@Example.ORG", "https://www.example.org")
    assert domain_match("a@mail.example.org", "https://example.org")  # a mail host of the same domain
    assert domain_match("info@friedensnetz.co.uk", "https://www.friedensnetz.co.uk")
    assert domain_match("info@bücher.de", "https://xn--bcher-kva.de")  # IDN: one domain, two spellings
    assert not domain_match("a@gmail.com", "https://example.org")
    assert not domain_match("a@example.org", "")
    # Under a public suffix, a neighbour is another owner: not a match.
    assert not domain_match("a@other.co.uk", "https://friedensnetz.co.uk")
    assert not domain_match("a@someone.github.io", "https://friedensnetz.github.io")
    assert not domain_match("a@co.uk", "https://co.uk")  # a suffix is nobody's domain
    assert not domain_match("a@[127.0.0.1]", "https://127.0.0.1")


def test_the_list_shows_domain_proofs_and_filters_on_them(client, database_url):
    import datetime as dt

    from tests.support import run_sql

    appeal = make_appeal(client, "proofs")
    proved, lapsed, plain = add_endorsements(
        client,
        rows=[
            dict(organisation_name="Bewiesene Gruppe", website="https://proved.example"),
            dict(organisation_name="Verfallene Gruppe", website="https://lapsed.example"),
            dict(organisation_name="Unbewiesene Gruppe"),
        ],
        appeal=appeal["id"],
    )
    at = dt.datetime(2026, 11, 30)
    for endorsement_id, domain, state in ((proved, "proved.example", "verified"), (lapsed, "lapsed.example", "lapsed")):
        run_sql(
            database_url,
            "INSERT INTO domain_proofs (endorsement_id, domain, challenge, state, created_at, expires_at,"
            " verified_at, last_result) VALUES (:id, :domain, :challenge, :state, :at, :at, :at, '')",
            id=endorsement_id,
            domain=domain,
            challenge=f"{endorsement_id:032d}",
            state=state,
            at=at,
        )
    login_as(client, "moderator")

    def names(query: str) -> set[str]:
        page = client.get(f"/admin/endorsements?appeal={appeal['id']}{query}")
        assert page.status_code == 200, page.status_code
        return {n for n in ("Bewiesene", "Verfallene", "Unbewiesene") if f"{n} Gruppe" in page.text}

    everything = client.get(f"/admin/endorsements?appeal={appeal['id']}").text
    assert "domain verified: proved.example" in everything
    assert "domain proof lapsed: lapsed.example" in everything
    assert names("") == {"Bewiesene", "Verfallene", "Unbewiesene"}
    assert names("&domain=verified") == {"Bewiesene"}
    assert names("&domain=lapsed") == {"Verfallene"}
    assert names("&domain=none") == {"Unbewiesene"}
    assert "1 endorsement" in client.get(f"/admin/endorsements?appeal={appeal['id']}&domain=verified").text
    assert client.get("/admin/endorsements?domain=maybe").status_code == 400
