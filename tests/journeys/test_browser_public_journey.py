"""The public journey on a phone and a desktop: errors in view, the way in on the first screen, bidi text."""

from __future__ import annotations

import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import expect

from petition.publish.pages import CachedPageMiddleware
from tests.factories import add_endorsements
from tests.journeys.conftest import axe_violations
from tests.journeys.test_browser_endorse import fill_endorsement

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
APPEAL = "/appeals/protect-deserters"


def in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run `function` in a thread: Playwright keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result(60)


def in_view(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("language", ["en", "de"])
def test_after_a_mistake_the_errors_are_the_first_thing_in_view_and_focused(
    live_server, page, javascript, viewport, language, shots
):
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}{APPEAL}?lang={language}")
    page.fill("#f-organisation_name", "Фонд «Мир» Kyiv")
    page.select_option("#f-country", "UA")
    page.fill("#f-city", "Kyiv")
    page.fill("#f-contact_email", "not an address")
    page.fill("#f-comment", "We stand with every objector.")
    page.check("#f-visibility-anonymous")
    page.check("#f-authorised")
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    assert navigation.value.status == 400
    page.wait_for_load_state()

    title = page.title()
    assert title.startswith({"en": "Error: ", "de": "Fehler: "}[language]), title
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert in_view(page, ".error-summary"), page.locator(".error-summary").bounding_box()
    # Nothing the person typed or chose is lost.
    expect(page.locator("#f-organisation_name")).to_have_value("Фонд «Мир» Kyiv")
    expect(page.locator("#f-country")).to_have_value("UA")
    expect(page.locator("#f-city")).to_have_value("Kyiv")
    expect(page.locator("#f-contact_email")).to_have_value("not an address")
    expect(page.locator("#f-comment")).to_have_value("We stand with every objector.")
    expect(page.locator("#f-visibility-anonymous")).to_be_checked()
    expect(page.locator("#f-authorised")).to_be_checked()
    expect(page.locator("#f-consent")).not_to_be_checked()
    if viewport is PHONE and language == "en" and javascript:
        page.screenshot(path=str(shots("errors-in-view").with_name("errors-in-view-viewport.png")))
        assert axe_violations(page) == []


def test_a_new_visitor_answered_from_the_page_cache_gets_it_compressed_and_can_endorse(
    live_server, page, javascript, monkeypatch
):
    # Another visitor's request fills the page cache, so this browser's first visit is answered
    # from it: the page compressed once, this visitor's token and cookie put in per request.
    zipped: list[str] = []  # the pages answered from a copy compressed once (the server's thread)
    find_zipped = CachedPageMiddleware._zipped

    def spy(self, page):
        found = find_zipped(self, page)
        if found is not None:
            zipped.append(page.body)
        return found

    monkeypatch.setattr(CachedPageMiddleware, "_zipped", spy)
    in_thread(lambda: urllib.request.urlopen(f"{live_server.url}{APPEAL}", timeout=30).read())  # noqa: S310
    response = page.goto(f"{live_server.url}{APPEAL}")
    assert response.status == 200 and response.headers.get("content-encoding") == "gzip"
    assert len(zipped) == 1 and b'name="csrf_token"' in zipped[0]
    name = "Initiative Kriegsdienstverweigerer Leipzig"
    fill_endorsement(page, name=name, country="DE", city="Leipzig", email="kdv@leipzig.example")
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_url("**/check-email**")
    expect(page.locator("main")).to_contain_text("kdv@leipzig.example")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_way_to_endorse_is_on_the_first_screen(live_server, page, javascript, viewport, shots):
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}{APPEAL}")
    link = page.get_by_role("link", name="Endorse this appeal", exact=True)
    expect(link).to_be_visible()
    assert in_view(page, ".endorse-cta a")
    box = link.bounding_box()
    assert box["y"] + box["height"] <= 844
    # The chart is below the appeal's text, not between the title and the way in.
    chart = page.locator(".country-chart, .counts").first.bounding_box()
    text = page.locator(".appeal-text").bounding_box()
    assert chart is None or chart["y"] > text["y"]
    link.click()
    page.wait_for_url("**#endorse")
    form = page.locator("#endorse form")
    expect(form).to_be_visible()
    section = page.locator("#endorse").bounding_box()
    assert -1 <= section["y"] < viewport["height"] / 2  # scrolled to the form, whatever is above it


ARABIC = "جمعية السلام"
HEBREW_CITY = "حيفا"


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_right_to_left_names_cities_and_comments_keep_their_place(live_server, database_url, page):
    in_thread(
        add_endorsements,
        database_url,
        rows=[
            {
                "organisation_name": ARABIC,
                "city": "Berlin",
                "country": "DE",
                "comment": "שלום לכולם.",
                "website": "",
            },
            {"organisation_name": "עמותת שלום", "city": HEBREW_CITY, "country": "IL", "website": ""},
        ],
    )
    page.set_viewport_size(PHONE)
    for path in (APPEAL, f"{APPEAL}/signatories"):
        page.goto(f"{live_server.url}{path}")
        item = page.locator(".signatory-list li", has_text=ARABIC)
        name = item.locator(".org-name")
        city = item.locator(".city")
        # Each is isolated: <bdi>, or dir="auto" on the element that holds it.
        for element in (name, city):
            assert element.evaluate("e => e.tagName === 'BDI' || e.getAttribute('dir') === 'auto'")
        # In a left-to-right page the name stays first and its city after it, on one line.
        name_box, city_box = name.bounding_box(), city.bounding_box()
        assert name_box["x"] + name_box["width"] <= city_box["x"] + 1
        other = page.locator(".signatory-list li", has_text=HEBREW_CITY)
        assert other.locator(".city").evaluate("e => e.tagName === 'BDI' || e.getAttribute('dir') === 'auto'")
    comment = page.locator(".signatory-list .comment", has_text="שלום")
    assert comment.evaluate("e => e.getAttribute('dir') === 'auto' || e.querySelector('bdi') !== null")
    assert axe_violations(page) == []


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_on_a_phone_the_chart_text_is_readable_and_the_languages_fit_on_one_line(live_server, database_url, page):
    in_thread(
        add_endorsements,
        database_url,
        rows=[{"country": c} for c in ("DE", "DE", "FR", "UA", "BA", "GB", "PL", "IT", "ES", "NL", "AT")],
    )
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}{APPEAL}")
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('.country-chart svg text')].map(t => {
            const svg = t.ownerSVGElement;
            const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            return parseFloat(getComputedStyle(t).fontSize) * scale;
        })"""
    )
    assert sizes and min(sizes) >= 12, sizes
    # Every language on one line: the links share one top.
    tops = page.evaluate(
        "() => [...document.querySelectorAll('.languages a')].map(a => Math.round(a.getBoundingClientRect().top))"
    )
    assert len(tops) >= 5 and len(set(tops)) == 1, tops
    right = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('.languages a')].map(a => a.getBoundingClientRect().right))"
    )
    assert right <= PHONE["width"]


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_radios_and_checkboxes_have_a_focus_ring_of_3_to_1_against_the_page(live_server, page):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}{APPEAL}")
    page.focus("#f-visibility-public")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # by keyboard: :focus-visible
    for selector in ("#f-visibility-public", "#f-authorised"):
        page.focus(selector)
        style = page.evaluate(
            "sel => { const s = getComputedStyle(document.querySelector(sel));"
            " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }",
            selector,
        )
        assert style[0] == "solid" and float(style[1].rstrip("px")) >= 2, style
        ring = tuple(int(n) for n in re.findall(r"\d+", style[2])[:3])
        assert _contrast(ring, (255, 255, 255)) >= 3, style


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_printing_the_appeal_leaves_out_the_form_and_fits_two_pages(live_server, page):
    page.goto(f"{live_server.url}{APPEAL}")
    page.emulate_media(media="print")
    for selector in ("section.endorse", ".endorse-cta", ".site-header nav", ".site-footer"):
        assert page.locator(selector).evaluate("e => getComputedStyle(e).display") == "none", selector
    assert page.locator(".appeal-text").is_visible()
    pdf = page.pdf(format="A4")
    pages = re.findall(rb"/Type\s*/Page(?!s)", pdf)
    assert 1 <= len(pages) <= 2, len(pages)
