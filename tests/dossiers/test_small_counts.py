"""A country's dossier does not attribute a few anonymous organisations to it (ANONYMOUS_COUNT_THRESHOLD).

A dossier for Belarus that says "and 1 organisation that asked not to be named" points at that
organisation as surely as the public pages would; so does its total, its canonical list (whose
digest may be published: with the public list of named ones, a small count is a few guesses
away) and the counts /verify shows for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from petition.appeals.queries import DEMO_SLUG, get_appeal
from petition.db import Database
from petition.dossiers.content import gather_content
from petition.dossiers.tables import dossiers
from petition.i18n import translations
from petition.schema import utcnow
from petition.settings import Settings
from tests.dossiers.factories import pdftotext, printed_checkpoint, recompute_list_digest, run
from tests.dossiers.test_dossier_pdf import build_via_worker
from tests.factories import add_endorsements, demo_appeal_id

NAMED_BY = "Белорусская правозащитная группа"


def _anonymous_phrases(language: str, counts: range) -> list[str]:
    """Every way the dossier can speak of anonymous organisations, in its language and English."""
    phrases = []
    for catalogue in (translations(language), translations("en")):
        for n in counts:
            phrases.append(
                catalogue.ngettext("%(num)s asked not to be named", "%(num)s asked not to be named", n) % {"num": n}
            )
            phrases.append(
                catalogue.ngettext(
                    "and %(num)s organisation that asked not to be named",
                    "and %(num)s organisations that asked not to be named",
                    n,
                )
                % {"num": n}
            )
    return phrases


def _attached_list(pdf: Path, tmp_path: Path) -> str:
    out = tmp_path / "list.txt"
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(out), str(pdf)], check=True, timeout=60)
    return out.read_text("utf-8")


def test_two_anonymous_belarusian_groups_are_not_attributed_to_belarus_in_its_dossier(
    client: TestClient, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    add_endorsements(
        database_url,
        rows=[
            dict(organisation_name=NAMED_BY, country="BY"),
            dict(organisation_name="Тихая группа Минск", country="BY", visibility="anonymous"),
            dict(organisation_name="Тихая группа Гродно", country="BY", visibility="anonymous", state="approved"),
        ],
    )
    appeal_id = demo_appeal_id(database_url)
    row = build_via_worker(client, settings, appeal_id, "BY")
    pdf = Path(row["file_path"])
    flat = re.sub(r"\s+", " ", pdftotext(pdf))
    assert NAMED_BY in flat
    # Not "2 asked not to be named", and not "0" either: as for a country without any.
    for phrase in _anonymous_phrases("ru", range(0, 3)):
        assert phrase not in flat, phrase
    assert "Тихая группа" not in flat
    # The list and its digest carry no small count; the stored counts neither.
    canonical = _attached_list(pdf, tmp_path)
    assert "\nnamed\t1\nanonymous\t0\n" in canonical
    assert row["list_sha256"] == recompute_list_digest(database_url, "BY", checkpoint=printed_checkpoint(pdf))
    assert row["signatory_count"] == 1 and row["anonymous_count"] == 0
    # The cover's total is the named one only (the total would tell 3 − 1 = 2 hide).
    cover = re.sub(r"\s+", " ", run("pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", pdf, "-"))
    total_label = translations("ru").gettext("Endorsing organisations")
    assert re.search(re.escape(total_label) + r" 1 ", cover), cover
    # /verify shows the dossier with nothing anonymous attributed.
    page = client.get(f"/verify?digest={row['list_sha256']}").text
    assert "Belarus" in page and "<td>1</td><td>0</td>" in page


async def _content(database_url: str, country: str, **kwargs: int):
    db = Database(database_url)
    await db.connect()
    try:
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        return await gather_content(db, appeal=appeal, country=country, **kwargs)
    finally:
        await db.disconnect()


@pytest.mark.asyncio
async def test_a_dossier_attributes_anonymous_groups_only_from_the_threshold_on(database_url: str) -> None:
    orgs = [dict(organisation_name="Named Group", country=c) for c in ("BY", "RU", "UA", "GE")]
    orgs += [
        dict(organisation_name=f"Quiet {c} {n}", country=c, visibility="anonymous")
        for c, count in (("BY", 1), ("RU", 2), ("UA", 3), ("GE", 4))
        for n in range(count)
    ]
    await asyncio.to_thread(add_endorsements, database_url, rows=orgs)
    found = {c: (await _content(database_url, c)).anonymous_count for c in ("BY", "RU", "UA", "GE")}
    assert found == {"BY": 0, "RU": 0, "UA": 3, "GE": 4}
    belarus = await _content(database_url, "BY")
    assert belarus.total_count == belarus.named_count == 1
    assert b"\nanonymous\t0\n" in belarus.canonical_list
    assert b"\nanonymous\t3\n" in (await _content(database_url, "UA")).canonical_list
    # The setting decides: from one on everything is attributed; at five, four are not.
    assert (await _content(database_url, "BY", anonymous_threshold=1)).anonymous_count == 1
    assert (await _content(database_url, "GE", anonymous_threshold=5)).anonymous_count == 0


def test_the_verify_page_does_not_attribute_a_small_stored_anonymous_count(client: TestClient) -> None:
    """A dossier stored before the threshold (or under a lower one) said "2"; /verify does not repeat it."""
    db = client.app.state.services.db
    small, enough = "ab" * 32, "cd" * 32

    async def insert() -> None:
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        async with db.write():
            for country, anonymous, digest in (("BY", 2, small), ("UA", 3, enough)):
                await db.execute(
                    dossiers.insert().values(
                        appeal_id=appeal["id"],
                        country=country,
                        state="done",
                        progress=100,
                        signatory_count=5,
                        anonymous_count=anonymous,
                        pdf_sha256=digest,
                        list_sha256=digest[::-1],
                        created_at=utcnow(),
                        finished_at=utcnow(),
                    )
                )

    client.portal.call(insert)
    belarus = client.get(f"/verify?digest={small}").text
    assert "Belarus" in belarus and "<td>5</td><td>0</td>" in belarus and "<td>2</td>" not in belarus
    ukraine = client.get(f"/verify?digest={enough}").text
    assert "Ukraine" in ukraine and "<td>5</td><td>3</td>" in ukraine


def test_no_dossier_is_offered_for_a_country_whose_only_signatories_are_a_withheld_count(
    client: TestClient, database_url: str
) -> None:
    """A Belarus dossier of nothing but "0 named" would itself say that Belarusian groups signed."""
    from tests.organisers.support import add_organiser, csrf, login

    add_endorsements(
        database_url,
        rows=[
            dict(organisation_name="Deutsche Friedensgruppe", country="DE"),
            dict(organisation_name="Тихая группа Минск", country="BY", visibility="anonymous"),
        ],
    )
    appeal_id = demo_appeal_id(database_url)
    add_organiser(client, "mod@petition.example", "moderator")
    login(client, "mod@petition.example")
    page = client.get("/admin/dossiers").text
    assert 'value="DE"' in page and 'value="BY"' not in page
    answer = client.post(
        "/admin/dossiers",
        data={"csrf_token": csrf(client, "/admin/"), "appeal": str(appeal_id), "country": "ALL"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    built = [r["country"] for r in asyncio.run(_queued(database_url))]
    assert built == ["DE"]


async def _queued(url: str) -> list:
    db = Database(url)
    await db.connect()
    try:
        return list(await db.fetch_all(dossiers.select()))
    finally:
        await db.disconnect()


@pytest.mark.asyncio
async def test_the_date_endorsed_is_the_utc_date_whatever_the_hosts_time_zone(database_url: str, monkeypatch) -> None:
    # Listed at 02:00 UTC on 1 March. PostgreSQL hands the time back naive (UTC); read as the
    # local time of a host east of UTC, it would be the evening of 28 February.
    listed = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
    await asyncio.to_thread(
        add_endorsements, database_url, rows=[dict(organisation_name="Early Group", country="DE")], listed_at=listed
    )
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        content = await _content(database_url, "DE")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [s.endorsed_on for s in content.signatories] == [dt.date(2026, 3, 1)]
