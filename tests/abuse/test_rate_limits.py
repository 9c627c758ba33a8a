"""Bots and floods: limits hold back the sender, never the owner of an address.

Over a sender's limit (per client address, per email domain) a submission is still
emailed to its address; once its owner confirms it, it waits for an organiser and is
never counted or listed meanwhile. Only the per-address cap stores and sends nothing.
"""

from __future__ import annotations

import csv
import io

from petition.endorsements.vocabulary import canonical_email
from petition.tokens import Purpose, Tokens
from tests.conftest import BASE_URL, TEST_SECRET
from tests.support import drain_outbox, links, run_sql, wait_for_mail

SLUG = "protect-deserters"


def states(database_url: str) -> dict[str, str]:
    return {
        r["email_canonical"]: r["state"]
        for r in run_sql(database_url, "SELECT email_canonical, state FROM endorsements")
    }


def holds(database_url: str) -> dict[str, tuple[str, str | None]]:
    return {
        r["email_canonical"]: (r["state"], r["hold_reason"])
        for r in run_sql(database_url, "SELECT email_canonical, state, hold_reason FROM endorsements")
    }


def public_text(site) -> str:
    c = site.client
    return "\n".join(
        [
            c.get(f"/appeals/{SLUG}").text,
            c.get(f"/appeals/{SLUG}/signatories").text,
            c.get(f"/api/appeals/{SLUG}").text,
            c.get(f"/api/appeals/{SLUG}/endorsements").text,
            c.get(f"/appeals/{SLUG}/endorsements.csv").text,
        ]
    )


def test_ip_burst_holds_the_extra_submissions_for_review_and_still_emails_their_owners(make_site, smtp, database_url):
    site = make_site(rate_limit_ip_burst=3)
    answers = [
        site.endorse(contact_email=f"contact@org{i}.example", organisation_name=f"Burst Org {i}") for i in range(5)
    ]
    # Every submission gets the same answer: a bot cannot tell it was held.
    assert {(r.status_code, r.headers["location"]) for r in answers} == {(303, f"/appeals/{SLUG}/check-email")}
    seen = holds(database_url)
    assert [seen[f"contact@org{i}.example"] for i in range(5)] == [("pending", None)] * 3 + [("pending", "form.ip")] * 2
    # The owner of every address hears of the submission made with it.
    for i in range(5):
        wait_for_mail(smtp, f"contact@org{i}.example")


def test_ip_sustained_limit(make_site, database_url):
    site = make_site(rate_limit_ip_burst=100, rate_limit_ip_sustained=2)
    for i in range(3):
        assert site.endorse(contact_email=f"a@sustained{i}.example").status_code == 303
    assert holds(database_url)["a@sustained2.example"] == ("pending", "form.ip")


def test_held_endorsement_never_appears_publicly_even_once_confirmed(make_site, smtp, database_url):
    site = make_site(rate_limit_ip_burst=1)
    assert site.endorse(contact_email="first@good.example", organisation_name="Good Peace Group").status_code == 303
    assert (
        site.endorse(contact_email="bot@spam.example", organisation_name="Spam Flood Ltd", country="FR").status_code
        == 303
    )
    for address in ("first@good.example", "bot@spam.example"):
        [message] = wait_for_mail(smtp, address)
        [link] = links(message, BASE_URL)
        assert site.confirm(link).status_code == 303
    text = public_text(site)
    assert "Good Peace Group" in text
    assert "Spam Flood Ltd" not in text
    counts = site.client.get(f"/api/appeals/{SLUG}").json()["counts"]
    assert counts["total"] == 1 and counts["by_country"] == {"DE": 1}
    rows = list(csv.DictReader(io.StringIO(site.client.get(f"/appeals/{SLUG}/endorsements.csv").text)))
    assert [r["organisation_name"] for r in rows] == ["Good Peace Group"]
    # Organisers find it in their queue: confirmed by its mailbox, held, with the reason.
    [held] = run_sql(
        database_url,
        "SELECT organisation_name, state, hold_reason, confirmed_at FROM endorsements WHERE country = 'FR'",
    )
    assert (held["organisation_name"], held["state"], held["hold_reason"]) == (
        "Spam Flood Ltd",
        "quarantined",
        "form.ip",
    )
    assert held["confirmed_at"] is not None


def test_per_email_limit_stops_resending_to_one_address(make_site, smtp, database_url):
    site = make_site(rate_limit_email=2)
    for _ in range(4):
        assert site.endorse(contact_email="target@victim.example").status_code == 303
    drain_outbox(site.client)
    # The mailbox's own cap: past it nothing is stored or sent, and the record is left alone.
    assert states(database_url)["target@victim.example"] == "pending"
    assert len(smtp.sink.to("target@victim.example")) == 2


def test_per_domain_limit(make_site, database_url):
    site = make_site(rate_limit_domain=2)
    for i in range(3):
        site.endorse(contact_email=f"person{i}@one-domain.example")
    seen = holds(database_url)
    assert [seen[f"person{i}@one-domain.example"] for i in range(3)] == [
        ("pending", None),
        ("pending", None),
        ("pending", "form.domain"),
    ]


def test_trusted_networks_are_exempt(make_site, database_url):
    site = make_site(ip="10.1.2.3", rate_limit_ip_burst=1, rate_limit_domain=1, trusted_ips="192.0.2.1, 10.0.0.0/8")
    for i in range(3):
        site.endorse(contact_email=f"partner{i}@import.example")
    # Held ones would be pending too: none has a hold reason, over both limits.
    assert holds(database_url) == {f"partner{i}@import.example": ("pending", None) for i in range(3)}


def test_limits_are_counted_across_processes_and_store_no_addresses(make_site, database_url):
    # Two app instances (as two web processes would be) share one count through the database.
    first = make_site(ip="198.51.100.9", rate_limit_ip_burst=2)
    second = make_site(ip="198.51.100.9", rate_limit_ip_burst=2)
    first.endorse(contact_email="one@multi.example")
    second.endorse(contact_email="two@multi.example")
    first.endorse(contact_email="three@multi.example")
    assert holds(database_url)["three@multi.example"] == ("pending", "form.ip"), run_sql(
        database_url, "SELECT bucket, key_hash, created_at FROM rate_events"
    )
    dump = str(run_sql(database_url, "SELECT bucket, key_hash FROM rate_events"))
    assert "198.51.100.9" not in dump and "multi.example" not in dump and "one@" not in dump


def test_emails_are_canonicalised_for_duplicate_checks(make_site, smtp, database_url):
    site = make_site()
    site.endorse(contact_email="Office+Petition@Example.ORG")
    site.endorse(contact_email="office@example.org", organisation_name="Same Mailbox e.V.")
    # One mailbox, one record: the second submission waits beside it and changes nothing.
    rows = run_sql(database_url, "SELECT organisation_name, email_canonical FROM endorsements")
    assert rows == [{"organisation_name": "Connection e.V.", "email_canonical": "office@example.org"}]
    [version] = run_sql(database_url, "SELECT data FROM endorsement_versions")
    assert "Same Mailbox e.V." in version["data"]
    assert canonical_email("J.Doe+x@GoogleMail.com") == canonical_email("jdoe@gmail.com")
    assert canonical_email("a.b@example.org") != canonical_email("ab@example.org")


def test_resending_a_confirmation_is_capped(make_site, smtp, database_url):
    site = make_site(rate_limit_resend=2)
    site.endorse(contact_email="slow@reader.example")
    wait_for_mail(smtp, "slow@reader.example")
    [row] = run_sql(database_url, "SELECT id, token_nonce FROM endorsements")
    token = Tokens(TEST_SECRET).make(Purpose.CONFIRM, endorsement_id=row["id"], nonce=row["token_nonce"])
    for _ in range(5):
        answer = site.client.post(
            "/confirm/resend", data={"token": token, "csrf_token": site.csrf()}, follow_redirects=False
        )
        assert answer.status_code == 303
    drain_outbox(site.client)
    assert len(smtp.sink.to("slow@reader.example")) == 3  # the first, and two resends


def test_resend_is_limited_per_ip_too(make_site, smtp, database_url):
    site = make_site(rate_limit_resend=100, rate_limit_ip_burst=1)
    site.endorse(contact_email="x@resend-ip.example")
    [row] = run_sql(database_url, "SELECT id, token_nonce FROM endorsements")
    token = Tokens(TEST_SECRET).make(Purpose.CONFIRM, endorsement_id=row["id"], nonce=row["token_nonce"])
    for _ in range(3):
        site.client.post("/confirm/resend", data={"token": token, "csrf_token": site.csrf()})
    drain_outbox(site.client)
    assert len(smtp.sink.to("x@resend-ip.example")) == 2  # the first, and one resend


def test_pause_switch_stops_intake_with_a_clear_503(make_site, database_url):
    site = make_site(intake_paused=True)
    answer = site.endorse(contact_email="during@pause.example")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert "paused" in answer.text.lower()
    assert run_sql(database_url, "SELECT id FROM endorsements") == []
