"""Small counts must not point at anyone: a country's few anonymous endorsements count as "other countries".

With ANONYMOUS_COUNT_THRESHOLD = 3 (the default), one or two organisations from Belarus that
asked not to be named are in the total and in `unattributed`, but nowhere attributed to
Belarus: not in the API's by_country, the appeal page's chart and its table, the signatories
page or its country filter. Three are attributed.
"""

from __future__ import annotations

import re

import pytest

from petition import i18n
from petition.publish.chart import country_chart
from petition.publish.queries import Counts
from petition.settings import SettingsError, load_settings
from tests.factories import add_endorsements

SLUG = "protect-deserters"


def api_counts(client) -> dict:
    return client.get(f"/api/appeals/{SLUG}").json()["counts"]


def counts_section(client) -> str:
    """The appeal page's counts and chart (the form below it lists every country anyway)."""
    html = client.get(f"/appeals/{SLUG}").text
    match = re.search(r'<section class="counts".*?</section>', html, re.S)
    assert match, "no counts on the appeal page"
    return match.group(0)


def signatories(client, **params: str) -> str:
    return client.get(f"/appeals/{SLUG}/signatories", params=params).text


def country_options(html: str) -> list[str]:
    select = re.search(r'<select id="filter-country".*?</select>', html, re.S)
    assert select
    return re.findall(r'<option value="([A-Z]{2})"', select.group(0))


def assert_not_attributed_to_belarus(client) -> None:
    section = counts_section(client)
    assert "Belarus" not in section
    assert "Other countries" in section
    page = signatories(client)
    assert "from Belarus" not in page
    assert "BY" not in country_options(page)
    only_belarus = signatories(client, country="BY")
    assert "from Belarus" not in only_belarus
    assert "other countries asked" not in only_belarus and "another country asked" not in only_belarus


def test_a_lone_anonymous_belarusian_group_is_not_attributed_to_belarus(client):
    add_endorsements(client, organisation_name="Connection e.V.", country="DE")
    add_endorsements(client, visibility="anonymous", organisation_name="Minsk Deserters Aid", country="BY")

    assert api_counts(client) == {"total": 2, "by_country": {"DE": 1}, "unattributed": 1}
    assert_not_attributed_to_belarus(client)
    section = counts_section(client)
    assert "2 organisations have endorsed this appeal." in section
    assert "1 of them asked not to be named." in section
    assert '<desc id="country-chart-desc">Germany: 1; Other countries: 1</desc>' in section
    assert re.search(r'<th scope="row">Other countries</th><td class="num">1</td><td class="num">1</td>', section)
    page = signatories(client)
    assert "2 organisations have endorsed this appeal." in page
    assert "1 organisation from another country asked not to be named." in page


def test_two_anonymous_belarusian_groups_beside_a_named_one_do_not_add_to_belarus(client):
    add_endorsements(client, organisation_name="Named Belarusian Group", country="BY")
    add_endorsements(client, visibility="anonymous", organisation_name="Quiet Group One", country="BY")
    add_endorsements(client, visibility="anonymous", organisation_name="Quiet Group Two", country="BY")

    # Belarus shows its named organisation only: "3 from Belarus, 1 named" would tell 2 hide.
    assert api_counts(client) == {"total": 3, "by_country": {"BY": 1}, "unattributed": 2}
    section = counts_section(client)
    assert re.search(r'<th scope="row">Belarus</th><td class="num">1</td><td class="num">0</td>', section)
    assert '<desc id="country-chart-desc">Belarus: 1; Other countries: 2</desc>' in section
    only_belarus = signatories(client, country="BY")
    assert "Named Belarusian Group" in only_belarus
    assert "from Belarus asked not to be named" not in only_belarus
    assert "other countries asked not to be named" not in only_belarus
    assert "2 organisations from other countries asked not to be named." in signatories(client)


def test_an_anonymous_group_in_a_country_with_only_anonymous_ones_leaves_no_trace_of_that_country(client):
    add_endorsements(client, visibility="anonymous", organisation_name="Minsk Deserters Aid", country="BY")
    add_endorsements(client, visibility="anonymous", organisation_name="Grodno Deserters Aid", country="BY")
    assert api_counts(client) == {"total": 2, "by_country": {}, "unattributed": 2}
    assert_not_attributed_to_belarus(client)
    # A chart still shows where the endorsements are from, as far as it may.
    assert '<desc id="country-chart-desc">Other countries: 2</desc>' in counts_section(client)


def test_three_anonymous_belarusian_groups_are_counted_in_belarus(client):
    for n in range(3):
        add_endorsements(client, visibility="anonymous", organisation_name=f"Quiet Group {n}", country="BY")
    add_endorsements(client, organisation_name="Named Belarusian Group", country="BY")

    assert api_counts(client) == {"total": 4, "by_country": {"BY": 4}, "unattributed": 0}
    section = counts_section(client)
    assert "Other countries" not in section
    assert re.search(r'<th scope="row">Belarus</th><td class="num">4</td><td class="num">3</td>', section)
    page = signatories(client)
    assert "3 organisations from Belarus asked not to be named." in page
    assert "other countries" not in page and "another country" not in page
    assert "BY" in country_options(page)
    assert "3 organisations from Belarus asked not to be named." in signatories(client, country="BY")


def test_the_threshold_setting_decides_how_many_anonymous_ones_a_country_needs(make_site):
    strict = make_site(anonymous_count_threshold=5).client
    for n in range(4):
        add_endorsements(strict, visibility="anonymous", organisation_name=f"Quiet Group {n}", country="BY")
    assert api_counts(strict) == {"total": 4, "by_country": {}, "unattributed": 4}
    assert "4 organisations from other countries asked not to be named." in signatories(strict)

    # The same database, read by a site that attributes from one on.
    lenient = make_site(anonymous_count_threshold=1).client
    assert api_counts(lenient) == {"total": 4, "by_country": {"BY": 4}, "unattributed": 0}
    assert "4 organisations from Belarus asked not to be named." in signatories(lenient)


def test_the_threshold_is_read_from_the_environment_and_must_be_at_least_one(monkeypatch, tmp_path):
    base = {"database_url": f"sqlite:///{tmp_path}/p.db", "secret_key": "x" * 32, "data_dir": str(tmp_path)}
    assert load_settings(env_file=None, **base).anonymous_count_threshold == 3
    monkeypatch.setenv("ANONYMOUS_COUNT_THRESHOLD", "7")
    assert load_settings(env_file=None, **base).anonymous_count_threshold == 7
    for bad in ("0", "-1", "three"):
        monkeypatch.setenv("ANONYMOUS_COUNT_THRESHOLD", bad)
        with pytest.raises(SettingsError, match="ANONYMOUS_COUNT_THRESHOLD"):
            load_settings(env_file=None, **base)


def test_the_api_description_documents_unattributed(client):
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["Appeal"]
    counts = schema["properties"]["counts"]
    assert set(counts["required"]) == {"total", "by_country", "unattributed"}
    assert counts["properties"]["unattributed"]["type"] == "integer"
    assert "ANONYMOUS_COUNT_THRESHOLD" in counts["description"]


def test_public_counts_keep_the_total_and_move_small_anonymous_counts_out_of_their_country():
    from petition.publish.queries import attributable_anonymous, public_counts

    raw = Counts(
        total=11, by_country={"DE": 5, "BY": 3, "RU": 2, "UA": 1}, anonymous_by_country={"BY": 2, "RU": 2, "DE": 3}
    )
    public = public_counts(raw, threshold=3)
    assert public.by_country == {"DE": 5, "BY": 1, "UA": 1}
    assert public.anonymous_by_country == {"DE": 3}
    assert public.unattributed == 4 and public.total == 11 == sum(public.by_country.values()) + 4
    assert public.anonymous_total == 7  # all anonymous ones, attributed or not
    assert [attributable_anonymous(n, threshold=3) for n in range(5)] == [0, 0, 0, 3, 4]
    assert public_counts(raw, threshold=1).by_country == raw.by_country


def test_a_small_anonymous_count_is_drawn_with_other_countries_never_as_its_own_bar():
    from petition.publish.queries import public_counts

    public = public_counts(
        Counts(total=9, by_country={"DE": 5, "FR": 2, "BY": 1, "IT": 1}, anonymous_by_country={"BY": 1}), threshold=3
    )
    with i18n.language("en"):
        chart = country_chart(public, "en", max_bars=3)
    assert chart is not None
    # Countries that do not fit join the unattributed ones in one bar that names no number of countries.
    assert [(b.code, b.name, b.count) for b in chart.bars] == [
        ("DE", "Germany", 5),
        ("FR", "France", 2),
        (None, "Other countries", 2),
    ]
    assert all(b.name != "Belarus" for b in chart.bars)
