"""axe-core finds no serious or critical violation on the receipt pages: waiting for the log,
a named organisation's (with its badge), an anonymous one's (with what opens its commitment)."""

from __future__ import annotations

import pytest

from tests.journeys.conftest import axe_violations
from tests.journeys.test_browser_receipt import endorse_and_confirm, open_until_logged

#: The markup, not the database: once, when scripts/test runs both passes.
pytestmark = pytest.mark.one_pass


@pytest.mark.parametrize("javascript", [True], ids=["js"])
@pytest.mark.parametrize("visibility", ["public", "anonymous"])
def test_receipt_pages_have_no_serious_violations(live_server, smtp, page, visibility):
    receipt = endorse_and_confirm(
        live_server,
        smtp,
        page,
        name="Axe Receipt Org",
        email=f"{visibility}@axe-receipt.example",
        visibility=visibility,
    )
    open_until_logged(page, receipt)
    assert axe_violations(page) == []
    page.goto(receipt.replace("?lang=en", "?lang=uk") if "?lang=" in receipt else receipt + "?lang=uk")
    assert page.locator("html").get_attribute("lang") == "uk"
    assert axe_violations(page) == []


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_an_invalid_receipt_link_has_no_serious_violations(live_server, page):
    response = page.goto(f"{live_server.url}/receipts/not-a-receipt")
    assert response.status == 400
    assert axe_violations(page) == []
