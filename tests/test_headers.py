"""The security headers on every type of page, for http and https deployments."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from petition.app import create_app
from petition.tokens import Purpose, Tokens
from tests.conftest import BASE_URL, TEST_SECRET, make_settings
from tests.support import csrf_from, links, run_sql, valid_form, wait_for_mail

SLUG = "protect-deserters"


def page_types(client: TestClient, smtp, database_url: str) -> dict[str, tuple[object, set[str]]]:
    """Every kind of response the site gives, with the extra duties each has."""
    page = client.get(f"/appeals/{SLUG}")
    form = valid_form(contact_email="headers@check.example", csrf_token=csrf_from(page.text))
    posted = client.post(f"/appeals/{SLUG}/endorse", data=form, follow_redirects=False)
    invalid = client.post(f"/appeals/{SLUG}/endorse", data={**form, "country": "ZZ"})
    [confirmation] = wait_for_mail(smtp, "headers@check.example")
    confirm_path = links(confirmation, BASE_URL)[0].replace(BASE_URL, "")
    confirm_page = client.get(confirm_path)
    [row] = run_sql(database_url, "SELECT id, token_nonce FROM endorsements")
    tokens = Tokens(TEST_SECRET)
    withdraw = tokens.make(Purpose.WITHDRAW, endorsement_id=row["id"], nonce=row["token_nonce"])
    data = tokens.make(Purpose.DATA_REQUEST, endorsement_id=row["id"], nonce=row["token_nonce"])
    token_page = {"no-referrer", "no-store"}
    personal = {"no-store"}
    return {
        "home redirect": (client.get("/", follow_redirects=False), set()),
        "appeal page": (page, set()),
        "endorse POST": (posted, set()),
        "form with errors (personal values)": (invalid, personal),
        "check email": (client.get(f"/appeals/{SLUG}/check-email"), set()),
        "signatories": (client.get(f"/appeals/{SLUG}/signatories"), set()),
        "confirm page": (confirm_page, token_page),
        "confirm invalid": (client.get("/confirm/nonsense"), token_page),
        "confirm POST": (
            client.post(confirm_path, data={"csrf_token": csrf_from(confirm_page.text)}, follow_redirects=False),
            set(),
        ),
        "withdraw page": (client.get(f"/withdraw/{withdraw}"), token_page),
        "withdraw invalid": (client.get("/withdraw/nonsense"), token_page),
        "data download": (client.get(f"/privacy/data/{data}"), token_page),
        "data invalid": (client.get("/privacy/data/nonsense"), token_page),
        "data form": (client.get("/privacy/data"), set()),
        "privacy": (client.get("/privacy"), set()),
        "not found": (client.get("/no-such-page"), set()),
        "csrf refused": (client.post(f"/appeals/{SLUG}/endorse", data={}), set()),
        "api list": (client.get("/api/appeals"), set()),
        "api appeal": (client.get(f"/api/appeals/{SLUG}"), set()),
        "api endorsements": (client.get(f"/api/appeals/{SLUG}/endorsements"), set()),
        "api error": (client.get(f"/api/appeals/{SLUG}/endorsements?page=x"), set()),
        "openapi": (client.get("/api/openapi.json"), set()),
        "csv": (client.get(f"/appeals/{SLUG}/endorsements.csv"), set()),
        "static": (client.get("/static/css/site.css"), set()),
        "healthz": (client.get("/healthz"), set()),
    }


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_every_page_type_carries_the_security_headers(https, database_url, tmp_path, smtp):
    base = "https://petition.example" if https else BASE_URL
    settings = make_settings(database_url, tmp_path / "data", smtp, base_url=base)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        responses = page_types(client, smtp, database_url) if not https else None
        if https:
            # Links in emails point at BASE_URL; here we only need the page types reachable directly.
            responses = {
                name: (client.get(path), set())
                for name, path in {
                    "appeal page": f"/appeals/{SLUG}",
                    "privacy": "/privacy",
                    "api": "/api/appeals",
                    "not found": "/missing",
                    "static": "/static/css/site.css",
                }.items()
            }
        assert responses
        for name, (response, duties) in responses.items():
            headers = response.headers
            csp = headers.get("Content-Security-Policy", "")
            assert csp, name
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, name
            assert "frame-ancestors 'none'" in csp, name
            assert "default-src 'self'" in csp, name
            assert headers.get("X-Content-Type-Options") == "nosniff", name
            assert headers.get("X-Frame-Options") == "DENY", name
            if "no-referrer" in duties:
                assert headers.get("Referrer-Policy") == "no-referrer", name
            else:
                assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), name
            if "no-store" in duties:
                assert headers.get("Cache-Control") == "no-store", name
            if https:
                assert headers.get("Strict-Transport-Security", "").startswith("max-age="), name
            else:
                assert "Strict-Transport-Security" not in headers, name
            for cookie in headers.get_list("set-cookie"):
                assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, name
                assert ("Secure" in cookie) == https, name
        set_cookies = [c for response, _d in responses.values() for c in response.headers.get_list("set-cookie")]
        assert set_cookies, "no page set the CSRF cookie: the cookie checks above ran on nothing"


def test_html_pages_have_no_inline_script_or_style(client):
    for path in (f"/appeals/{SLUG}", "/privacy", "/privacy/data", f"/appeals/{SLUG}/signatories", "/missing"):
        html = client.get(path).text
        assert "<script>" not in html and "<style" not in html and " style=" not in html, path
        assert " onclick=" not in html and " onload=" not in html, path
