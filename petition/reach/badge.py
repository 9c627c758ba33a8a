"""The appeal's counter badge (`/appeals/{slug}/badge.svg`): an SVG partners put on their pages.

Built like the public log's badge (petition.transparency.receipt_views.badge_svg): role="img"
with a <title> that says it all, presentation attributes only (its CSP allows no style), no
script, no external reference. The count is what the public counts show (`Counts`): the total,
or a country's count in `by_country`, where a country's anonymous endorsements are included
only at ANONYMOUS_COUNT_THRESHOLD or more. A badge never tells more than the API does.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from petition.i18n import ngettext
from petition.publish.queries import Counts

#: Characters of the appeal's title the badge shows (the whole title is in its <title>).
TITLE_SHOWN = 60


def badge_count(counts: Counts, country: str | None) -> int:
    """The public count a badge shows: the total, or the country's in `by_country` (0 if absent)."""
    if country is None:
        return counts.total
    return counts.by_country.get(country, 0)


def count_sentence(count: int, number: str, country_name: str | None) -> str:
    if country_name is None:
        return ngettext(
            "%(num)s organisation has endorsed this appeal.",
            "%(num)s organisations have endorsed this appeal.",
            count,
            num=number,
        )
    return ngettext(
        "%(num)s organisation from %(country)s has endorsed this appeal.",
        "%(num)s organisations from %(country)s have endorsed this appeal.",
        count,
        num=number,
        country=country_name,
    )


def badge_svg(*, title: str, sentence: str, language: str) -> str:
    """An accessible SVG (role="img", <title>) that loads nothing: the count's sentence and the title."""
    short = title if len(title) <= TITLE_SHOWN else title[: TITLE_SHOWN - 1].rstrip() + "…"
    # Wide enough for DejaVu Sans Bold, the widest of the usual fonts (about 0.64 em a character).
    width = max(220, int(max(8.4 * len(sentence), 7.2 * len(short))) + 24)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="48" viewBox="0 0 {width} 48"'
        f' role="img" aria-labelledby="t" xml:lang="{escape(language)}">'
        f'<title id="t">{escape(sentence)} — {escape(title)}</title>'
        f'<rect width="{width}" height="48" rx="6" fill="#1d4f91"/>'
        '<g fill="#ffffff" font-family="Noto Sans,DejaVu Sans,Verdana,Arial,sans-serif">'
        f'<text x="12" y="20" font-size="13" font-weight="bold">{escape(sentence)}</text>'
        f'<text x="12" y="38" font-size="11">{escape(short)}</text>'
        "</g></svg>\n"
    )
