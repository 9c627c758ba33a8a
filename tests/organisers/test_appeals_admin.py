"""Appeal management: create, write texts (versioned), open, pause, close."""

from __future__ import annotations

import html

import sqlalchemy as sa

from petition.appeals.queries import get_appeal, save_text
from petition.appeals.tables import appeal_texts
from petition.appeals.textfile import content_hash
from petition.endorsements.tables import endorsements
from tests.conftest import BASE_URL
from tests.organisers.support import audit_rows, csrf, db_of, login_as, make_appeal, run
from tests.support import links, valid_form, wait_for_mail


def _texts(client, appeal_id, language):
    async def get(db):
        return [
            dict(r)
            for r in await db.fetch_all(
                appeal_texts.select()
                .where(appeal_texts.c.appeal_id == appeal_id, appeal_texts.c.language == language)
                .order_by(appeal_texts.c.version)
            )
        ]

    return client.portal.call(get, db_of(client))


def _endorsement_count(client):
    async def count(db):
        return await db.fetch_val(sa.select(sa.func.count()).select_from(endorsements))

    return client.portal.call(count, db_of(client))


def test_an_admin_creates_writes_and_opens_an_appeal(client, site):
    login_as(client, "admin")
    token = csrf(client, "/admin/appeals")
    bad = client.post(
        "/admin/appeals",
        data={"csrf_token": token, "slug": "Not A Slug!", "moderation": "pre", "default_language": "en"},
    )
    assert bad.status_code == 400 and "lower-case letters" in bad.text and 'value="not a slug!"' in bad.text
    created = client.post(
        "/admin/appeals",
        data={"csrf_token": token, "slug": "free-them", "moderation": "pre", "default_language": "de"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    appeal = run(client, get_appeal, slug="free-them")
    assert appeal["status"] == "draft" and appeal["moderation"] == "pre"
    assert client.get("/appeals/free-them").status_code == 404  # a draft is not public

    # It cannot open before its default-language text exists.
    refused = client.post(f"/admin/appeals/{appeal['id']}/status", data={"csrf_token": token, "status": "open"})
    assert refused.status_code == 400 and "before opening" in refused.text
    text_url = f"/admin/appeals/{appeal['id']}/texts/de"
    empty = client.post(text_url, data={"csrf_token": token, "title": "", "body": ""})
    assert empty.status_code == 400 and "Please enter a title." in empty.text
    saved = client.post(
        text_url,
        data={
            "csrf_token": token,
            "title": "Schützt sie",
            "addressees": "An das Parlament",
            "body": "Wir bitten **Sie**.\n\n<script>alert(1)</script>",
        },
        follow_redirects=True,
    )
    assert "A new version of the text was saved." in saved.text
    opened = client.post(
        f"/admin/appeals/{appeal['id']}/status", data={"csrf_token": token, "status": "open"}, follow_redirects=False
    )
    assert opened.status_code == 303
    public = client.get("/appeals/free-them?lang=de")
    assert public.status_code == 200 and "<strong>Sie</strong>" in public.text
    assert "<script>alert(1)</script>" not in public.text  # Markdown is rendered without raw HTML
    assert "<script>alert" not in client.get(text_url).text
    assert [r["action"] for r in audit_rows(client)][-3:] == ["appeal.create", "appeal.text", "appeal.status"]
    assert audit_rows(client, "appeal.status")[0]["detail"] == "draft -> open"


def test_editing_a_published_text_makes_a_new_version_and_keeps_the_old(client, site):
    appeal = make_appeal(client, "versioned", title="First title")
    before = _texts(client, appeal["id"], "en")
    assert [t["version"] for t in before] == [1]
    assert site.endorse(slug="versioned", contact_email="v1@example.org").status_code == 303
    login_as(client, "admin")
    token = csrf(client, "/admin/")
    url = f"/admin/appeals/{appeal['id']}/texts/en"
    response = client.post(
        url,
        data={"csrf_token": token, "title": "Second title", "addressees": "Parliament", "body": "A better text."},
        follow_redirects=False,
    )
    assert response.status_code == 303
    after = _texts(client, appeal["id"], "en")
    assert [(t["version"], t["is_current"]) for t in after] == [(1, False), (2, True)]
    assert after[0]["content_hash"] == before[0]["content_hash"] and after[0]["title"] == "First title"
    assert after[1]["content_hash"] == content_hash("Second title", "Parliament", "A better text.")
    # The endorsement still points at the version it was shown, which is still there.
    page = client.get(url)
    assert before[0]["content_hash"] in page.text and after[1]["content_hash"] in page.text
    assert "Second title" in client.get("/appeals/versioned").text
    # Saving the same text again adds nothing.
    same = client.post(
        url,
        data={"csrf_token": token, "title": "Second title", "addressees": "Parliament", "body": "A better text."},
        follow_redirects=True,
    )
    assert "unchanged" in same.text
    assert len(_texts(client, appeal["id"], "en")) == 2
    assert [r["detail"] for r in audit_rows(client, "appeal.text")] == ["language=en version=2"]


def test_save_text_versions_directly(client):
    appeal = make_appeal(client, "direct-versions")
    assert run(client, save_text, appeal_id=appeal["id"], language="fr", title="T", addressees="", body="B") == 1
    assert run(client, save_text, appeal_id=appeal["id"], language="fr", title="T", addressees="", body="B") is None
    assert run(client, save_text, appeal_id=appeal["id"], language="fr", title="T2", addressees="", body="B") == 2
    assert [t["is_current"] for t in _texts(client, appeal["id"], "fr")] == [False, True]


def test_check_your_email_stops_offering_to_send_again_once_the_appeal_is_paused(client, site):
    # The page every signer lands on reads the appeal from the public cache: a pause made in
    # this process shows there at once, not when the cached copy expires.
    appeal = make_appeal(client, "pause-after-signing")
    login_as(client, "admin")  # first: logging in starts with no cookies
    assert site.endorse(slug="pause-after-signing", contact_email="signer@example.org").status_code == 303
    check = "/appeals/pause-after-signing/check-email"
    assert "check-email/resend" in site.client.get(check).text
    assert "check-email/resend" in site.client.get(check).text  # the cached appeal, open
    paused = client.post(
        f"/admin/appeals/{appeal['id']}/status",
        data={"csrf_token": csrf(client, "/admin/"), "status": "paused"},
        follow_redirects=False,
    )
    assert paused.status_code == 303
    page = site.client.get(check)
    assert page.status_code == 200 and "signer@example.org" in html.unescape(page.text)
    assert "check-email/resend" not in page.text


def test_the_confirmation_page_shows_a_close_made_here_at_once(client, site, smtp):
    # The page the email's link opens reads the appeal from the public cache: closing the appeal
    # in this process shows there at once, and nothing is confirmed.
    appeal = make_appeal(client, "closing-soon")
    login_as(client, "admin")  # first: logging in starts with no cookies
    assert site.endorse(slug="closing-soon", contact_email="late@closing.example").status_code == 303
    [link] = links(wait_for_mail(smtp, "late@closing.example")[0], BASE_URL)
    path = link.replace(BASE_URL, "")
    assert site.client.get(path).status_code == 200  # the appeal is in the cache now
    closed = client.post(
        f"/admin/appeals/{appeal['id']}/status",
        data={"csrf_token": csrf(client, "/admin/"), "status": "closed", "confirm_close": "yes"},
        follow_redirects=False,
    )
    assert closed.status_code == 303
    page = site.client.get(path)
    assert page.status_code == 410 and "closed" in page.text.lower()


def test_a_paused_appeal_answers_503_and_stores_nothing(client, site):
    appeal = make_appeal(client, "pausable")
    assert site.endorse(slug="pausable", contact_email="before@example.org").status_code == 303
    stored = _endorsement_count(client)
    login_as(client, "admin")
    form_token = site.csrf("/appeals/pausable")  # someone opened the form before the pause
    paused = client.post(
        f"/admin/appeals/{appeal['id']}/status",
        data={"csrf_token": csrf(client, "/admin/"), "status": "paused"},
        follow_redirects=False,
    )
    assert paused.status_code == 303
    response = client.post(
        "/appeals/pausable/endorse", data={**valid_form(contact_email="during@example.org"), "csrf_token": form_token}
    )
    assert response.status_code == 503
    assert "paused" in response.text.lower()
    assert _endorsement_count(client) == stored  # nothing new, nothing lost
    client.post(f"/admin/appeals/{appeal['id']}/status", data={"csrf_token": csrf(client, "/admin/"), "status": "open"})
    assert site.endorse(slug="pausable", contact_email="after@example.org").status_code == 303
    assert _endorsement_count(client) == stored + 1
    client.post(
        f"/admin/appeals/{appeal['id']}/status",
        data={"csrf_token": csrf(client, "/admin/"), "status": "closed", "confirm_close": "yes"},
    )
    late = client.post(
        "/appeals/pausable/endorse", data={**valid_form(contact_email="late@example.org"), "csrf_token": form_token}
    )
    assert late.status_code == 410
    assert _endorsement_count(client) == stored + 1
    assert [r["detail"] for r in audit_rows(client, "appeal.status")] == [
        "open -> paused",
        "paused -> open",
        "open -> closed",
    ]


def test_changing_moderation_settings_is_audited(client):
    appeal = make_appeal(client, "settings-appeal")
    login_as(client, "admin")
    response = client.post(
        f"/admin/appeals/{appeal['id']}",
        data={
            "csrf_token": csrf(client, "/admin/"),
            "moderation": "post",
            "default_language": "en",
            "addressees": "Council of Europe",
        },
        follow_redirects=True,
    )
    assert "The settings were saved." in response.text
    row = run(client, get_appeal, slug="settings-appeal")
    assert row["moderation"] == "post" and row["addressees"] == "Council of Europe"
    [audit] = audit_rows(client, "appeal.edit")
    assert "moderation: pre -> post" in audit["detail"]
    bad = client.post(
        f"/admin/appeals/{appeal['id']}",
        data={"csrf_token": csrf(client, "/admin/"), "moderation": "sometimes", "default_language": "xx"},
    )
    assert bad.status_code == 400


def test_an_appeal_change_whose_audit_row_fails_is_not_made(client, monkeypatch):
    """An organiser's change to an appeal and its audit row commit together: if the row cannot
    be written, the appeal stays as it was (no unaudited status change, settings or text)."""
    from petition.organisers import appeal_views

    appeal = make_appeal(client, "audited-appeal")
    login_as(client, "admin")
    token = csrf(client, "/admin/")
    before = run(client, get_appeal, slug="audited-appeal")
    texts_before = _texts(client, appeal["id"], "en")

    async def broken_record(*args, **kwargs):
        raise RuntimeError("the audit table refused the row")

    monkeypatch.setattr(appeal_views, "record", broken_record)
    attempts = [
        (f"/admin/appeals/{appeal['id']}/status", {"status": "paused"}),
        (
            f"/admin/appeals/{appeal['id']}",
            {"moderation": "post", "default_language": "de", "addressees": "Someone else"},
        ),
        (
            f"/admin/appeals/{appeal['id']}/texts/en",
            {"title": "Another title", "addressees": "Them", "body": "Another body."},
        ),
    ]
    for path, data in attempts:
        try:
            response = client.post(path, data={"csrf_token": token, **data})
        except RuntimeError:
            pass  # the test client re-raises the handler's error
        else:
            assert response.status_code == 500, path
    after = run(client, get_appeal, slug="audited-appeal")
    for column in ("status", "moderation", "default_language", "addressees"):
        assert after[column] == before[column], column
    assert _texts(client, appeal["id"], "en") == texts_before
