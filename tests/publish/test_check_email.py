""" "Check your email" names the address the email went to and can send it again (issue 16).

The address travels in a signed, HttpOnly, short-lived cookie set on the 303, never in a URL;
the resend submits the same values through the same intake, limits and mailbox cap, and
answers the same whatever is known.
"""

from __future__ import annotations

import base64
import html

import pytest

from petition.publish import appeal_views
from petition.publish.cache import PublicCache
from tests.factories import forget_cached
from tests.support import comparable, csrf_from, db_count, valid_form, wait_for_mail

SLUG = "protect-deserters"
CHECK = f"/appeals/{SLUG}/check-email"
RESEND = f"{CHECK}/resend"
ADDRESS = "kontakt@friedensnetz.example"


def endorse(site, **fields):
    form = valid_form(contact_email=ADDRESS, **fields)
    form["csrf_token"] = site.csrf()
    return site.client.post(f"/appeals/{SLUG}/endorse", data=form, follow_redirects=False)


def endorse_as(site, address, **fields):
    form = valid_form(contact_email=address, **fields)
    form["csrf_token"] = site.csrf()
    return site.client.post(f"/appeals/{SLUG}/endorse", data=form, follow_redirects=False)


@pytest.fixture
def served_early_check(monkeypatch):
    """For each view of the check-email page: whether it came from a stored copy."""
    seen: list[bool] = []
    get = PublicCache.get

    async def spy(self, key, load):
        if isinstance(key, tuple) and len(key) > 2 and key[1] == "page" and str(key[2]).endswith("/check-email"):
            loaded = False

            async def counted():
                nonlocal loaded
                loaded = True
                return await load()

            value = await get(self, key, counted)
            seen.append(not loaded)
            return value
        return await get(self, key, load)

    monkeypatch.setattr(PublicCache, "get", spy)
    return seen


def resend(site):
    page = site.client.get(CHECK)
    return site.client.post(RESEND, data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)


def test_the_page_shows_the_address_from_an_encrypted_httponly_cookie_never_the_url(site, smtp):
    response = endorse(site)
    assert response.status_code == 303
    assert ADDRESS not in response.headers["location"] and "friedensnetz" not in response.headers["location"]
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("petition_sent=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    # Review finding: signed was not enough. The cookie names an organisation that may have asked
    # not to be named: encrypted (nothing readable in it, even decoded), for its page only, and a
    # session cookie (not kept on disk past the browser's session; refused after an hour anyway).
    assert "Max-Age" not in cookie and "Expires" not in cookie
    assert "Path=/appeals/protect-deserters/check-email;" in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    for part in value.split("."):
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        assert b"friedensnetz" not in decoded.lower() and b"contact_email" not in decoded
    page = site.client.get(response.headers["location"])
    assert page.headers["cache-control"] == "no-store"
    assert ADDRESS in html.unescape(page.text)
    assert 'action="/appeals/protect-deserters/check-email/resend"' in page.text


def test_send_again_queues_another_confirmation_email_through_the_outbox(site, smtp, database_url):
    endorse(site)
    wait_for_mail(smtp, ADDRESS)
    response = resend(site)
    assert response.status_code == 303
    assert response.headers["location"] == f"{CHECK}?resent=1"
    assert len(wait_for_mail(smtp, ADDRESS, count=2)) == 2
    assert db_count(database_url, "endorsements") == 1
    shown = site.client.get(response.headers["location"]).text
    assert "it is on its way" in shown


def test_send_again_stops_at_the_limits_of_the_form(make_site, smtp, database_url):
    site = make_site(rate_limit_email=2)
    endorse(site)
    for _ in range(6):
        assert resend(site).status_code == 303
    # Two per client and address an hour: the first email and one more, however often asked.
    wait_for_mail(smtp, ADDRESS, count=2)
    assert db_count(database_url, "outbox") == 2


def test_without_the_cookie_or_with_a_forged_one_nothing_is_named_or_sent(site, smtp, database_url):
    page = site.client.get(CHECK)
    assert "@" not in page.text.split("<main", 1)[1].split("</main>", 1)[0]
    assert "check-email/resend" not in page.text
    site.client.cookies.set("petition_sent", "eyJhIjoxLCJ2Ijp7ImNvbnRhY3RfZW1haWwiOiJ4QHkub3JnIn19.forged.sig")
    page = site.client.get(CHECK)
    assert "x@y.org" not in page.text
    token = site.csrf()  # the appeal page's form
    assert site.client.post(RESEND, data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert db_count(database_url, "outbox") == 0


def test_a_resend_needs_the_csrf_token(site, database_url):
    endorse(site)
    assert site.client.post(RESEND, data={}, follow_redirects=False).status_code in (400, 403)


def test_a_bot_that_filled_the_honeypot_sees_the_same_page_and_its_resend_sends_nothing(site, database_url):
    response = endorse(site, fax_number="buy now")
    assert response.status_code == 303 and "petition_sent=" in response.headers["set-cookie"]
    page = site.client.get(CHECK).text
    assert ADDRESS in html.unescape(page) and "check-email/resend" in page
    assert resend(site).status_code == 303
    assert db_count(database_url, "outbox") == 0 and db_count(database_url, "endorsements") == 0


def _cookie_value(response) -> str:
    return response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]


def test_the_cookie_is_refused_an_hour_after_it_was_sealed_and_when_a_byte_changes(site, smtp):
    import time

    from petition.publish.appeal_views import SENT_MAX_AGE, _cipher_for, open_sent, seal_sent
    from tests.conftest import TEST_SECRET

    value = _cookie_value(endorse(site))
    cipher = _cipher_for(TEST_SECRET)
    opened = open_sent(cipher, value)
    assert opened is not None and opened["v"]["contact_email"] == ADDRESS

    # Sealed an hour and a second ago (as a browser left open since then would send it back).
    stale = seal_sent(cipher, {k: v for k, v in opened.items() if k != "t"}, now=time.time() - SENT_MAX_AGE - 1)
    site.client.cookies.set("petition_sent", stale)
    assert ADDRESS not in html.unescape(site.client.get(CHECK).text)
    fresh = seal_sent(cipher, {k: v for k, v in opened.items() if k != "t"})
    site.client.cookies.set("petition_sent", fresh)
    assert ADDRESS in html.unescape(site.client.get(CHECK).text)

    # One character changed anywhere, or sealed under another SECRET_KEY: refused.
    for at in (2, len(value) // 2, len(value) - 2):
        flipped = value[:at] + ("A" if value[at] != "A" else "B") + value[at + 1 :]
        assert open_sent(cipher, flipped) is None
    assert open_sent(_cipher_for("another-secret-key-of-another-installation-0123"), value) is None
    assert open_sent(cipher, "not base64 at all!") is None


def _visit_as(site, cookies: dict[str, str], path: str = CHECK):
    site.client.cookies.clear()
    for name, value in cookies.items():
        site.client.cookies.set(name, value)
    return site.client.get(path)


@pytest.mark.parametrize("path", [CHECK, f"{CHECK}?resent=1", f"{CHECK}?lang=de", f"{CHECK}?resent=1&lang=uk"])
def test_each_signer_gets_the_page_rendered_for_them_from_one_cached_copy(
    site, smtp, served_early_check, monkeypatch, path
):
    # Rendered once per language and kind of visit; each signer's copy has their own address
    # (escaped as the template escapes it) and their own token in the resend form.
    visitors = {}
    for address in ("o'brien&partners@friedensnetz.example", "kontakt@friedensnetz.example"):
        site.client.cookies.clear()
        assert endorse_as(site, address).status_code == 303
        visitors[address] = dict(site.client.cookies.items())
    strangers: dict[str, str] = {}  # no cookie: no address, no form

    async def rendered_alone(request, *, build, **_):
        return await build(None)  # the handler's template, for this visitor alone

    for cookies, shown in [(visitors[a], a) for a in visitors] + [(strangers, None)]:
        with monkeypatch.context() as patch:
            patch.setattr(appeal_views, "cached_page", rendered_alone)
            fresh = _visit_as(site, cookies, path)
        other = next((c for c in visitors.values() if c is not cookies), {}) if cookies else {}
        forget_cached(site.client)
        _visit_as(site, other, path)  # another visitor of the same kind: their copy is stored
        cached = _visit_as(site, cookies, path)
        assert served_early_check == [False, True]  # this one came from the stored copy
        served_early_check.clear()
        assert comparable(cached, any_order=True) == comparable(fresh, any_order=True)
        main = html.unescape(cached.text.split("<main", 1)[1].split("</main>", 1)[0])
        if shown:
            assert cached.headers["cache-control"] == "no-store"  # it names the address: no cache keeps it
            assert shown in main and "check-email/resend" in main
            assert all(a not in main for a in visitors if a != shown)
            assert "csrf-" not in csrf_from(cached.text)  # their token, not the stored copy's mark
        else:
            assert "@" not in main and "check-email/resend" not in main
    # Kinds of visit never share a copy: a signer's copy (with its form) stored, then a stranger.
    forget_cached(site.client)
    for cookies in [*visitors.values(), strangers]:
        main = _visit_as(site, cookies, path).text.split("<main", 1)[1]
        assert ("check-email/resend" in main) == bool(cookies)


def test_a_resend_from_a_cached_page_sends_the_email_again(site, smtp, database_url):
    endorse(site)
    wait_for_mail(smtp, ADDRESS)
    site.client.get(CHECK)  # stored
    assert resend(site).status_code == 303  # its form, from the stored copy, with this visitor's token
    wait_for_mail(smtp, ADDRESS, count=2)


def test_a_page_the_cache_does_not_keep_still_names_the_address(site, smtp):
    endorse(site)
    for path in (f"{CHECK}?utm_source=newsletter", f"{CHECK}?resent=yes"):
        page = site.client.get(path)
        main = html.unescape(page.text.split("<main", 1)[1])
        assert ADDRESS in main and "address-" not in main and "check-email/resend" in main


def test_a_signer_whose_cookie_holds_only_the_address_gets_no_form_from_anothers_copy(site, smtp):
    # A long comment in Cyrillic (JSON writes each letter as a \u escape) leaves the cookie only
    # the address: the page names it but cannot send again. Such a visit never shares a copy
    # with one that can, whichever comes first.
    full, short = "full@friedensnetz.example", "short@friedensnetz.example"
    cookies = {}
    for address, fields in ((full, {}), (short, {"comment": "мир " * 250})):
        site.client.cookies.clear()
        assert endorse_as(site, address, **fields).status_code == 303
        cookies[address] = dict(site.client.cookies.items())
    for order in ((full, short), (short, full)):
        forget_cached(site.client)
        for address in order:
            main = html.unescape(_visit_as(site, cookies[address]).text.split("<main", 1)[1])
            assert address in main
            assert ("check-email/resend" in main) == (address == full)
