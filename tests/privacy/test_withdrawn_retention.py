"""What stays of a withdrawn endorsement, and for how long: what the privacy page says."""

from __future__ import annotations

import datetime as dt
import html

from starlette.testclient import TestClient

from petition.app import create_app
from tests.conftest import BASE_URL, Site, make_settings
from tests.support import csrf_from, db_rows, links, run_sql, wait_for, wait_for_mail

SLUG = "protect-deserters"
PERSONAL = {
    "contact_name": "Aliaksandra Private",
    "contact_role": "Secretary of the board",
    "city": "Hrodna",
    "website": "https://private-group.example",
    "comment": "We know what refusing costs.",
}


def endorse_confirm_withdraw(site: Site, smtp, email: str, name: str) -> None:
    site.endorse(contact_email=email, organisation_name=name, country="LT", **PERSONAL)
    [confirmation] = wait_for_mail(smtp, email)
    assert site.confirm(links(confirmation, BASE_URL)[0]).status_code == 303
    thank_you = wait_for_mail(smtp, email, count=2)[1]
    path = next(u for u in links(thank_you, BASE_URL) if "/withdraw/" in u).replace(BASE_URL, "")
    done = site.client.post(path, data={"csrf_token": csrf_from(site.client.get(path).text)}, follow_redirects=False)
    assert done.status_code == 303


def endorsement(database_url: str, email: str) -> dict | None:
    rows = db_rows(database_url, "SELECT * FROM endorsements WHERE email_canonical = $1", email)
    return rows[0] if rows else None


def test_withdrawn_record_keeps_only_what_the_privacy_page_says(site, smtp, client, database_url):
    email = "board@private-group.example"
    endorse_confirm_withdraw(site, smtp, email, "Private Refusers Group")

    row = endorsement(database_url, email)
    assert row is not None and row["state"] == "withdrawn"
    # Deleted at once: nothing of the person, nor where the group meets or what it said.
    assert {name: row[name] for name in PERSONAL} == dict.fromkeys(PERSONAL, "")
    for value in PERSONAL.values():
        assert value not in str(row)
    # Kept for the retention period, as the page says; nothing else holds a value.
    assert (row["organisation_name"], row["country"], row["organisation_type"], row["visibility"]) == (
        "Private Refusers Group",
        "LT",
        "peace",
        "public",
    )
    kept = {
        "organisation_name",
        "name_normalised",
        "country",
        "organisation_type",
        "visibility",
        "contact_email",
        "email_canonical",
        "authorised",
        "consent_version",
        "text_hash",
        "text_language",
        "language",  # texts agreed to
        "created_at",
        "updated_at",
        "confirmed_at",
        "moderated_at",
        "withdrawn_at",  # the dates
        "id",
        "appeal_id",
        "state",
        "token_nonce",
        "hold_reason",
    }  # the record itself
    assert {name for name, value in row.items() if value not in ("", None)} <= kept
    assert row["contact_email"] == email and row["email_canonical"] == email
    assert row["created_at"] is not None and row["withdrawn_at"] is not None
    assert "Private Refusers Group" not in client.get(f"/appeals/{SLUG}/signatories").text

    # And the privacy page says exactly that.
    page = html.unescape(client.get("/privacy").text)
    assert (
        "When an endorsement is withdrawn, the contact person's name and role, the city, the website "
        "and the comment are deleted at once."
    ) in page
    assert (
        "The organisation's name, country and type, whether it could be named, the contact email "
        "address, which texts were agreed to in which language, and the dates are kept for 30 more days"
    ) in page

    # The kept address lets the organisation endorse again, with everything it types anew.
    site.endorse(
        contact_email=email,
        organisation_name="Private Refusers Group",
        country="LT",
        contact_name="New Contact",
        city="Vilnius",
    )
    again = wait_for_mail(smtp, email, count=3)[2]
    assert site.confirm(links(again, BASE_URL)[0]).status_code == 303
    row = endorsement(database_url, email)
    assert row is not None and row["state"] in ("confirmed", "approved")
    assert (row["contact_name"], row["city"]) == ("New Contact", "Vilnius")
    assert "Private Refusers Group" in client.get(f"/appeals/{SLUG}/signatories?country=LT").text


def age(database_url: str, email: str, days: int) -> None:
    then = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).replace(tzinfo=None)
    run_sql(
        database_url,
        "UPDATE endorsements SET withdrawn_at = :t, updated_at = :t WHERE email_canonical = :e",
        t=then,
        e=email,
    )


def test_withdrawn_records_are_purged_after_the_retention_period(site, smtp, database_url, tmp_path):
    endorse_confirm_withdraw(site, smtp, "old@withdrawn.example", "Withdrawn Long Ago")
    # Endorsed again long ago too, and never confirmed: that submission goes as well.
    site.endorse(contact_email="old@withdrawn.example", organisation_name="Withdrawn Long Ago")
    wait_for_mail(smtp, "old@withdrawn.example", count=3)
    endorse_confirm_withdraw(site, smtp, "recent@withdrawn.example", "Withdrawn Last Week")
    endorse_confirm_withdraw(site, smtp, "legacy@withdrawn.example", "Withdrawn Before The Rule")
    endorse_confirm_withdraw(site, smtp, "again@withdrawn.example", "Withdrawn And Back")
    old_id = endorsement(database_url, "old@withdrawn.example")["id"]  # type: ignore[index]
    age(database_url, "old@withdrawn.example", 31)
    run_sql(
        database_url,
        "UPDATE endorsement_versions SET created_at = :t WHERE endorsement_id = :id",
        t=(dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).replace(tzinfo=None),
        id=old_id,
    )
    age(database_url, "recent@withdrawn.example", 7)
    # Withdrawn before withdrawals deleted anything: the contact's details are still there.
    run_sql(
        database_url,
        "UPDATE endorsements SET contact_name = :n, comment = :c WHERE email_canonical = :e",
        n="Legacy Person",
        c="legacy comment",
        e="legacy@withdrawn.example",
    )
    # Withdrawn long ago, endorsed again today: the new submission must not be lost.
    age(database_url, "again@withdrawn.example", 31)
    site.endorse(contact_email="again@withdrawn.example", organisation_name="Withdrawn And Back", country="LT")
    again = wait_for_mail(smtp, "again@withdrawn.example", count=3)[2]
    assert db_rows(database_url, "SELECT id FROM outbox WHERE to_addr = $1", "old@withdrawn.example")

    # The worker's periodic purge (UNCONFIRMED_RETENTION_DAYS is 30).
    settings = make_settings(database_url, tmp_path / "data2", smtp, purge_interval=0.2)
    with TestClient(create_app(settings), base_url=BASE_URL):
        wait_for(lambda: endorsement(database_url, "old@withdrawn.example") is None)
        wait_for(lambda: endorsement(database_url, "legacy@withdrawn.example")["contact_name"] == "")  # type: ignore[index]

    # Gone with its emails and its later submission; the audit trail keeps only the record's number.
    assert db_rows(database_url, "SELECT id FROM outbox WHERE to_addr = $1", "old@withdrawn.example") == []
    assert db_rows(database_url, "SELECT id FROM endorsement_versions WHERE endorsement_id = $1", old_id) == []
    audit = db_rows(
        database_url, "SELECT action FROM audit_log WHERE target_type = 'endorsement' AND target_id = $1", old_id
    )
    assert "withdraw" in [r["action"] for r in audit]
    assert "old@withdrawn.example" not in str(db_rows(database_url, "SELECT * FROM audit_log"))
    # Within the retention period: kept, as the page says, until its own day comes.
    recent = endorsement(database_url, "recent@withdrawn.example")
    assert recent is not None and recent["state"] == "withdrawn"
    legacy = endorsement(database_url, "legacy@withdrawn.example")
    assert legacy is not None and (legacy["contact_name"], legacy["comment"]) == ("", "")
    assert legacy["organisation_name"] == "Withdrawn Before The Rule"
    # The organisation that endorsed again confirms, and is listed again.
    assert site.confirm(links(again, BASE_URL)[0]).status_code == 303
    back = endorsement(database_url, "again@withdrawn.example")
    assert back is not None and back["state"] == "confirmed"
    assert "Withdrawn And Back" in site.client.get(f"/appeals/{SLUG}/signatories?country=LT").text
