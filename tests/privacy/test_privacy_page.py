from __future__ import annotations


def test_privacy_page_is_linked_from_every_page_and_says_what_why_how_long(client):
    assert 'href="/privacy"' in client.get("/appeals/protect-deserters").text
    page = client.get("/privacy")
    assert page.status_code == 200
    for heading in ("What we keep", "Why", "For how long"):
        assert heading in page.text
    assert "30 days" in page.text  # UNCONFIRMED_RETENTION_DAYS
    assert 'href="/privacy/data"' in page.text
    german = client.get("/privacy?lang=de")
    assert '<html lang="de"' in german.text
