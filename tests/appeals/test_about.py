"""Appeals carry initiators (several organisations launch one together), a start and an optional
deadline: stored, set by text files, the demo and organisers, shown on the appeal page; past the
deadline the appeal takes no more endorsements."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from petition.appeals.about import AboutError, Initiator, about, parse_initiators
from petition.appeals.queries import get_appeal, set_about
from petition.cli import main
from petition.db import Database
from petition.privacy.housekeeping import Housekeeper
from tests.conftest import BASE_URL
from tests.factories import forget_cached
from tests.organisers.support import audit_rows, csrf, login_as, make_appeal, run
from tests.support import db_rows, links, valid_form, wait_for_mail

YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
NEXT_YEAR = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=365)


def about_paragraph(html: str) -> str:
    match = re.search(r'<p class="appeal-about">(.*?)</p>', html, re.S)
    assert match, "no appeals/_about.html paragraph"
    return " ".join(match.group(1).split())


def test_initiators_are_written_one_a_line_with_an_optional_website():
    assert parse_initiators("Connection e.V. | connection-ev.org\n\n  War  Resisters'   International ;Ёлка") == (
        Initiator("Connection e.V.", "https://connection-ev.org"),
        Initiator("War Resisters' International", None),
        Initiator("Ёлка", None),
    )
    for bad in ("A | www.friedensnetz", "A | javascript:alert(1)", "| example.org", "A | http://exa mple.org"):
        with pytest.raises(AboutError):
            parse_initiators(bad)


def test_the_deadline_is_the_last_day_endorsements_are_taken():
    row = {
        "initiators": "[]",
        "opens_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        "closes_at": dt.datetime(2027, 4, 1, tzinfo=dt.UTC),
    }
    assert about(row, now=dt.datetime(2027, 3, 31, 23, 59, tzinfo=dt.UTC)).deadline == dt.date(2027, 3, 31)
    assert not about(row, now=dt.datetime(2027, 3, 31, 23, 59, tzinfo=dt.UTC)).closed_by_deadline
    assert about(row, now=dt.datetime(2027, 4, 1, tzinfo=dt.UTC)).closed_by_deadline


def test_the_demo_appeal_names_its_initiators_and_start_in_every_language(client):
    page = client.get("/appeals/protect-deserters").text
    line = about_paragraph(page)
    assert line.startswith("Launched by ")
    assert (
        '<a href="https://peace-network.example" rel="nofollow noopener"><bdi>Demo Peace Network (demo)</bdi></a>'
        in line
    )
    assert "<bdi>Sample Refugee Council (demo)</bdi>" in line
    assert ', <a href="https://objectors-aid.example"' in line and "</a>, and <bdi>Sample" in line
    assert '<time datetime="2026-12-01">December 1, 2026</time>' in line
    assert page.index('class="appeal-about"') < page.index('class="appeal-text"')  # by the title
    german = about_paragraph(client.get("/appeals/protect-deserters?lang=de").text)
    assert german.startswith("Gestartet von ") and "1. Dezember 2026" in german and " und <bdi>" in german
    for language, word in (("ru", "1 декабря 2026"), ("uk", "1 грудня 2026"), ("fr", "1 décembre 2026")):
        assert word in about_paragraph(client.get(f"/appeals/protect-deserters?lang={language}").text)


def test_an_open_deadline_is_shown_and_a_past_one_closes_the_appeal(client, site, smtp):
    appeal = make_appeal(client, "with-deadline")
    run(
        client,
        set_about,
        appeal_id=appeal["id"],
        initiators=[Initiator("جمعية السلام")],
        start=None,
        deadline=NEXT_YEAR,
    )
    shown = client.get("/appeals/with-deadline").text
    line = about_paragraph(shown)
    assert line.startswith("Launched by <bdi>جمعية السلام</bdi> · Open for endorsements until <time")

    # Someone submitted before the deadline; then the deadline passes.
    assert site.endorse(slug="with-deadline").status_code == 303
    [message] = wait_for_mail(smtp, valid_form()["contact_email"])
    run(client, set_about, appeal_id=appeal["id"], initiators=[], start=None, deadline=YESTERDAY)
    forget_cached(client)  # the appeal was changed behind the page cache's back
    assert run(client, get_appeal, slug="with-deadline")["status"] == "closed"  # read as closed at once

    page = client.get("/appeals/with-deadline")
    assert page.status_code == 200
    assert "Closed to new endorsements since the end of" in about_paragraph(page.text)
    assert 'name="organisation_name"' not in page.text  # no form any more
    form = valid_form(contact_email="late@example.org")
    form["csrf_token"] = csrf(client, "/appeals/protect-deserters")
    late = client.post("/appeals/with-deadline/endorse", data=form, follow_redirects=False)
    assert late.status_code == 410 and "no longer accepts endorsements" in late.text
    # A confirmation after the deadline does not add to the list either.
    [link] = links(message, BASE_URL)
    page = client.get(link.replace(BASE_URL, ""))
    assert page.status_code == 410
    assert client.get("/api/appeals/with-deadline").json()["status"] == "closed"


def test_the_housekeeping_stores_the_closure_and_audits_it(client, settings, database_url):
    appeal = make_appeal(client, "past-deadline")
    run(client, set_about, appeal_id=appeal["id"], initiators=[], start=None, deadline=YESTERDAY)
    assert db_rows(database_url, f"SELECT status FROM appeals WHERE id = {appeal['id']}")[0]["status"] == "open"

    async def close() -> list[int]:
        db = Database(settings.database_url)
        await db.connect()
        try:
            return await Housekeeper(db, settings).close_appeals_past_deadline()
        finally:
            await db.disconnect()

    assert asyncio.run(close()) == [appeal["id"]]
    assert db_rows(database_url, f"SELECT status FROM appeals WHERE id = {appeal['id']}")[0]["status"] == "closed"
    [row] = [r for r in audit_rows(client, "appeal.status") if r["target_id"] == appeal["id"]]
    assert row["detail"] == "-> closed (deadline)" and row["organiser_id"] is None
    assert asyncio.run(close()) == []


def test_an_admin_sets_initiators_start_and_deadline(client):
    login_as(client, "admin")
    appeal = make_appeal(client, "joint-appeal")
    path = f"/admin/appeals/{appeal['id']}/about"
    token = csrf(client, path)
    bad = client.post(path, data={"csrf_token": token, "initiators": "A | www.friedensnetz", "start": "2026-13-01"})
    assert bad.status_code == 400
    assert "optionally followed by" in bad.text and "a date such as 2026-12-01" in bad.text
    backwards = client.post(
        path, data={"csrf_token": token, "initiators": "A", "start": "2026-12-10", "deadline": "2026-12-01"}
    )
    assert backwards.status_code == 400 and "cannot be before the start" in backwards.text
    saved = client.post(
        path,
        data={
            "csrf_token": token,
            "initiators": "Connection e.V. | connection-ev.example\r\nWar Resisters' International",
            "start": "2026-12-01",
            "deadline": NEXT_YEAR.isoformat(),
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    stored = about(run(client, get_appeal, slug="joint-appeal"))
    assert stored.initiators == (
        Initiator("Connection e.V.", "https://connection-ev.example"),
        Initiator("War Resisters' International"),
    )
    assert (stored.start, stored.deadline) == (dt.date(2026, 12, 1), NEXT_YEAR)
    assert "Connection e.V. | https://connection-ev.example" in client.get(path).text
    admin_page = client.get(f"/admin/appeals/{appeal['id']}").text
    assert "Launched by" in admin_page and path in admin_page
    assert any(r["target_id"] == appeal["id"] for r in audit_rows(client, "appeal.edit"))


def test_a_text_file_sets_them_and_a_malformed_one_is_refused(tmp_path: Path, monkeypatch, database_url):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("SIGNING_P12", "self-signed")
    header = "---\nslug: from-file\nlanguage: en\ntitle: From a file\n"
    bad = tmp_path / "bad.md"
    bad.write_text(header + "deadline: next spring\n---\nText.\n")
    result = CliRunner().invoke(main, ["appeal", "import", str(bad)])
    assert result.exit_code != 0 and "deadline must be a date" in result.output
    assert db_rows(database_url, "SELECT id FROM appeals WHERE slug = 'from-file'") == []
    good = tmp_path / "good.md"
    good.write_text(header + "initiators: A | a.example; B\nstarts: 2026-12-01\ndeadline: 2027-03-31\n---\nText.\n")
    result = CliRunner().invoke(main, ["appeal", "import", str(good)])
    assert result.exit_code == 0, result.output
    [row] = db_rows(database_url, "SELECT initiators, opens_at, closes_at FROM appeals WHERE slug = 'from-file'")
    assert row["initiators"] == '[{"name":"A","website":"https://a.example"},{"name":"B","website":null}]'
    assert str(row["opens_at"]).startswith("2026-12-01") and str(row["closes_at"]).startswith("2027-04-01")
