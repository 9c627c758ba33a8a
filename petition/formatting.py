"""Dates and numbers in the reader's language (Babel's CLDR data)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.lists import format_list as _format_list
from babel.numbers import format_decimal
from markupsafe import Markup, escape

from petition.i18n import get_language


def format_date(value: dt.datetime | dt.date | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.date()
    return _format_date(value, format=fmt, locale=get_language())


def format_datetime(value: dt.datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return _format_datetime(value, format=fmt, tzinfo=dt.UTC, locale=get_language())


def format_number(value: int | float) -> str:
    return format_decimal(value, locale=get_language())


def format_list(items: Iterable[object]) -> Markup:
    """ "A, B and C" in the current language (CLDR); each item escaped unless it is Markup already."""
    return Markup(_format_list([str(escape(item)) for item in items], locale=get_language()))  # noqa: S704 - escaped above
