"""What outside validators check on every site: gzip, hashed static files, Cache-Control, a favicon."""

from __future__ import annotations

import gzip
import re

SLUG = "protect-deserters"


def test_text_responses_are_gzipped_and_tiny_or_compressed_ones_are_not(client):
    page = client.get(f"/appeals/{SLUG}", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in page.headers["vary"].lower()
    assert int(page.headers["content-length"]) < len(page.content) / 2  # the decoded page is far larger
    assert client.get("/api/openapi.json").headers.get("content-encoding") == "gzip"
    # Tiny: gzip's header would eat the gain.
    assert "content-encoding" not in client.get("/healthz", headers={"Accept-Encoding": "gzip"}).headers
    # Compressed already.
    icon = client.get("/favicon.ico", headers={"Accept-Encoding": "gzip"})
    assert icon.status_code == 200 and "content-encoding" not in icon.headers
    # A client that does not ask gets it plain.
    plain = client.get(f"/appeals/{SLUG}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text.startswith("<!doctype html>")


def test_a_gzipped_body_has_a_weak_etag_that_still_revalidates(client):
    first = client.get(f"/appeals/{SLUG}/signatories", headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    again = client.get(f"/appeals/{SLUG}/signatories", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304


def test_gzip_can_be_left_to_the_proxy(make_site):
    site = make_site(gzip="false")
    page = site.client.get(f"/appeals/{SLUG}", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in page.headers
    assert gzip.compress(page.content)  # a plain body


def test_static_files_have_content_hashed_names_cached_for_ever(client):
    html = client.get(f"/appeals/{SLUG}").text
    hrefs = re.findall(r'href="(/static/[^"]+)"', html)
    stylesheet = next(h for h in hrefs if h.endswith(".css"))
    assert re.fullmatch(r"/static/css/site\.[0-9a-f]{12}\.css", stylesheet)
    hashed = client.get(stylesheet)
    assert hashed.status_code == 200
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    # The plain name keeps working, with a short cache, and is the same file.
    plain = client.get("/static/css/site.css")
    assert plain.status_code == 200 and plain.content == hashed.content
    assert plain.headers["cache-control"] == "public, max-age=86400"
    # A digest that is not the file's is no file.
    assert client.get("/static/css/site.000000000000.css").status_code == 404
    for icon in ("favicon.ico", "favicon.svg", "apple-touch-icon.png"):
        assert any(
            re.fullmatch(rf"/static/{icon.split('.')[0]}\.[0-9a-f]{{12}}\.{icon.split('.')[1]}", h) for h in hrefs
        )


def test_a_favicon_at_the_root(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # the ICO header
    assert icon.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    svg = client.get("/static/favicon.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")


def test_public_pages_are_briefly_cacheable_and_pages_with_a_token_are_not(client):
    # A new visitor: no cookie yet.
    client.cookies.clear()
    privacy = client.get("/privacy")
    assert privacy.headers["cache-control"] == "public, max-age=60"
    assert "set-cookie" not in privacy.headers  # a shared cache may keep it: nothing personal in it
    # The appeal page's form carries this visitor's CSRF token: no shared cache may keep it.
    appeal = client.get(f"/appeals/{SLUG}")
    assert 'name="csrf_token"' in appeal.text
    assert appeal.headers["cache-control"] == "private, no-cache"
    assert "set-cookie" in appeal.headers
    # Served again from the page cache (another visitor's token): the same rule.
    other = client.get(f"/appeals/{SLUG}")
    assert other.headers["cache-control"] == "private, no-cache"
    # The organisers' login page: never stored.
    assert client.get("/admin/login").headers["cache-control"] == "no-store"
    # An error page is not cached as a page.
    assert "public" not in client.get("/appeals/no-such-appeal").headers.get("cache-control", "")
