"""The endorsement form over HTTP: every refusal is a 400 form with its message, nothing stored."""

from __future__ import annotations

import html
import re

import pytest

from tests.support import csrf_from, db_count, db_rows, form_values, valid_form, wait_for_mail

SLUG = "protect-deserters"
ENDORSE = f"/appeals/{SLUG}/endorse"

REQUIRED = "Please enter the name of your organisation."
MESSAGES = {
    "organisation_name": REQUIRED,
    "country": "Please choose the country where your organisation is based.",
    "organisation_type": "Please choose the type of your organisation.",
    "website": "Please enter a web address such as https://example.org, or leave it empty.",
    "contact_name": "Please enter your name.",
    "contact_email_missing": "Please enter your email address.",
    "contact_email": "Please enter a valid email address, such as name@example.org.",
    "authorised": "Please confirm that you are authorised to sign for your organisation.",
    "consent": "Please agree to how we use your data, or we cannot record your endorsement.",
    "visibility": "Please choose whether your organisation may be named publicly.",
}
LIMITS = {
    "organisation_name": 200,
    "city": 100,
    "website": 300,
    "contact_name": 150,
    "contact_role": 150,
    "contact_email": 254,
    "comment": 1000,
}


def overlong(name: str) -> str:
    n = LIMITS[name] + 1
    if name == "website":
        return "https://example.org/" + "a" * (n - len("https://example.org/"))
    if name == "contact_email":
        return "a" * (n - len("@example.org")) + "@example.org"
    return "x" * n


def assert_refused(client, smtp, database_url, response, field: str, message: str, sent: dict[str, str]):
    """400, the field's message by the field, the other values kept, nothing stored or sent."""
    assert response.status_code == 400, response.text[:500]
    page = response.text
    assert html.escape(message, quote=True) in page or message in html.unescape(page)
    assert f'id="f-{field}-error"' in page
    shown = form_values(page)
    for name, value in sent.items():
        if name in (field, "csrf_token"):
            continue
        if name in ("authorised", "consent"):
            assert bool(shown.get(name)) == bool(value), name
        elif name == "country":
            assert shown[name] == value.upper(), name
        else:
            assert shown[name] == value.strip(), name
    assert db_count(database_url, "endorsements") == 0
    assert db_count(database_url, "outbox") == 0
    assert client.get(f"/api/appeals/{SLUG}").json()["counts"]["total"] == 0
    assert smtp.messages == []


def post(site, **overrides):
    form = valid_form(**overrides)
    form = {k: v for k, v in form.items() if v is not None}
    form["csrf_token"] = site.csrf()
    return form, site.client.post(ENDORSE, data=form, follow_redirects=False)


@pytest.mark.parametrize(
    "field",
    [
        "organisation_name",
        "country",
        "organisation_type",
        "contact_name",
        "contact_email",
        "authorised",
        "consent",
    ],
)
@pytest.mark.parametrize("how", ["empty", "absent"])
def test_each_required_field_missing_is_refused(site, client, smtp, database_url, field, how):
    form, response = post(site, **{field: "" if how == "empty" else None})  # type: ignore[dict-item]
    message = MESSAGES["contact_email_missing" if field == "contact_email" else field]
    assert_refused(client, smtp, database_url, response, field, message, form)


def test_only_whitespace_counts_as_missing(site, client, smtp, database_url):
    form, response = post(site, organisation_name="   \t ")
    assert_refused(client, smtp, database_url, response, "organisation_name", REQUIRED, form)
    # Invisible characters (zero-width space, right-to-left override) are not a name either.
    form, response = post(site, contact_name="\u200b \u202e")
    assert_refused(client, smtp, database_url, response, "contact_name", MESSAGES["contact_name"], form)


@pytest.mark.parametrize("field", sorted(LIMITS))
def test_each_overlong_field_is_refused(site, client, smtp, database_url, field):
    form, response = post(site, **{field: overlong(field)})
    message = f"is too long: please use at most {LIMITS[field]} characters."
    assert_refused(client, smtp, database_url, response, field, message, form)


def test_field_at_its_limit_is_accepted(site, database_url):
    values = {name: "y" * limit for name, limit in LIMITS.items() if name not in ("website", "contact_email")}
    _form, response = post(site, **values)
    assert response.status_code == 303
    [row] = db_rows(database_url, "SELECT organisation_name, comment FROM endorsements")
    assert len(row["organisation_name"]) == 200 and len(row["comment"]) == 1000


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "name@",
        "@example.org",
        "a@@example.org",
        "name@example",
        "name @example.org",
        "name@exa_mple.org",
    ],
)
def test_malformed_email_is_refused(site, client, smtp, database_url, email):
    form, response = post(site, contact_email=email)
    assert_refused(client, smtp, database_url, response, "contact_email", MESSAGES["contact_email"], form)


@pytest.mark.parametrize("country", ["XX", "Germany", "D", "DEU", "EU", "<b>"])
def test_unknown_country_is_refused(site, client, smtp, database_url, country):
    form, response = post(site, country=country)
    assert_refused(client, smtp, database_url, response, "country", MESSAGES["country"], form)


@pytest.mark.parametrize("kind", ["pirates", "NGO", "ngox", "ngo;drop"])
def test_unknown_organisation_type_is_refused(site, client, smtp, database_url, kind):
    form, response = post(site, organisation_type=kind)
    assert_refused(
        client,
        smtp,
        database_url,
        response,
        "organisation_type",
        MESSAGES["organisation_type"],
        form,
    )


@pytest.mark.parametrize(
    "website",
    [
        "javascript:alert(1)",
        "javascript://example.org/%0Aalert(1)",
        "ftp://files.example.org/",
        "https://user:pw@example.org",
        "https://localhost",
        "https://10.0.0.12",
        "data:text/html,x",
        "https://exa mple.org",
        "https://example.org:99999",
    ],
)
def test_website_that_is_not_a_web_address_is_refused(site, client, smtp, database_url, website):
    form, response = post(site, website=website)
    assert_refused(client, smtp, database_url, response, "website", MESSAGES["website"], form)


def test_unknown_visibility_is_refused(site, client, smtp, database_url):
    form, response = post(site, visibility="everyone")
    assert_refused(client, smtp, database_url, response, "visibility", MESSAGES["visibility"], form)


def _radios(page: str) -> dict[str, str]:
    """The visibility radios of a page, each as its whole <input …> tag."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<input type="radio"[^>]*value="(\w+)"[^>]*>', page)}


def test_no_visibility_option_is_preselected(client):
    page = client.get(f"/appeals/{SLUG}").text
    radios = _radios(page)
    assert set(radios) == {"public", "anonymous"}
    for value, tag in radios.items():
        assert " checked" not in tag, value
        # Each option says what is shown where, tied to its radio for screen readers.
        hint = f"f-visibility-{value}-hint"
        assert f'aria-describedby="{hint}"' in tag
        assert f'id="{hint}"' in page
    assert "visibility" not in form_values(page)


@pytest.mark.parametrize("how", ["absent", "empty"])
def test_post_without_visibility_is_answered_with_the_form_and_an_error(site, client, smtp, database_url, how):
    visibility = None if how == "absent" else ""
    form, response = post(site, visibility=visibility, comment="Solidarity from Vilnius.")  # type: ignore[arg-type]
    assert_refused(client, smtp, database_url, response, "visibility", MESSAGES["visibility"], form)
    page = response.text
    shown = form_values(page)
    # Every other value is kept, and still no option is chosen for the person.
    assert "visibility" not in shown
    radios = _radios(page)
    assert set(radios) == {"public", "anonymous"}
    assert all(" checked" not in tag for tag in radios.values())
    for name in ("organisation_name", "city", "contact_name", "contact_role", "contact_email", "comment"):
        assert shown[name] == form[name], name
    assert shown["country"] == "DE" and shown["organisation_type"] == "peace"
    assert shown["authorised"] == shown["consent"] == "yes"
    # The summary's link leads to the question, whose error is read with each option.
    assert '<a href="#f-visibility">' in page and 'id="f-visibility"' in page
    for tag in radios.values():
        assert 'aria-describedby="f-visibility-error ' in tag


@pytest.mark.parametrize("chosen", ["public", "anonymous"])
def test_the_chosen_visibility_stays_chosen_after_another_error(site, database_url, chosen):
    _form, response = post(site, visibility=chosen, contact_email="not-an-email")
    assert response.status_code == 400
    radios = _radios(response.text)
    assert " checked" in radios[chosen]
    assert [v for v, tag in radios.items() if " checked" in tag] == [chosen]
    assert form_values(response.text)["visibility"] == chosen
    assert db_count(database_url, "endorsements") == 0


def test_all_errors_at_once_are_listed_together(site, client, smtp, database_url):
    response = client.post(ENDORSE, data={"csrf_token": site.csrf()}, follow_redirects=False)
    assert response.status_code == 400
    page = html.unescape(response.text)
    for key in (
        "organisation_name",
        "country",
        "organisation_type",
        "contact_name",
        "contact_email_missing",
        "authorised",
        "consent",
        "visibility",
    ):
        assert MESSAGES[key] in page
    assert db_count(database_url, "endorsements") == 0


def test_markup_in_a_refused_form_is_shown_as_text(site):
    _form, response = post(site, organisation_name='<script>alert("x")</script>', country="")
    assert response.status_code == 400
    assert "<script>alert" not in response.text
    assert form_values(response.text)["organisation_name"] == '<script>alert("x")</script>'


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("example.org", "https://example.org"),
        ("http://x.org/a", "https://x.org/a"),
        ("  HTTPS://Example.ORG/Path?q=1#top ", "https://example.org/Path?q=1"),
        ("", ""),
    ],
)
def test_website_is_stored_as_an_https_address(site, database_url, typed, stored):
    _form, response = post(site, website=typed)
    assert response.status_code == 303
    [row] = db_rows(database_url, "SELECT website FROM endorsements")
    assert row["website"] == stored


def test_a_100_kb_field_is_refused_with_its_message(site, client, smtp, database_url):
    form, response = post(site, comment="ж" * 100_000)
    assert response.status_code == 400
    assert "“Public comment (optional)” is too long: please use at most 1000 characters." in html.unescape(
        response.text
    )
    # The re-rendered form does not echo 100 kB back.
    assert len(response.content) < 200_000
    assert db_count(database_url, "endorsements") == 0


def test_a_100_kb_field_in_a_multipart_body_is_refused(site, client, database_url):
    form = valid_form(organisation_name="n" * 100_000)
    form["csrf_token"] = site.csrf()
    files = {name: (None, value) for name, value in form.items()}
    response = client.post(ENDORSE, files=files, follow_redirects=False)
    assert response.status_code == 400
    assert "“Name of the organisation” is too long: please use at most 200 characters." in html.unescape(response.text)
    assert db_count(database_url, "endorsements") == 0


def test_a_body_of_several_megabytes_is_refused(site, client, database_url):
    form = valid_form(comment="z" * 5_000_000)
    form["csrf_token"] = site.csrf()
    response = client.post(ENDORSE, data=form, follow_redirects=False)
    assert response.status_code == 413
    assert db_count(database_url, "endorsements") == 0


def test_a_streamed_body_of_several_megabytes_without_length_is_refused(site, client, database_url):
    csrf = site.csrf()

    def chunks():
        yield f"csrf_token={csrf}&comment=".encode()
        for _ in range(50):
            yield b"z" * 100_000

    response = client.post(
        ENDORSE,
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 413
    assert db_count(database_url, "endorsements") == 0


def _urlencoded(form: dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(form).encode()


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd", b"%FF%FE%FD", b"Conn%C3ection", b"\xc3"])
def test_non_utf8_bytes_in_an_urlencoded_body_never_fail(site, client, smtp, database_url, raw):
    form = valid_form()
    form["csrf_token"] = site.csrf()
    del form["organisation_name"]
    body = _urlencoded(form) + b"&organisation_name=" + raw
    response = client.post(
        ENDORSE,
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert db_count(database_url, "endorsements") == 0


def test_non_utf8_bytes_in_a_field_name_never_fail(site, client, database_url):
    form = valid_form()
    form["csrf_token"] = site.csrf()
    body = _urlencoded(form) + b"&\xff\xfe=1&%FF=2"
    response = client.post(
        ENDORSE,
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code in (303, 400)
    assert response.status_code < 500


def _multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"b0undary") -> bytes:
    out = b""
    for name, value in parts:
        out += b"--" + boundary + b"\r\n"
        out += b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


@pytest.mark.parametrize("where", ["value", "name", "charset"])
def test_non_utf8_bytes_in_a_multipart_body_never_fail(site, client, database_url, where):
    form = valid_form()
    form["csrf_token"] = site.csrf()
    parts = [(k.encode(), v.encode()) for k, v in form.items() if k != "organisation_name"]
    if where == "value":
        parts.append((b"organisation_name", b"\xff\xfe\xfd bad"))
    elif where == "name":
        parts.append((b"\xff\xfe", b"x"))
        parts.append((b"organisation_name", b"\xc3"))
    else:
        parts.append((b"_charset_", b"no-such-charset"))
        parts.append((b"organisation_name", b"\xff"))
    response = client.post(
        ENDORSE,
        content=_multipart(parts),
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert db_count(database_url, "endorsements") == 0


def test_a_broken_multipart_body_is_a_400(site, client, database_url):
    response = client.post(
        ENDORSE,
        content=b"--nope\r\ngarbage",
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        follow_redirects=False,
    )
    assert response.status_code in (400, 403)
    assert db_count(database_url, "endorsements") == 0


# --- CSRF ---------------------------------------------------------------------------------------


def _assert_nothing_stored(client, smtp, database_url):
    assert db_count(database_url, "endorsements") == 0
    assert db_count(database_url, "outbox") == 0
    assert smtp.messages == []


def test_post_without_csrf_token_is_forbidden(site, client, smtp, database_url):
    site.csrf()  # the cookie is set
    response = client.post(ENDORSE, data=valid_form(), follow_redirects=False)
    assert response.status_code == 403
    assert "reload the page" in response.text
    _assert_nothing_stored(client, smtp, database_url)


@pytest.mark.parametrize("token", ["wrong", "x" * 60, "eyJ9.invalid"])
def test_post_with_wrong_csrf_token_is_forbidden(site, client, smtp, database_url, token):
    site.csrf()
    response = client.post(ENDORSE, data={**valid_form(), "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 403
    _assert_nothing_stored(client, smtp, database_url)


def test_csrf_token_of_another_browser_is_forbidden(site, client, smtp, database_url):
    other_token = site.csrf()
    client.cookies.clear()
    site.csrf()  # this browser gets its own cookie
    response = client.post(ENDORSE, data={**valid_form(), "csrf_token": other_token}, follow_redirects=False)
    assert response.status_code == 403
    _assert_nothing_stored(client, smtp, database_url)


def test_csrf_token_without_its_cookie_is_forbidden(site, client, smtp, database_url):
    token = site.csrf()
    client.cookies.clear()
    response = client.post(ENDORSE, data={**valid_form(), "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 403
    _assert_nothing_stored(client, smtp, database_url)


def test_the_form_page_sets_a_strict_csrf_cookie(client):
    page = client.get(f"/appeals/{SLUG}")
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert csrf_from(page.text)


# --- honeypot -----------------------------------------------------------------------------------


def test_filled_honeypot_gets_the_same_answer_and_nothing_is_stored(site, client, smtp, database_url):
    person = post(site, contact_email="person@example.org")[1]
    assert person.status_code == 303
    form = valid_form(contact_email="bot@example.org")
    form["fax_number"] = "+49 69 1234"
    form["csrf_token"] = site.csrf()
    bot = client.post(ENDORSE, data=form, follow_redirects=False)
    assert bot.status_code == person.status_code == 303
    assert bot.headers["location"] == person.headers["location"]
    rows = db_rows(database_url, "SELECT contact_email FROM endorsements")
    assert [r["contact_email"] for r in rows] == ["person@example.org"]
    outbox = db_rows(database_url, "SELECT to_addr FROM outbox")
    assert [r["to_addr"] for r in outbox] == ["person@example.org"]
    wait_for_mail(smtp, "person@example.org")
    assert smtp.sink.to("bot@example.org") == []


def test_the_honeypot_is_in_the_page_hidden_from_people(client):
    page = client.get(f"/appeals/{SLUG}").text
    assert 'name="fax_number"' in page
    assert 'tabindex="-1"' in page and 'aria-hidden="true"' in page


@pytest.mark.parametrize("status, code", [("paused", 503), ("closed", 410)])
def test_an_appeal_paused_or_closed_by_another_process_takes_nothing_at_once(make_site, database_url, status, code):
    from tests.support import run_sql

    site = make_site()
    page = site.client.get("/appeals/protect-deserters")  # this process now holds the appeal as open
    assert page.status_code == 200
    run_sql(database_url, f"UPDATE appeals SET status = '{status}'")  # as an organiser on another process
    form = valid_form(contact_email="late@other-process.example", csrf_token=csrf_from(page.text))
    answer = site.client.post("/appeals/protect-deserters/endorse", data=form, follow_redirects=False)
    assert answer.status_code == code
    assert db_count(database_url, "endorsements") == 0
    assert db_count(database_url, "outbox") == 0
