"""The audit trail of a whole life: every change of an endorsement leaves one row that names
it by number only, and the audit page finds each kind of row, and only it."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from petition.cli import main
from tests.conftest import BASE_URL, TEST_SECRET
from tests.organisers.support import add_organiser, csrf, login
from tests.support import csrf_from, db_rows, links, wait_for_mail

#: What the life cycle writes, as stored: the audit page must offer and find each.
LIFE_CYCLE_ACTIONS = {
    "endorsement.confirm",
    "endorsement.hold",
    "endorsement.release",
    "endorsement.reject",
    "endorsement.approve",
    "withdraw",
    "endorsement.purge",
}


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.chdir(tmp_path)  # no stray .env


def link(smtp, address: str, count: int, part: str) -> str:
    messages = wait_for_mail(smtp, address, count=count)
    return [found for found in links(messages[count - 1], BASE_URL) if part in found][0]


def press(client, url: str) -> None:
    """GET the page of an emailed link, then POST its one form (confirm, withdraw)."""
    path = url.replace(BASE_URL, "")
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    answer = client.post(path, data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert answer.status_code == 303, answer.status_code


def decide(client, endorsement_id: int, decision: str) -> None:
    answer = client.post(
        f"/admin/endorsements/{endorsement_id}/decision",
        data={"csrf_token": csrf(client, "/admin/"), "decision": decision},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def record_id(database_url: str, address: str) -> int:
    [row] = db_rows(database_url, "SELECT id FROM endorsements WHERE email_canonical = $1", address)
    return int(row["id"])


def test_a_whole_life_is_audited_by_number_and_each_action_filters_to_its_rows(cli_env, make_site, smtp, database_url):
    site = make_site(ip="198.51.100.90", rate_limit_ip_burst=1)
    site.endorse(
        contact_email="desk@quiet-circle.example", organisation_name="Quiet Exile Circle", visibility="anonymous"
    )
    # Over the address's limit: confirmed, these wait for the organisers.
    site.endorse(
        contact_email="office@held-group.example", organisation_name="Held Hidden Group", visibility="anonymous"
    )
    site.endorse(contact_email="never@unconfirmed.example", organisation_name="Never Confirmed Group")
    press(site.client, link(smtp, "desk@quiet-circle.example", 1, "/confirm/"))
    press(site.client, link(smtp, "office@held-group.example", 1, "/confirm/"))
    quiet = record_id(database_url, "desk@quiet-circle.example")
    held = record_id(database_url, "office@held-group.example")
    never = record_id(database_url, "never@unconfirmed.example")
    other = make_site(ip="198.51.100.91")
    other.endorse(contact_email="board@cli-approved.example", organisation_name="Approved From The Shell")
    press(other.client, link(smtp, "board@cli-approved.example", 1, "/confirm/"))
    shell = record_id(database_url, "board@cli-approved.example")
    secrets_seen = [r["token_nonce"] for r in db_rows(database_url, "SELECT token_nonce FROM endorsements")]

    add_organiser(site.client, "auditor@organisers.example", "admin")
    login(site.client, "auditor@organisers.example")
    decide(site.client, held, "release")
    decide(site.client, quiet, "reject")
    approved = CliRunner().invoke(main, ["moderate", "approve", "--appeal", "protect-deserters", "--all-confirmed"])
    assert approved.exit_code == 0, approved.output
    withdraw_link = link(smtp, "office@held-group.example", 2, "/withdraw/")
    press(site.client, withdraw_link)
    purged = CliRunner().invoke(main, ["purge", "--days", "0"])
    assert purged.exit_code == 0, purged.output

    rows = db_rows(
        database_url,
        "SELECT organiser_id, action, target_type, target_id, detail FROM audit_log "
        "WHERE target_type = 'endorsement' ORDER BY id",
    )
    assert [(r["action"], r["target_id"]) for r in rows] == [
        ("endorsement.confirm", quiet),
        ("endorsement.hold", held),
        ("endorsement.confirm", shell),
        ("endorsement.release", held),
        ("endorsement.reject", quiet),
        ("endorsement.approve", held),
        ("endorsement.approve", shell),  # the command line's, in id order
        ("withdraw", held),
        ("endorsement.purge", never),
        ("endorsement.purge", held),  # unconfirmed first, then withdrawn
    ]
    organiser_rows = {"endorsement.release", "endorsement.reject"}
    assert all((r["organiser_id"] is not None) == (r["action"] in organiser_rows) for r in rows), rows
    # Numbers only: no organisation named (an anonymous one least of all), no address, no token.
    trail = str(db_rows(database_url, "SELECT * FROM audit_log"))
    tokens = [found.rsplit("/", 1)[1].split("?")[0] for found in (withdraw_link,)]
    for secret in ("Quiet Exile", "Held Hidden", "Never Confirmed", "Approved From", "@", *secrets_seen, *tokens):
        assert secret not in trail, secret

    page = site.client.get("/admin/audit")
    offered = set(re.findall(r'<option value="([^"]+)"', page.text))
    assert LIFE_CYCLE_ACTIONS <= offered
    stored = {
        r["action"]: int(r["n"])
        for r in db_rows(database_url, "SELECT action, count(*) AS n FROM audit_log GROUP BY action")
    }
    assert LIFE_CYCLE_ACTIONS <= set(stored)
    for action in sorted(offered):
        filtered = site.client.get("/admin/audit", params={"action": action})
        assert filtered.status_code == 200, action
        expected = stored.get(action, 0)
        assert (f"{expected} entry" if expected == 1 else f"{expected} entries") in filtered.text, action
        shown = re.findall(r'data-action="([^"]*)"', filtered.text)
        assert shown == [action] * min(expected, 50), action


def test_every_action_value_is_offered_and_its_filter_shows_only_its_rows(client):
    from petition.audit.actions import AuditAction
    from petition.audit.tables import audit_log
    from petition.schema import utcnow
    from tests.organisers.support import db_of, login_as

    values = sorted(a.value for a in AuditAction)

    async def insert(db):
        async with db.write():
            # Each value a different number of times: a filter that leaks shows the wrong count.
            for n, value in enumerate(values, start=1):
                await db.execute(
                    audit_log.insert().values(
                        [
                            {
                                "organiser_id": None,
                                "action": value,
                                "target_type": "endorsement",
                                "target_id": i,
                                "detail": "",
                                "created_at": utcnow(),
                            }
                            for i in range(n % 4 + 1)
                        ]
                    )
                )

    client.portal.call(insert, db_of(client))
    login_as(client, "admin")  # one more `login` row
    page = client.get("/admin/audit")
    assert set(re.findall(r'<option value="([^"]+)"', page.text)) == set(values)
    for n, value in enumerate(values, start=1):
        expected = n % 4 + 1 + (value == AuditAction.LOGIN)
        filtered = client.get("/admin/audit", params={"action": value})
        assert filtered.status_code == 200, value
        assert re.findall(r'data-action="([^"]*)"', filtered.text) == [value] * expected, value
