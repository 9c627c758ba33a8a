"""Where signatories come from, as a horizontal bar chart drawn server-side in SVG.

Only geometry is computed here; `templates/publish/_country_chart.html` draws it,
so labels go through Jinja's escaping and the colours come from `static/css`.
No JavaScript: the chart is an image with a title and a description for screen
readers, and the page shows the same numbers as a table.

The counts are the public ones: anonymous endorsements that are not attributed to
their country (`Counts.unattributed`) are drawn as one last bar, "Other countries".
"""

from __future__ import annotations

from dataclasses import dataclass

from petition import countries
from petition.i18n import _, ngettext
from petition.publish.queries import Counts

WIDTH = 640
LABEL_WIDTH = 200  # the country names, right-aligned against the bars
BAR_LEFT = LABEL_WIDTH + 8
VALUE_SPACE = 64  # room for the number after the longest bar
ROW = 26
BAR_HEIGHT = 18
TOP = 4
MAX_LABEL = 26  # characters; longer names are shortened in the picture (the table has them whole)
MAX_BARS = 15


@dataclass(frozen=True)
class Bar:
    code: str | None  # None for "other countries"
    name: str
    label: str
    count: int
    y: int
    width: float

    @property
    def text_y(self) -> int:
        return self.y + BAR_HEIGHT - 4

    @property
    def value_x(self) -> float:
        return BAR_LEFT + self.width + 6


@dataclass(frozen=True)
class CountryChart:
    bars: tuple[Bar, ...]
    height: int
    width: int = WIDTH
    label_x: int = LABEL_WIDTH
    bar_left: int = BAR_LEFT
    bar_height: int = BAR_HEIGHT


def _shorten(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1].rstrip() + "…"


def country_chart(counts: Counts, language: str, *, max_bars: int = MAX_BARS) -> CountryChart | None:
    """Bars for the countries with most endorsements; the rest share one "other" bar.

    Unattributed endorsements go into a last bar, "Other countries", with the countries that
    did not fit (it then names no number of countries: the unattributed ones come from some).
    """
    if not counts.by_country and not counts.unattributed:
        return None
    ranked = sorted(counts.by_country.items(), key=lambda kv: (-kv[1], countries.name(kv[0], language)))
    room = max_bars - 1 if counts.unattributed else max_bars
    shown = ranked if len(ranked) <= room else ranked[: max_bars - 1]
    rows: list[tuple[str | None, str, int]] = [(code, countries.name(code, language), n) for code, n in shown]
    rest = ranked[len(shown) :]
    if counts.unattributed:
        rows.append((None, _("Other countries"), counts.unattributed + sum(n for _code, n in rest)))
    elif rest:
        other = ngettext("%(num)s other country", "%(num)s other countries", len(rest))
        rows.append((None, other, sum(n for _code, n in rest)))
    largest = max(n for _code, _name, n in rows)
    span = WIDTH - BAR_LEFT - VALUE_SPACE
    bars = tuple(
        Bar(
            code=code,
            name=name,
            label=_shorten(name),
            count=n,
            y=TOP + i * ROW,
            width=round(max(1.0, span * n / largest), 1),
        )
        for i, (code, name, n) in enumerate(rows)
    )
    return CountryChart(bars=bars, height=TOP * 2 + len(bars) * ROW)
