"""Only the mailbox owner speaks for an organisation: the attacks that once worked, one test each.

Every test runs on SQLite and on PostgreSQL (where submissions go through the grouped
intake). The attacker never reads the victim's mailbox; the victim only ever presses
the links of emails that reached it.
"""

from __future__ import annotations

import csv
import io
import itertools
import re

from starlette.testclient import TestClient

from petition.endorsements.lifecycle import MAILBOX_CONFIRMED, TRANSITIONS, Actor, Event, may
from petition.endorsements.states import EndorsementState, listed_states
from tests.conftest import BASE_URL
from tests.organisers.support import add_organiser, csrf, login
from tests.support import drain_outbox, links, run_sql, text_body, wait_for_mail

SLUG = "protect-deserters"
S = EndorsementState


def public_outputs(client: TestClient) -> str:
    return "\n".join(
        [
            client.get(f"/appeals/{SLUG}").text,
            client.get(f"/appeals/{SLUG}/signatories").text,
            client.get(f"/api/appeals/{SLUG}").text,
            client.get(f"/api/appeals/{SLUG}/endorsements").text,
            client.get(f"/appeals/{SLUG}/endorsements.csv").text,
        ]
    )


def only_link(smtp, address: str, count: int = 1) -> str:
    messages = wait_for_mail(smtp, address, count=count)
    [link] = links(messages[count - 1], BASE_URL)
    return link


def organiser_client(make_site, ip: str = "192.0.2.200"):
    site = make_site(ip=ip)
    add_organiser(site.client, "moderator@petition.example", "moderator")
    login(site.client, "moderator@petition.example")
    return site


def decide(site, endorsement_id: int, decision: str) -> None:
    answer = site.client.post(
        f"/admin/endorsements/{endorsement_id}/decision",
        data={"csrf_token": csrf(site.client, "/admin/"), "decision": decision},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


# --- 1. rewriting a pending endorsement --------------------------------------------------------


def test_third_party_cannot_rewrite_a_pending_anonymous_endorsement(make_site, smtp, database_url):
    victim = make_site(ip="198.51.100.10")
    attacker = make_site(ip="203.0.113.66")
    assert (
        victim.endorse(
            contact_email="office@exile-group.example",
            organisation_name="Belarusian Exile Group",
            country="LT",
            city="Vilnius",
            website="exile-group.example",
            visibility="anonymous",
        ).status_code
        == 303
    )
    first_link = only_link(smtp, "office@exile-group.example")
    # The same mailbox spelled with a +tag, submitted as public with the attacker's own site.
    assert (
        attacker.endorse(
            contact_email="Office+Press@Exile-Group.example",
            organisation_name="Unmasked Group",
            country="BY",
            city="Minsk",
            website="attacker.example",
            visibility="public",
        ).status_code
        == 303
    )
    # The organisation confirms the link of its own first email.
    assert victim.confirm(first_link).status_code == 303

    [row] = run_sql(database_url, "SELECT organisation_name, country, visibility, website, state FROM endorsements")
    assert row == {
        "organisation_name": "Belarusian Exile Group",
        "country": "LT",
        "visibility": "anonymous",
        "website": "https://exile-group.example",
        "state": "confirmed",
    }
    public = public_outputs(victim.client)
    for leak in ("Unmasked Group", "attacker.example", "Belarusian Exile Group", "exile-group", "Vilnius", "Minsk"):
        assert leak not in public, leak
    rows = list(csv.DictReader(io.StringIO(victim.client.get(f"/appeals/{SLUG}/endorsements.csv").text)))
    assert rows == []


def test_the_third_partys_submission_reaches_the_owner_with_its_own_facts_and_dies_unconfirmed(
    make_site, smtp, database_url
):
    victim = make_site(ip="198.51.100.11")
    attacker = make_site(ip="203.0.113.67")
    victim.endorse(
        contact_email="info@refuge.example", organisation_name="Refuge Network", country="DE", visibility="anonymous"
    )
    own_link = only_link(smtp, "info@refuge.example")
    attacker.endorse(
        contact_email="INFO+x@refuge.example",
        organisation_name="Refuge Network Named",
        country="PL",
        visibility="public",
    )
    [message] = wait_for_mail(smtp, "INFO+x@refuge.example")
    # The second email says what its link would confirm: another name, another country, named.
    body = text_body(message)
    assert "Refuge Network Named" in body and "Poland" in body and "named publicly" in body
    [their_link] = links(message, BASE_URL)
    own_body = text_body(wait_for_mail(smtp, "info@refuge.example")[0])
    assert "Germany" in own_body and "not named" in own_body
    # The confirm page repeats those facts before the button.
    page = victim.client.get(their_link.replace(BASE_URL, ""))
    assert page.status_code == 200 and "Refuge Network Named" in page.text and "Poland" in page.text
    assert victim.confirm(own_link).status_code == 303
    # Once the owner confirmed its own submission, the other link confirms nothing.
    gone = victim.client.get(their_link.replace(BASE_URL, ""))
    assert gone.status_code in (404, 410)
    assert run_sql(database_url, "SELECT count(*) AS n FROM endorsement_versions") == [{"n": 0}]
    [row] = run_sql(database_url, "SELECT organisation_name, visibility FROM endorsements")
    assert row == {"organisation_name": "Refuge Network", "visibility": "anonymous"}


def test_the_owner_may_confirm_a_later_submission_of_its_own(make_site, smtp, database_url):
    site = make_site()
    site.endorse(contact_email="desk@peace.example", organisation_name="Peace Desk", visibility="public")
    only_link(smtp, "desk@peace.example")
    site.endorse(contact_email="desk@peace.example", organisation_name="Peace Desk e.V.", visibility="anonymous")
    second = only_link(smtp, "desk@peace.example", count=2)
    assert site.confirm(second).status_code == 303
    [row] = run_sql(database_url, "SELECT organisation_name, visibility, state FROM endorsements")
    assert row == {"organisation_name": "Peace Desk e.V.", "visibility": "anonymous", "state": "confirmed"}
    assert "Peace Desk" not in public_outputs(site.client)


def test_a_withdrawn_endorsement_is_not_rewritten_by_a_new_submission(make_site, smtp, database_url):
    site = make_site(ip="198.51.100.12")
    attacker = make_site(ip="203.0.113.68")
    site.endorse(contact_email="board@union.example", organisation_name="Dock Workers Union", visibility="anonymous")
    site.confirm(only_link(smtp, "board@union.example"))
    [thanks] = [m for m in wait_for_mail(smtp, "board@union.example", count=2) if "/withdraw/" in text_body(m)]
    [withdraw] = [link for link in links(thanks, BASE_URL) if "/withdraw/" in link]
    page = site.client.get(withdraw.replace(BASE_URL, ""))
    from tests.support import csrf_from

    site.client.post(withdraw.replace(BASE_URL, ""), data={"csrf_token": csrf_from(page.text)})
    attacker.endorse(contact_email="board+x@union.example", organisation_name="Named Union", visibility="public")
    [row] = run_sql(database_url, "SELECT organisation_name, state FROM endorsements")
    assert row["state"] == "withdrawn" and row["organisation_name"] != "Named Union"
    assert "Named Union" not in public_outputs(site.client)


# --- 3. silencing someone ----------------------------------------------------------------------


def test_an_attacker_over_its_own_limit_cannot_silence_the_victim(make_site, smtp, database_url):
    attacker = make_site(ip="203.0.113.70", rate_limit_ip_burst=2)
    victim = make_site(ip="198.51.100.20", rate_limit_ip_burst=2)
    for i in range(2):
        attacker.endorse(contact_email=f"filler{i}@junk.example")
    # Over its own burst limit, the attacker submits the victim's address.
    attacker.endorse(contact_email="contact@victim-org.example", organisation_name="Fake Victim Org")
    # The victim's own submission is answered with an email all the same...
    victim.endorse(contact_email="contact@victim-org.example", organisation_name="Victim Org", country="UA")
    messages = wait_for_mail(smtp, "contact@victim-org.example", count=2)
    [own] = [m for m in messages if "Victim Org" in text_body(m) and "Fake" not in text_body(m)]
    [link] = links(own, BASE_URL)
    # ...and, confirmed, it is listed like any other: the attacker's limit held only the attacker.
    assert victim.confirm(link).status_code == 303
    [row] = run_sql(
        database_url,
        "SELECT organisation_name, state, hold_reason FROM endorsements "
        "WHERE email_canonical = 'contact@victim-org.example'",
    )
    assert row == {"organisation_name": "Victim Org", "state": "confirmed", "hold_reason": None}
    assert "Victim Org" in public_outputs(victim.client)


def test_flooding_a_domain_does_not_silence_its_addresses(make_site, smtp, database_url):
    flood = make_site(ip="203.0.113.71", rate_limit_domain=3)
    victim = make_site(ip="198.51.100.21", rate_limit_domain=3)
    for i in range(5):
        flood.endorse(contact_email=f"x{i}@shared-domain.example")
    victim.endorse(contact_email="office@shared-domain.example", organisation_name="Shared Domain Peace Group")
    link = only_link(smtp, "office@shared-domain.example")
    assert victim.confirm(link).status_code == 303
    # Held for the organisers, with the reason — never silently nowhere.
    [row] = run_sql(
        database_url,
        "SELECT id, state, hold_reason FROM endorsements WHERE email_canonical = 'office@shared-domain.example'",
    )
    assert (row["state"], row["hold_reason"]) == ("quarantined", "form.domain")
    assert "Shared Domain Peace Group" not in public_outputs(victim.client)
    organiser = organiser_client(make_site)
    queue = organiser.client.get("/admin/moderation")
    assert "Shared Domain Peace Group" in queue.text and 'value="release"' in queue.text
    decide(organiser, row["id"], "release")
    [after] = run_sql(database_url, "SELECT state, hold_reason FROM endorsements WHERE id = :id", id=row["id"])
    assert after == {"state": "confirmed", "hold_reason": None}
    assert "Shared Domain Peace Group" in public_outputs(organiser.client)


def test_a_rejected_held_record_never_answers_already_endorsed(make_site, smtp, database_url):
    site = make_site(ip="198.51.100.22", rate_limit_ip_burst=1)
    site.endorse(contact_email="first@elsewhere.example")
    site.endorse(contact_email="team@held-org.example", organisation_name="Held Org")
    site.confirm(only_link(smtp, "team@held-org.example"))
    [row] = run_sql(database_url, "SELECT id, state FROM endorsements WHERE email_canonical = 'team@held-org.example'")
    assert row["state"] == "quarantined"
    organiser = organiser_client(make_site)
    decide(organiser, row["id"], "reject")
    # The real organisation tries again: it is asked to confirm, never told "already endorsed".
    again = make_site(ip="198.51.100.23")
    again.endorse(contact_email="team@held-org.example", organisation_name="Held Org")
    messages = wait_for_mail(smtp, "team@held-org.example", count=3)
    assert not any("already" in text_body(m).lower() for m in messages)
    link = links(messages[-1], BASE_URL)[0]
    assert again.confirm(link).status_code == 303
    # Confirmed again, it goes back to the organisers who rejected it, not onto the list.
    [after] = run_sql(database_url, "SELECT state, hold_reason FROM endorsements WHERE id = :id", id=row["id"])
    assert after == {"state": "quarantined", "hold_reason": "rejected_before"}


def test_the_mailbox_cap_still_protects_a_mailbox_from_a_flood(make_site, smtp, database_url):
    site = make_site(rate_limit_email=2)
    for i in range(6):
        site.endorse(contact_email="target@flooded.example", organisation_name=f"Flood {i}")
    drain_outbox(site.client)
    assert len(smtp.sink.to("target@flooded.example")) == 2
    assert run_sql(database_url, "SELECT count(*) AS n FROM endorsement_versions") == [{"n": 1}]


# --- 4. listing without confirming -------------------------------------------------------------


def test_a_never_confirmed_record_cannot_be_approved_after_a_rejection(make_site, database_url):
    """quarantined → rejected → approved once listed a record its mailbox never confirmed."""
    organiser = organiser_client(make_site)
    from tests.factories import add_endorsements

    [appeal] = run_sql(database_url, "SELECT id FROM appeals WHERE slug = :slug", slug=SLUG)
    # As an earlier release left it: held silently, never emailed, then rejected by an organiser.
    [eid] = add_endorsements(
        organiser.client, appeal=appeal["id"], state="rejected", organisation_name="Never Asked", confirmed_at=None
    )
    page = organiser.client.get(f"/admin/endorsements/{eid}")
    assert 'value="approve"' not in page.text and 'value="release"' not in page.text
    decide(organiser, eid, "approve")
    decide(organiser, eid, "release")
    [row] = run_sql(database_url, "SELECT state, listed_at FROM endorsements WHERE id = :id", id=eid)
    assert row == {"state": "rejected", "listed_at": None}
    assert "Never Asked" not in public_outputs(organiser.client)


def test_no_path_through_the_state_machine_lists_what_its_mailbox_did_not_confirm():
    """Every path through the life cycle's table: the owner's Confirm confirms the mailbox, every
    other move keeps what was (and is made only where `may` allows), and a listed state is
    reached only with the mailbox's confirmation."""
    start = (S.PENDING, False)  # (state, confirmed by its mailbox)
    seen = {start}
    frontier = [start]
    while frontier:
        state, confirmed = frontier.pop()
        for event, move in TRANSITIONS.items():
            if move.target is None or not may(event, state, mailbox_confirmed=confirmed):
                continue
            item = (move.target, confirmed or event in (Event.CONFIRM, Event.HOLD))
            if item not in seen:
                seen.add(item)
                frontier.append(item)
    listed = {S(value) for value in itertools.chain(listed_states("pre"), listed_states("post"))}
    assert all(confirmed for state, confirmed in seen if state in listed | MAILBOX_CONFIRMED), seen
    # And the one path that once did it is closed: a never-confirmed rejection stays unlisted.
    assert not may(Event.APPROVE, S.REJECTED, mailbox_confirmed=False)
    # Nobody but the owner moves a record it never confirmed into a state that needs it.
    for event, move in TRANSITIONS.items():
        if move.target in MAILBOX_CONFIRMED and Actor.CONTACT not in move.by:
            assert not any(may(event, state, mailbox_confirmed=False) for state in S), event
    # Only its owner re-endorses a withdrawn record.
    assert {
        move.by for move in TRANSITIONS.values() if S.WITHDRAWN in move.sources and move.target in MAILBOX_CONFIRMED
    } == {frozenset({Actor.CONTACT})}


# --- found in review: the long way round -------------------------------------------------------


def _withdraw(site, smtp, address: str, count: int) -> None:
    from tests.support import csrf_from

    messages = wait_for_mail(smtp, address, count=count)
    [withdraw] = [link for m in messages for link in links(m, BASE_URL) if "/withdraw/" in link][-1:]
    page = site.client.get(withdraw.replace(BASE_URL, ""))
    assert page.status_code == 200, page.status_code  # the form, whatever the state it withdraws from
    answer = site.client.post(
        withdraw.replace(BASE_URL, ""), data={"csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert answer.status_code == 303


def test_a_rejected_organisation_cannot_list_itself_by_withdrawing_and_endorsing_again(make_site, smtp, database_url):
    site = make_site(ip="198.51.100.30")
    site.endorse(contact_email="fake@front.example", organisation_name="Front Organisation")
    site.confirm(only_link(smtp, "fake@front.example"))
    [row] = run_sql(database_url, "SELECT id FROM endorsements")
    organiser = organiser_client(make_site)
    decide(organiser, row["id"], "reject")
    # Endorse again → held for the organisers; withdraw the held one; endorse once more.
    site.endorse(contact_email="fake@front.example", organisation_name="Front Organisation")
    site.confirm(only_link(smtp, "fake@front.example", count=3))
    assert run_sql(database_url, "SELECT state FROM endorsements") == [{"state": "quarantined"}]
    _withdraw(site, smtp, "fake@front.example", count=4)
    site.endorse(contact_email="fake@front.example", organisation_name="Front Organisation")
    site.confirm(only_link(smtp, "fake@front.example", count=5))
    [after] = run_sql(database_url, "SELECT state, hold_reason FROM endorsements")
    assert after == {"state": "quarantined", "hold_reason": "rejected_before"}
    assert "Front Organisation" not in public_outputs(organiser.client)


def test_a_held_endorsement_can_be_withdrawn_from_its_email(make_site, smtp, database_url):
    site = make_site(rate_limit_ip_burst=1)
    site.endorse(contact_email="other@first.example")
    site.endorse(contact_email="board@held-group.example", organisation_name="Held Group")
    site.confirm(only_link(smtp, "board@held-group.example"))
    assert run_sql(database_url, "SELECT state FROM endorsements WHERE organisation_name = 'Held Group'") == [
        {"state": "quarantined"}
    ]
    _withdraw(site, smtp, "board@held-group.example", count=2)
    assert run_sql(database_url, "SELECT state FROM endorsements WHERE organisation_name = 'Held Group'") == [
        {"state": "withdrawn"}
    ]


def test_a_client_using_up_its_share_of_an_address_does_not_silence_the_owner(make_site, smtp, database_url):
    attacker = make_site(ip="203.0.113.80", rate_limit_email=2)
    owner = make_site(ip="198.51.100.31", rate_limit_email=2)
    for i in range(6):
        attacker.endorse(contact_email=f"office+{i}@target-ngo.example", organisation_name=f"Not Them {i}")
    owner.endorse(contact_email="office@target-ngo.example", organisation_name="Target NGO")
    messages = wait_for_mail(smtp, "office@target-ngo.example")
    assert "Target NGO" in text_body(messages[0])
    assert owner.confirm(links(messages[0], BASE_URL)[0]).status_code == 303
    [row] = run_sql(database_url, "SELECT organisation_name, state FROM endorsements")
    assert row == {"organisation_name": "Target NGO", "state": "confirmed"}


def test_withdrawing_drops_the_submissions_waiting_beside_it(make_site, smtp, database_url):
    site = make_site(ip="198.51.100.32")
    site.endorse(contact_email="desk@quiet.example", organisation_name="Quiet Group", visibility="anonymous")
    site.confirm(only_link(smtp, "desk@quiet.example"))
    _withdraw(site, smtp, "desk@quiet.example", count=2)
    site.endorse(contact_email="desk@quiet.example", organisation_name="Quiet Group Named", visibility="public")
    old_link = only_link(smtp, "desk@quiet.example", count=3)
    # Withdrawn again (the record is still withdrawn): the waiting submission goes with it.
    assert run_sql(database_url, "SELECT count(*) AS n FROM endorsement_versions") == [{"n": 1}]
    from petition.endorsements.lifecycle import withdraw_endorsement
    from tests.organisers.support import run

    [row] = run_sql(database_url, "SELECT id, token_nonce, state FROM endorsements")
    run_sql(database_url, "UPDATE endorsements SET state = 'confirmed' WHERE id = :id", id=row["id"])
    run(site.client, withdraw_endorsement, endorsement_id=row["id"], nonce=row["token_nonce"])
    assert run_sql(database_url, "SELECT count(*) AS n FROM endorsement_versions") == [{"n": 0}]
    assert site.client.get(old_link.replace(BASE_URL, "")).status_code == 404


def test_a_decision_from_a_page_opened_before_the_owner_changed_its_facts_changes_nothing(
    make_site, smtp, database_url
):
    site = make_site(ip="198.51.100.33", rate_limit_ip_burst=1)
    site.endorse(contact_email="x@elsewhere.example")
    site.endorse(
        contact_email="team@changing.example", organisation_name="Changing Group", visibility="anonymous", city="Minsk"
    )
    site.confirm(only_link(smtp, "team@changing.example"))
    [row] = run_sql(database_url, "SELECT id FROM endorsements WHERE organisation_name = 'Changing Group'")
    organiser = organiser_client(make_site)
    page = organiser.client.get(f"/admin/endorsements/{row['id']}").text
    seen_at = re.search(r'name="seen_at" value="([^"]+)"', page).group(1)
    # Meanwhile the owner confirms other facts: named now.
    again = make_site(ip="198.51.100.34")
    again.endorse(
        contact_email="team@changing.example", organisation_name="Changing Group", visibility="public", city=""
    )
    again.confirm(only_link(smtp, "team@changing.example", count=3))
    token = csrf(organiser.client, "/admin/")
    answer = organiser.client.post(
        f"/admin/endorsements/{row['id']}/decision",
        data={"csrf_token": token, "decision": "release", "seen_at": seen_at},
        follow_redirects=False,
    )
    assert "released=0" in answer.headers["location"]
    stale_edit = organiser.client.post(
        f"/admin/endorsements/{row['id']}",
        data={
            "csrf_token": token,
            "seen_at": seen_at,
            "organisation_name": "Changing Group",
            "country": "DE",
            "city": "Minsk",
            "organisation_type": "peace",
            "website": "",
            "comment": "",
        },
    )
    assert stale_edit.status_code == 400
    [after] = run_sql(database_url, "SELECT state, city, visibility FROM endorsements WHERE id = :id", id=row["id"])
    assert after == {"state": "quarantined", "city": "", "visibility": "public"}
