"""What a link to an appeal shows where it is shared: the description, the share card's
version and the Open Graph / Twitter fields (templates/_share_meta.html prints them).

The card (a 1200×630 PNG, petition.reach.cards) shows the count; it is drawn again only when
the count moves by a step (`count_step`), so its version — and the `v` in its URL, which
tells social networks' caches that the image changed — changes with the step, the title, the
site's name and the drawing's own version, and with nothing else.
"""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any

from petition.i18n import gettext
from petition.markdown import render_markdown
from petition.settings import Settings

#: Bumped whenever the card's drawing changes: every card is drawn again.
CARD_DRAWING = 1
CARD_SIZE = (1200, 630)
#: Characters of the appeal's text a description keeps.
DESCRIPTION_LENGTH = 200
#: Characters of the summary one line of the embed shows.
SUMMARY_LENGTH = 140

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def count_step(total: int) -> int:
    """The count a card shows, rounded down to two significant digits: 7, 45, 120, 1,200…"""
    if total < 100:
        return max(total, 0)
    step = 10 ** (len(str(total)) - 2)
    return total // step * step


def card_version(*, title: str, site_name: str, total: int, language: str) -> str:
    """What decides the card's pixels: a new value means a new drawing (and a new URL)."""
    parts = (CARD_DRAWING, language, title, site_name, count_step(total))
    return hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).hexdigest()


def plain_summary(body: str, limit: int = DESCRIPTION_LENGTH) -> str:
    """The appeal's Markdown as one line of plain text, cut at a word within `limit` characters."""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", render_markdown(body)))).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.–—-") + "…"


def site_name(settings: Settings) -> str:
    """The site's name as pages and cards show it (SITE_NAME, or a translated default)."""
    return settings.operator.site_name or gettext("Appeal platform")


def share_meta(*, settings: Settings, appeal: Any, text: Any, language: str, total: int) -> dict[str, str]:
    """The fields of templates/_share_meta.html for an appeal in `language` (absolute URLs under BASE_URL)."""
    slug = appeal["slug"]
    name = site_name(settings)
    version = card_version(title=str(text["title"]), site_name=name, total=total, language=language)
    return {
        "title": str(text["title"]),
        "description": plain_summary(str(text["body"])),
        "url": settings.url_for_path(f"/appeals/{slug}?lang={language}"),
        "image": settings.url_for_path(f"/appeals/{slug}/card.png?lang={language}&v={version}"),
        "image_alt": str(text["title"]),
        "site_name": name,
        "locale": language,
    }
