"""The embed: framed by the origins in EMBED_ORIGINS only; every other page keeps frame-ancestors 'none'."""

from __future__ import annotations

import re

from tests.conftest import BASE_URL
from tests.factories import add_endorsements

SLUG = "protect-deserters"
PARTNER = "https://partner.example"


def frame_ancestors(response) -> list[str]:
    csp = response.headers["content-security-policy"]
    directive = next(d.split() for d in csp.split(";") if d.split() and d.split()[0] == "frame-ancestors")
    return directive[1:]


def test_a_listed_origin_may_frame_the_embed_and_nothing_else(make_site):
    site = make_site(embed_origins=f"{PARTNER}, http://localhost:8080")
    embed = site.client.get(f"/appeals/{SLUG}/embed")
    assert embed.status_code == 200
    assert frame_ancestors(embed) == [PARTNER, "http://localhost:8080"]
    assert "x-frame-options" not in embed.headers  # DENY would forbid the listed origins too
    # The rest of the site's policy is unchanged.
    assert "script-src 'self'" in embed.headers["content-security-policy"]
    # Every other page stays unframeable, the appeal page and the snippets page included.
    for path in (f"/appeals/{SLUG}", f"/appeals/{SLUG}/share", f"/appeals/{SLUG}/signatories", "/privacy"):
        page = site.client.get(path)
        assert frame_ancestors(page) == ["'none'"], path
        assert page.headers["x-frame-options"] == "DENY", path


def test_an_unlisted_origin_is_not_allowed(make_site):
    site = make_site(embed_origins=PARTNER)
    embed = site.client.get(f"/appeals/{SLUG}/embed")
    assert "https://evil.example" not in embed.headers["content-security-policy"]
    assert frame_ancestors(embed) == [PARTNER]
    # Without EMBED_ORIGINS nobody may frame it.
    bare = make_site().client.get(f"/appeals/{SLUG}/embed")
    assert frame_ancestors(bare) == ["'none'"]
    assert bare.headers["x-frame-options"] == "DENY"


def test_the_embed_counts_and_opens_the_form_in_the_top_window_without_a_cookie(client):
    add_endorsements(client, 2, country="DE")
    embed = client.get(f"/appeals/{SLUG}/embed?lang=de")
    html = embed.text
    assert '<html lang="de"' in html
    assert "2 Organisationen" in html
    assert "<form" not in html and "<script" not in html
    button = re.search(r'<a class="button" href="([^"]+)" target="_top">', html)
    assert button and button.group(1) == f"{BASE_URL}/appeals/{SLUG}?lang=de#endorse"
    # No form, so no CSRF cookie: a third-party frame would not send it back anyway.
    assert "set-cookie" not in embed.headers
    assert embed.headers["cache-control"] == "public, max-age=60"


def test_a_bad_embed_origin_is_refused_at_start():
    import pytest

    from petition.settings import SettingsError, load_settings

    for bad in ("partner.example", "https://partner.example/path", "https://*", "javascript:alert(1)", "'self'"):
        with pytest.raises(SettingsError, match="EMBED_ORIGINS"):
            load_settings(env_file=None, embed_origins=bad, secret_key="x" * 32)


def test_the_spread_page_gives_the_snippets(make_site):
    site = make_site(embed_origins=PARTNER)
    page = site.client.get(f"/appeals/{SLUG}/share")
    assert page.status_code == 200
    assert PARTNER in page.text
    snippets = dict(re.findall(r'<textarea id="snippet-(\w+)"[^>]*>(.*?)</textarea>', page.text, re.S))
    import html as html_lib

    badge = html_lib.unescape(snippets["badge"])
    embed = html_lib.unescape(snippets["embed"])
    assert f'<img src="{BASE_URL}/appeals/{SLUG}/badge.svg?lang=en"' in badge
    assert f'<iframe src="{BASE_URL}/appeals/{SLUG}/embed?lang=en"' in embed
    assert 'title="Protection and asylum' in embed
    # Linked from the appeal page.
    assert f'href="/appeals/{SLUG}/share"' in site.client.get(f"/appeals/{SLUG}").text
