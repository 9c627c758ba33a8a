"""News for endorsers, over HTTP with a real SMTP server: who asks for it on the form, what an
admin sends to whom and in which language, and the unsubscribe link (RFC 8058 one-click)."""

from __future__ import annotations

import re

import pytest

from petition.tokens import Purpose, Tokens
from tests.conftest import BASE_URL, TEST_SECRET
from tests.organisers.support import audit_rows, csrf, endorsement, login_as
from tests.support import drain_outbox, html_body, links, mail_to, text_body, wait_for_mail

SLUG = "protect-deserters"


def endorse_and_confirm(site, smtp, email: str, *, news: bool, country: str = "DE", lang: str = "en", **fields):
    form = {"contact_email": email, "country": country, "organisation_name": f"Group {email.split('@')[0]}", **fields}
    if news:
        form["news"] = "yes"
    assert site.endorse(lang=lang, **form).status_code == 303
    drain_outbox(site.client)
    [confirmation] = wait_for_mail(smtp, email)
    assert site.confirm(links(confirmation, BASE_URL)[0]).status_code == 303
    drain_outbox(site.client)
    wait_for_mail(smtp, email, count=2)  # the thank-you email


def endorsement_id(site, email: str) -> int:
    from petition.endorsements.tables import endorsements

    async def find(db):
        return await db.fetch_val(
            endorsements.select().with_only_columns(endorsements.c.id).where(endorsements.c.contact_email == email)
        )

    return int(site.client.portal.call(find, site.client.app.state.services.db))


def appeal_id(site) -> int:
    page = site.client.get("/admin/appeals")
    return int(re.search(r'href="/admin/appeals/(\d+)"', page.text).group(1))


def send_update(client, appeal: int, *, country: str = "", texts: dict[str, tuple[str, str]], confirm: bool = True):
    path = f"/admin/appeals/{appeal}/news"
    form = {"csrf_token": csrf(client, path), "country": country}
    for language, (subject, body) in texts.items():
        form[f"subject_{language}"], form[f"body_{language}"] = subject, body
    preview = client.post(path, data={**form, "action": "preview"})
    assert preview.status_code == 200, preview.text[:2000]
    form["action"] = "send"
    if confirm:
        form["confirm_send"] = "yes"
    return preview, client.post(path, data=form, follow_redirects=False)


def news_to(smtp, address: str) -> list:
    return [m for m in mail_to(smtp, address, count=0) if m["List-Unsubscribe"]]


TEXTS = {
    "en": ("Hearing in the petitions committee", "The committee hears the appeal on 12 January.\n\nThank you!"),
    "de": ("Anhörung im Petitionsausschuss", "Der Ausschuss hört den Aufruf am 12. Januar an.\n\nDanke!"),
}


def test_the_news_box_is_optional_unticked_and_recorded_with_its_version_and_time(site, smtp):
    page = site.client.get(f"/appeals/{SLUG}").text
    box = re.search(r'<input type="checkbox" id="f-news" name="news"[^>]*>', page).group(0)
    assert "checked" not in box and "required" not in box
    assert 'for="f-news"' in page
    endorse_and_confirm(site, smtp, "yes@news.example", news=True)
    endorse_and_confirm(site, smtp, "no@news.example", news=False)
    asked = endorsement(site.client, endorsement_id(site, "yes@news.example"))
    assert asked["news_consent_version"] == "2026-12" and asked["news_consented_at"] is not None
    assert asked["news_unsubscribed_at"] is None
    not_asked = endorsement(site.client, endorsement_id(site, "no@news.example"))
    assert not_asked["news_consent_version"] is None and not_asked["news_consented_at"] is None
    # The admins' contact export says who asked for news.
    import csv
    import io

    login_as(site.client, "admin")
    export = site.client.post(
        "/admin/export",
        data={"csrf_token": csrf(site.client, "/admin/export"), "appeal": str(appeal_id(site)), "state": "confirmed"},
    )
    rows = {r["contact_email"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert rows["yes@news.example"]["news_consent_version"] == "2026-12"
    assert rows["yes@news.example"]["news_consented_at"].startswith("20")
    assert rows["no@news.example"]["news_consent_version"] == ""


def test_an_update_reaches_only_confirmed_opted_in_organisations_of_its_country_in_their_language(site, smtp):
    client = site.client
    endorse_and_confirm(site, smtp, "de-news@group.example", news=True, lang="de")
    endorse_and_confirm(site, smtp, "en-news@group.example", news=True, lang="en")
    endorse_and_confirm(site, smtp, "ru-news@group.example", news=True, lang="ru")  # no Russian text: the default
    endorse_and_confirm(site, smtp, "quiet@group.example", news=False, lang="de")
    endorse_and_confirm(site, smtp, "fr-news@group.example", news=True, country="FR", lang="fr")
    # Ticked, never confirmed: no news.
    assert site.endorse(lang="de", contact_email="pending@group.example", news="yes").status_code == 303
    wait_for_mail(smtp, "pending@group.example")

    login_as(client, "admin")
    appeal = appeal_id(site)
    preview, sent = send_update(client, appeal, country="DE", texts=TEXTS)
    assert "Organisations that receive this update: 3." in preview.text
    assert sent.status_code == 303
    drain_outbox(client)

    assert [m["Subject"] for m in news_to(smtp, "de-news@group.example")] == ["Anhörung im Petitionsausschuss"]
    assert [m["Subject"] for m in news_to(smtp, "en-news@group.example")] == ["Hearing in the petitions committee"]
    [russian] = news_to(smtp, "ru-news@group.example")
    assert russian["Subject"] == "Hearing in the petitions committee" and russian["Content-Language"] == "en"
    for address in ("quiet@group.example", "fr-news@group.example", "pending@group.example"):
        assert news_to(smtp, address) == []

    [german] = news_to(smtp, "de-news@group.example")
    assert german["Content-Language"] == "de"
    assert "Der Ausschuss hört den Aufruf am 12. Januar an." in text_body(german)
    assert "<p>Der Ausschuss hört den Aufruf am 12. Januar an.</p>" in html_body(german)
    header = german["List-Unsubscribe"]
    match = re.fullmatch(rf"<{re.escape(BASE_URL)}/unsubscribe/([^>?]+)>", header)
    assert match, header
    assert german["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The same link, visible in both parts.
    assert any(link.startswith(f"{BASE_URL}/unsubscribe/") for link in links(german, BASE_URL))
    assert "/unsubscribe/" in html_body(german)

    [row] = audit_rows(client, "news.send")
    assert "country=DE recipients=3 (de=1 en=2)" in row["detail"]
    assert "No update was sent yet." not in client.get(f"/admin/appeals/{appeal}/news").text

    # To all countries: the French one too.
    send_update(client, appeal, texts={"en": ("Second", "Again.")})
    drain_outbox(client)
    assert [m["Subject"] for m in news_to(smtp, "fr-news@group.example")] == ["Second"]
    assert len(news_to(smtp, "de-news@group.example")) == 2


def test_sending_needs_the_default_language_and_the_confirmation_box(site, smtp):
    client = site.client
    endorse_and_confirm(site, smtp, "one@group.example", news=True)
    login_as(client, "admin")
    appeal = appeal_id(site)
    path = f"/admin/appeals/{appeal}/news"
    page = client.post(
        path, data={"csrf_token": csrf(client, path), "subject_de": "Nur Deutsch", "body_de": "Text", "action": "send"}
    )
    assert page.status_code == 400
    assert "default language" in page.text and 'value="Nur Deutsch"' in page.text
    _preview, refused = send_update(client, appeal, texts={"en": ("S", "B")}, confirm=False)
    assert refused.status_code == 400 and "Tick the box" in refused.text
    drain_outbox(client)
    assert news_to(smtp, "one@group.example") == []
    assert audit_rows(client, "news.send") == []


def _token_of(message) -> str:
    return re.fullmatch(r"<[^>]*/unsubscribe/([^>]+)>", message["List-Unsubscribe"]).group(1)


def test_one_click_post_unsubscribes_without_cookie_or_csrf_and_get_does_not(site, smtp, client):
    endorse_and_confirm(site, smtp, "leaver@group.example", news=True)
    login_as(client, "admin")
    appeal = appeal_id(site)
    send_update(client, appeal, texts={"en": ("First", "One.")})
    drain_outbox(client)
    [first] = news_to(smtp, "leaver@group.example")
    token = _token_of(first)
    client.cookies.clear()

    # A link checker opens it: a page with one CSRF-protected button, nothing changes.
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200
    [form] = re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", page.text, flags=re.S)
    assert 'name="csrf_token"' in form
    assert page.headers["Referrer-Policy"] == "no-referrer"
    row = endorsement(client, endorsement_id(site, "leaver@group.example"))
    assert row["news_unsubscribed_at"] is None

    # The page's button without its CSRF token is refused.
    assert client.post(f"/unsubscribe/{token}", data={}).status_code == 403

    # The mail program's one-click POST: no cookie, no CSRF token.
    client.cookies.clear()
    answer = client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert endorsement(client, endorsement_id(site, "leaver@group.example"))["news_unsubscribed_at"] is not None
    # Twice: the same answer, nothing new.
    again = client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert again.status_code == 200
    assert len(audit_rows(client, "news.unsubscribe")) == 1
    assert "Unsubscribed" in client.get(f"/unsubscribe/{token}").text

    login_as(client, "admin")
    detail = client.get(f"/admin/endorsements/{endorsement_id(site, 'leaver@group.example')}").text
    assert "unsubscribed on" in detail
    send_update(client, appeal, texts={"en": ("Second", "Two.")})
    drain_outbox(client)
    assert [m["Subject"] for m in news_to(smtp, "leaver@group.example")] == ["First"]


def test_the_page_button_unsubscribes_and_a_queued_update_is_dropped(make_site, smtp):
    site = make_site(run_worker=False)  # emails leave only when drained: one stays queued
    client = site.client
    endorse_and_confirm(site, smtp, "button@group.example", news=True)
    login_as(client, "admin")
    appeal = appeal_id(site)
    send_update(client, appeal, texts={"en": ("First", "One.")})
    drain_outbox(client)
    token = _token_of(news_to(smtp, "button@group.example")[0])
    send_update(client, appeal, texts={"en": ("Queued", "Not sent.")})  # queued, not yet sent
    page = client.get(f"/unsubscribe/{token}?lang=de")
    assert '<html lang="de"' in page.text
    from tests.support import csrf_from

    done = client.post(f"/unsubscribe/{token}?lang=de", data={"csrf_token": csrf_from(page.text)})
    assert done.status_code == 200 and done.url.path == f"/unsubscribe/{token}"
    drain_outbox(client)
    assert [m["Subject"] for m in news_to(smtp, "button@group.example")] == ["First"]


def test_withdrawal_stops_news(site, smtp, client):
    endorse_and_confirm(site, smtp, "withdraws@group.example", news=True)
    [_confirmation, thanks] = wait_for_mail(smtp, "withdraws@group.example", count=2)
    withdraw = next(link for link in links(thanks, BASE_URL) if "/withdraw/" in link)
    page = client.get(withdraw.replace(BASE_URL, ""))
    from tests.support import csrf_from

    client.post(withdraw.replace(BASE_URL, ""), data={"csrf_token": csrf_from(page.text)})
    login_as(client, "admin")
    preview, _sent = send_update(client, appeal_id(site), texts={"en": ("After", "Withdrawn.")})
    assert "Organisations that receive this update: 0." in preview.text
    drain_outbox(client)
    assert news_to(smtp, "withdraws@group.example") == []
    detail = client.get(f"/admin/endorsements/{endorsement_id(site, 'withdraws@group.example')}").text
    assert "stopped: withdrawn" in detail


@pytest.mark.parametrize("purpose", [Purpose.WITHDRAW, Purpose.CONFIRM, None])
def test_a_forged_or_other_purpose_token_is_refused(site, smtp, client, purpose):
    endorse_and_confirm(site, smtp, "target@group.example", news=True)
    row = endorsement(client, endorsement_id(site, "target@group.example"))
    if purpose is None:
        token = Tokens("another-secret-key-0123456789-0123456789").make(
            Purpose.UNSUBSCRIBE, endorsement_id=row["id"], nonce=row["token_nonce"]
        )
    else:
        token = Tokens(TEST_SECRET).make(purpose, endorsement_id=row["id"], nonce=row["token_nonce"])
    one_click = {
        "content": b"List-Unsubscribe=One-Click",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    for response in (client.get(f"/unsubscribe/{token}"), client.post(f"/unsubscribe/{token}", **one_click)):
        assert response.status_code in (400, 404)
    assert client.post("/unsubscribe/garbage", **one_click).status_code == 400
    # A real token for a record that is not there (another incarnation): 404, never 500.
    stale = Tokens(TEST_SECRET).make(Purpose.UNSUBSCRIBE, endorsement_id=row["id"], nonce="0" * 32)
    assert client.post(f"/unsubscribe/{stale}", **one_click).status_code == 404
    assert client.get(f"/unsubscribe/{stale}").status_code == 404
    assert endorsement(client, row["id"])["news_unsubscribed_at"] is None


def test_endorsing_again_after_withdrawal_asks_afresh(site, smtp, client):
    from tests.support import csrf_from

    email = "again@group.example"
    endorse_and_confirm(site, smtp, email, news=True)
    thanks = wait_for_mail(smtp, email, count=2)[1]
    withdraw = next(link for link in links(thanks, BASE_URL) if "/withdraw/" in link).replace(BASE_URL, "")
    client.post(withdraw, data={"csrf_token": csrf_from(client.get(withdraw).text)})
    # Endorsed again without the box: the earlier consent does not come back with it.
    assert site.endorse(contact_email=email, organisation_name="Group again").status_code == 303
    drain_outbox(client)
    confirm = wait_for_mail(smtp, email, count=3)[2]
    assert site.confirm(links(confirm, BASE_URL)[0]).status_code == 303
    row = endorsement(client, endorsement_id(site, email))
    assert row["state"] in ("confirmed", "approved") and row["news_consent_version"] is None
    login_as(client, "admin")
    preview, _sent = send_update(client, appeal_id(site), texts={"en": ("None", "Nobody.")})
    assert "Organisations that receive this update: 0." in preview.text


def test_the_privacy_page_explains_the_news_consent_and_its_version(client):
    page = client.get("/privacy").text
    assert 'id="news"' in page and "(currently 2026-12)" in page
    assert "Every news email has a link that stops the news at once" in page


@pytest.mark.parametrize("how", ["multipart", "no content type"])
def test_one_click_works_as_multipart_and_without_a_content_type(site, smtp, client, how):
    endorse_and_confirm(site, smtp, "other@group.example", news=True)
    row = endorsement(client, endorsement_id(site, "other@group.example"))
    token = Tokens(TEST_SECRET).make(Purpose.UNSUBSCRIBE, endorsement_id=row["id"], nonce=row["token_nonce"])
    client.cookies.clear()
    if how == "multipart":
        answer = client.post(f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    else:
        answer = client.post(f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click")
    assert answer.status_code == 200
    assert endorsement(client, row["id"])["news_unsubscribed_at"] is not None
