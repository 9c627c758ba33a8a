"""The geometry of the country chart."""

from __future__ import annotations

from petition import i18n
from petition.publish.chart import BAR_HEIGHT, LABEL_HEIGHT, ROW, TOP, country_chart
from petition.publish.queries import Counts


def counts(**by_country: int) -> Counts:
    return Counts(total=sum(by_country.values()), by_country=by_country, anonymous_by_country={})


def test_no_endorsements_no_chart():
    assert country_chart(counts(), "en") is None


def test_bars_are_ranked_scaled_and_named_in_the_readers_language():
    with i18n.language("de"):
        chart = country_chart(counts(FR=2, DE=4, BY=1), "de")
    assert chart is not None
    assert [b.name for b in chart.bars] == ["Deutschland", "Frankreich", "Belarus"]
    assert [b.count for b in chart.bars] == [4, 2, 1]
    assert chart.bars[0].width == 2 * chart.bars[1].width == 4 * chart.bars[2].width
    # Each name on its line above its bar.
    first = TOP + LABEL_HEIGHT
    assert [b.y for b in chart.bars] == [first, first + ROW, first + 2 * ROW]
    assert all(0 < b.y - b.label_y < LABEL_HEIGHT for b in chart.bars)
    assert chart.height >= chart.bars[-1].y + BAR_HEIGHT


def test_long_names_are_shortened_in_the_picture_only():
    chart = country_chart(counts(SH=1), "en")
    assert chart is not None
    [bar] = chart.bars
    assert bar.name == "St. Helena, Ascension & Tristan da Cunha"
    assert bar.label == "St. Helena, Ascension & T…" and len(bar.label) == 26


def test_beyond_the_limit_the_smallest_countries_share_one_bar():
    chart = country_chart(counts(DE=5, FR=4, IT=3, ES=2, NL=1, BE=1), "en", max_bars=4)
    assert chart is not None
    assert [b.code for b in chart.bars] == ["DE", "FR", "IT", None]
    assert chart.bars[-1].name == "3 other countries" and chart.bars[-1].count == 4
