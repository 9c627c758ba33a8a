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

# Narrow, each name above its bar: a phone shows the picture at about its own size, so its
# 14-unit text stays above 12 px (at 640 units wide with names beside the bars it was 6.6 px).
WIDTH = 340
LABEL_WIDTH = 0  # the country names start at the left edge, above their bars
BAR_LEFT = 0
VALUE_SPACE = 56  # room for the number after the longest bar
LABEL_HEIGHT = 17  # a name's line above its bar
ROW = 42
BAR_HEIGHT = 16
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
    def label_y(self) -> int:
        """The baseline of the country's name, above its bar."""
        return self.y - 5

    @property
    def text_y(self) -> int:
        """The baseline of the number, beside the bar's end."""
        return self.y + BAR_HEIGHT - 3

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
            y=TOP + LABEL_HEIGHT + i * ROW,
            width=round(max(1.0, span * n / largest), 1),
        )
        for i, (code, name, n) in enumerate(rows)
    )
    return CountryChart(bars=bars, height=TOP * 2 + len(bars) * ROW - (ROW - LABEL_HEIGHT - BAR_HEIGHT))
