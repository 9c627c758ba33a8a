"""Share cards: a 1200×630 PNG per appeal and language, drawn with Noto, cached on disk."""

from __future__ import annotations

import io
import re
from html import unescape

from PIL import Image, ImageChops

from petition.publish.share import count_step
from petition.reach.cards import CardText, _coverage, render_card, runs
from tests.conftest import BASE_URL
from tests.factories import add_endorsements

SLUG = "protect-deserters"
CYRILLIC = "Защита и убежище для дезертиров и отказников"
LATIN = "Protection and asylum for deserters and objectors"


def image(png: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG"
    return picture


def card(title: str, count_line: str = "12 organisations have endorsed this appeal.") -> Image.Image:
    return image(render_card(CardText(title=title, count_line=count_line, site_name="Appeal platform", language="en")))


def title_area(picture: Image.Image) -> Image.Image:
    return picture.crop((0, 0, 1200, 330)).convert("RGB")


def test_every_character_of_cyrillic_and_latin_text_has_a_real_glyph():
    for text in (CYRILLIC, LATIN, "Захист і притулок — Ўўі Ёё «Ґґ Єє Її»", "Schutz für Verweigerer — Ça, Łódź"):
        for bold in (True, False):
            for path, part in runs(text, bold=bold):
                assert "Noto" in path
                missing = [c for c in part if not c.isspace() and ord(c) not in _coverage(path)]
                assert not missing, (path, missing)  # would be drawn as the .notdef box (tofu)


def test_a_cyrillic_title_renders_as_letters_not_tofu():
    cyrillic = card(CYRILLIC)
    assert cyrillic.size == (1200, 630)
    latin = card(LATIN)
    assert ImageChops.difference(title_area(cyrillic), title_area(latin)).getbbox() is not None
    # The same number of characters no font has (each drawn as .notdef): not what the title looks like.
    tofu = card("".join(" " if c == " " else "\U000f0000" for c in CYRILLIC))
    assert ImageChops.difference(title_area(cyrillic), title_area(tofu)).getbbox() is not None
    # And two different Cyrillic titles differ: letters, not one box repeated.
    other = card("Обращение к Европейскому парламенту и ПАСЕ о защите")
    assert ImageChops.difference(title_area(cyrillic), title_area(other)).getbbox() is not None


def test_a_title_in_another_script_falls_back_to_a_noto_font():
    for path, part in runs("Ժողովուրդ ქართული", bold=True):
        if not part.isspace():
            assert "Noto" in path and all(ord(c) in _coverage(path) or c.isspace() for c in part)


def test_the_appeal_page_names_its_card_and_the_card_is_a_1200x630_png(client):
    add_endorsements(client, 3, country="DE")
    for lang in ("en", "ru"):
        page = client.get(f"/appeals/{SLUG}?lang={lang}").text
        og = {m[0]: unescape(m[1]) for m in re.findall(r'<meta property="(og:[a-z:]+)" content="([^"]*)">', page)}
        assert og["og:title"] and og["og:description"]
        assert og["og:image"].startswith(f"{BASE_URL}/appeals/{SLUG}/card.png?lang={lang}&v=")
        assert re.search(r'<meta name="description" content="[^"]{40,}">', page)
        assert '<meta name="twitter:card" content="summary_large_image">' in page
        response = client.get(og["og:image"].removeprefix(BASE_URL))
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert "content-encoding" not in response.headers  # PNG is compressed already
        assert image(response.content).size == (1200, 630)
    english = client.get(f"/appeals/{SLUG}/card.png?lang=en").content
    russian = client.get(f"/appeals/{SLUG}/card.png?lang=ru").content
    assert english != russian


def test_signatories_and_receipt_pages_share_the_appeal(client):
    page = client.get(f"/appeals/{SLUG}/signatories").text
    assert f'<meta property="og:image" content="{BASE_URL}/appeals/{SLUG}/card.png?lang=en&amp;v=' in page
    assert '<meta name="description"' in page


def test_the_card_is_drawn_once_per_step_of_the_count(client, settings):
    cards = settings.data_dir / "cards"
    first = client.get(f"/appeals/{SLUG}/card.png?lang=de")
    files = sorted(cards.glob(f"{SLUG}.de.*.png"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = client.get(f"/appeals/{SLUG}/card.png?lang=de")
    assert again.content == first.content and files[0].stat().st_mtime_ns == stamp
    etag = first.headers["etag"]
    assert client.get(f"/appeals/{SLUG}/card.png?lang=de", headers={"If-None-Match": etag}).status_code == 304
    add_endorsements(client, 1, country="DE")
    moved = client.get(f"/appeals/{SLUG}/card.png?lang=de")
    assert moved.headers["etag"] != etag and moved.content != first.content
    assert [p.name for p in cards.glob(f"{SLUG}.de.*.png")] != [files[0].name]  # the old one is gone
    assert len(list(cards.glob(f"{SLUG}.de.*.png"))) == 1


def test_the_count_steps():
    assert [count_step(n) for n in (0, 7, 99, 100, 109, 110, 1234, 98765)] == [0, 7, 99, 100, 100, 110, 1200, 98000]
