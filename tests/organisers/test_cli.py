"""`petition organiser add EMAIL --role ...`: the password from stdin, never an argument."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from petition.cli import main
from tests.conftest import TEST_SECRET
from tests.organisers.support import login


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_organiser_add_reads_the_password_from_stdin_and_can_log_in(cli_env, client):
    runner = CliRunner()
    result = runner.invoke(
        main, ["organiser", "add", "Mia@Organisers.example", "--role", "admin"], input="a long cli password\n"
    )
    assert result.exit_code == 0, result.output
    assert "added (admin)" in result.output
    assert "a long cli password" not in result.output
    login(client, "mia@organisers.example", "a long cli password")
    assert client.get("/admin/organisers").status_code == 200

    again = runner.invoke(
        main, ["organiser", "add", "mia@organisers.example", "--role", "admin"], input="a long cli password\n"
    )
    assert again.exit_code != 0 and "exists already" in again.output

    changed = runner.invoke(main, ["organiser", "password", "mia@organisers.example"], input="another long password\n")
    assert changed.exit_code == 0, changed.output
    assert client.get("/admin/", follow_redirects=False).status_code == 303  # sessions ended
    login(client, "mia@organisers.example", "another long password")


def test_organiser_add_refuses_weak_passwords_bad_roles_and_password_arguments(cli_env):
    runner = CliRunner()
    weak = runner.invoke(main, ["organiser", "add", "x@organisers.example", "--role", "moderator"], input="short\n")
    assert weak.exit_code != 0 and "at least 12 characters" in weak.output
    role = runner.invoke(main, ["organiser", "add", "x@organisers.example", "--role", "root"], input="x" * 20)
    assert role.exit_code != 0
    argument = runner.invoke(
        main, ["organiser", "add", "x@organisers.example", "--role", "moderator", "--password", "a long cli password"]
    )
    assert argument.exit_code != 0 and "No such option" in argument.output


def test_moderate_approve_all_confirmed_lists_what_was_waiting(cli_env, client, smtp):
    from tests.conftest import BASE_URL, Site
    from tests.organisers.support import make_appeal
    from tests.support import links, wait_for_mail

    make_appeal(client, "pre-appeal")
    site = Site(client, slug="pre-appeal")
    site.endorse(contact_email="waiting@pre.example", organisation_name="Waiting Org")
    site.endorse(contact_email="unconfirmed@pre.example", organisation_name="Unconfirmed Org")
    [message] = wait_for_mail(smtp, "waiting@pre.example")
    site.confirm(links(message, BASE_URL)[0])
    assert client.get("/api/appeals/pre-appeal").json()["counts"]["total"] == 0

    result = CliRunner().invoke(main, ["moderate", "approve", "--appeal", "pre-appeal", "--all-confirmed"])
    assert result.exit_code == 0, result.output
    assert "approved 1 endorsement" in result.output
    items = client.get("/api/appeals/pre-appeal/endorsements").json()["items"]
    assert [i["organisation_name"] for i in items] == ["Waiting Org"]
    assert items[0]["endorsed_at"]

    missing = CliRunner().invoke(main, ["moderate", "approve", "--appeal", "nope", "--all-confirmed"])
    assert missing.exit_code != 0 and "no appeal" in missing.output


def test_moderate_approve_is_audited_with_no_organiser_and_record_numbers_only(cli_env, client, database_url):
    from tests.factories import add_endorsements
    from tests.organisers.support import make_appeal
    from tests.support import db_rows

    appeal = make_appeal(client, "cli-audited")
    confirmed = add_endorsements(client, 2, appeal=appeal["id"], visibility="anonymous")
    add_endorsements(client, 1, appeal=appeal["id"], state="pending", confirmed_at=None)

    result = CliRunner().invoke(main, ["moderate", "approve", "--appeal", "cli-audited", "--all-confirmed"])
    assert result.exit_code == 0, result.output
    assert "approved 2 endorsement" in result.output
    rows = db_rows(
        database_url, "SELECT organiser_id, action, target_type, target_id, detail FROM audit_log ORDER BY target_id"
    )
    assert [(r["organiser_id"], r["action"], r["target_type"], r["target_id"]) for r in rows] == [
        (None, "endorsement.approve", "endorsement", endorsement_id) for endorsement_id in confirmed
    ]
    for row in rows:
        assert "petition moderate approve" in row["detail"] and "command line" in row["detail"]
        assert "@" not in row["detail"] and "Peace Group" not in row["detail"]

    # Nothing left to approve: nothing written.
    again = CliRunner().invoke(main, ["moderate", "approve", "--appeal", "cli-audited", "--all-confirmed"])
    assert again.exit_code == 0 and "approved 0 endorsement" in again.output
    assert len(db_rows(database_url, "SELECT id FROM audit_log")) == len(rows)
