"""The demo appeal asks the same for everyone its title names: each demand that names countries
names Russia, Belarus and Ukraine, in every language the demo ships."""

from __future__ import annotations

import re

import pytest

from petition.appeals.queries import DEMO_DIR
from petition.appeals.textfile import read_text_file

#: How each language names the three countries (any grammatical case the text uses).
COUNTRIES = {
    "en": (r"Russia", r"Belarus", r"Ukraine"),
    "de": (r"Russland", r"Belarus", r"Ukraine"),
    "fr": (r"Russie", r"Bélarus", r"Ukraine"),
    "ru": (r"Росси[ияю]", r"Беларус[иьюя]", r"Украин[аыуе]"),
    "uk": (r"Росі[їяю]", r"Білорус[іьюя]", r"Україн[аиуі]"),
}


def demands(body: str) -> list[str]:
    section = body.split("\n## ", 1)[1]
    return [" ".join(item.split()) for item in re.split(r"\n\d\. ", "\n" + section.split("\n", 1)[1])[1:]]


@pytest.mark.parametrize("language", sorted(COUNTRIES))
def test_every_demand_that_names_a_country_names_all_three(language):
    text = read_text_file(DEMO_DIR / f"{language}.md")
    russia, belarus, ukraine = (re.compile(pattern) for pattern in COUNTRIES[language])
    assert all(pattern.search(text.title) for pattern in (russia, belarus, ukraine))
    items = demands(text.body)
    assert len(items) == 5
    for item in items:
        if russia.search(item) or belarus.search(item):
            assert russia.search(item) and belarus.search(item) and ukraine.search(item), item
    # Protection and no deportation: the two demands the title's three countries must all share.
    assert all(ukraine.search(items[i]) for i in (0, 2))
