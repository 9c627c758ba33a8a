"""What a dossier holds: languages, order, and the canonical list."""

from __future__ import annotations

import datetime as dt
import hashlib

from petition.dossiers.content import Signatory, canonical_list, country_language, sort_signatories


def org(name: str, city: str = "") -> Signatory:
    return Signatory(name=name, city=city, organisation_type="peace", website="", endorsed_on=dt.date(2026, 1, 2))


def test_each_country_reads_its_language_where_the_platform_has_it() -> None:
    expected = {
        **dict.fromkeys(("DE", "AT", "CH"), "de"),
        **dict.fromkeys(("FR", "BE", "LU"), "fr"),
        **dict.fromkeys(("RU", "BY", "KZ"), "ru"),
        "UA": "uk",
        "PL": "pl",
        **dict.fromkeys(("ES", "AD"), "es"),
        **dict.fromkeys(("IT", "SM", "VA"), "it"),
        # No language of its own on the platform: English.
        **dict.fromkeys(("GE", "NL", "PT"), "en"),
    }
    assert {country: country_language(country) for country in expected} == expected


def test_names_sort_as_readers_expect_across_scripts_and_accents() -> None:
    names = [
        "Zukunft",
        "Ärzte für den Frieden",
        "arzte ohne Grenzen",
        "Союз",
        "Ένωση",
        "Bürger",
        "Абхазия",
        "Éire",
    ]
    ordered = [s.name for s in sort_signatories([org(n) for n in names])]
    # UCA: accents and case only break ties, so "Ärzte für" comes before "arzte ohne".
    assert ordered == [
        "Ärzte für den Frieden",
        "arzte ohne Grenzen",
        "Bürger",
        "Éire",
        "Zukunft",
        "Ένωση",
        "Абхазия",
        "Союз",
    ]


def test_the_canonical_list_is_documented_bytes_in_code_point_order() -> None:
    rows = [org("Zeta\tTab", "Köln"), org("alpha\\back"), org("Beta\nline")]
    data = canonical_list(appeal_slug="protect-deserters", country="DE", signatories=rows, anonymous_count=4)
    assert (
        data
        == (
            "petition-dossier-list/1\nappeal\tprotect-deserters\ncountry\tDE\nnamed\t3\nanonymous\t4\n"
            "Beta\\nline\t\tpeace\t\t2026-01-02\n"
            "Zeta\\tTab\tKöln\tpeace\t\t2026-01-02\n"
            "alpha\\\\back\t\tpeace\t\t2026-01-02\n"
        ).encode()
    )
    # The order of the input does not matter: the digest is of the list, not of a view of it.
    again = canonical_list(appeal_slug="protect-deserters", country="DE", signatories=rows[::-1], anonymous_count=4)
    assert hashlib.sha256(again).hexdigest() == hashlib.sha256(data).hexdigest()


def test_packed_collation_keys_order_names_as_pyuca_does() -> None:
    # The keys are pyuca's weights packed into bytes: the order must be pyuca's own, for
    # every script and for the weights pyuca computes (CJK and unassigned code points).
    from petition.dossiers.content import _collator, collation_key

    collator = _collator()
    names = [
        "Zukunft",
        "Ärzte",
        "arzte",
        "Arzte",
        "Ένωση",
        "Союз",
        "Союз 2",
        "Союз 10",
        "მშვიდობა",
        "Խաղաղություն",
        "ארגון",
        "جمعية",
        "平和の会",
        "和平",
        "\U00020000\U0002a6d6",
        "\U0002b820",
        "\U000e0001",
        "\ufffd",
        "e\u0301",
        "é",
        "",
        " ",
        "a b",
        "ab",
    ]
    expected = sorted(names, key=lambda name: (collator.sort_key(name), name))
    assert sorted(names, key=collation_key) == expected
    assert sorted(reversed(names), key=collation_key) == expected
