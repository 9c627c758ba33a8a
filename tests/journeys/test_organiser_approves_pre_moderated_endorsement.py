"""An organiser logs in, approves an endorsement of a pre-moderated appeal, and the public sees it."""

from __future__ import annotations

from petition.appeals.states import Moderation
from tests.conftest import BASE_URL
from tests.organisers.support import add_organiser, login, make_appeal
from tests.support import csrf_from, links, wait_for_mail

NAME = "Bund für Soziale Verteidigung"


def test_moderator_approves_and_the_endorsement_is_listed(site, smtp, client):
    make_appeal(client, "asylum-for-objectors", moderation=Moderation.PRE, title="Asylum for objectors")
    email = "info@soziale-verteidigung.example"
    assert (
        site.endorse(
            slug="asylum-for-objectors",
            organisation_name=NAME,
            contact_email=email,
            website="https://www.soziale-verteidigung.example",
        ).status_code
        == 303
    )
    [message] = wait_for_mail(smtp, email)
    [link] = links(message, BASE_URL)
    assert site.confirm(link).status_code == 303

    # Confirmed, but a pre-moderated appeal lists nothing before approval.
    assert NAME not in client.get("/appeals/asylum-for-objectors/signatories").text
    assert client.get("/api/appeals/asylum-for-objectors/endorsements").json()["items"] == []

    # The organiser area is closed without a session.
    first = client.get("/admin/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/admin/login")

    add_organiser(client, "mod@organisers.example", "moderator")
    assert login(client, "mod@organisers.example").headers["location"] == "/admin/"

    queue = client.get("/admin/moderation")
    assert queue.status_code == 200
    assert NAME in queue.text
    assert "domain match" in queue.text  # info@soziale-verteidigung.example vs www.soziale-verteidigung.example
    [endorsement_id] = [int(x) for x in __import__("re").findall(r'name="ids" value="(\d+)"', queue.text)]

    approved = client.post(
        "/admin/endorsements/decisions",
        data={
            "csrf_token": csrf_from(queue.text),
            "decision": "approve",
            "ids": str(endorsement_id),
            "next": "/admin/moderation",
        },
        follow_redirects=True,
    )
    assert approved.status_code == 200
    assert "1 endorsement approved." in approved.text
    assert NAME not in approved.text  # the queue is empty now

    # Listed: the public list page and the JSON.
    assert NAME in client.get("/appeals/asylum-for-objectors/signatories").text
    items = client.get("/api/appeals/asylum-for-objectors/endorsements").json()["items"]
    assert [i["organisation_name"] for i in items] == [NAME]
    assert items[0]["endorsed_at"]
    assert client.get("/api/appeals/asylum-for-objectors").json()["counts"]["total"] == 1
