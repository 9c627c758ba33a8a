"""ISO 3166-1 alpha-2 countries (pycountry's list), named in the reader's language (Babel)."""

from __future__ import annotations

from functools import cache

import pycountry
from babel import Locale

from petition.i18n import get_language

CODES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)


def is_country(code: str) -> bool:
    return code in CODES


def name(code: str, language: str | None = None) -> str:
    return _names(language or get_language()).get(code, code)


def _pycountry_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return country.name if country is not None else code


#: Names the project chooses over CLDR's: the appeal's own texts say "Bélarus" in French.
OUR_NAMES: dict[str, dict[str, str]] = {"fr": {"BY": "Bélarus"}}


@cache
def _names(language: str) -> dict[str, str]:
    territories = Locale.parse(language).territories
    ours = OUR_NAMES.get(language, {})
    return {code: ours.get(code) or territories.get(code) or _pycountry_name(code) for code in CODES}


@cache
def choices(language: str) -> list[tuple[str, str]]:
    """(code, name) sorted by the name as a reader of `language` expects."""
    from petition.collation import sort_key

    names = _names(language)
    return sorted(names.items(), key=lambda item: sort_key(item[1], language))
