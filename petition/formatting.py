"""Dates and numbers in the reader's language (Babel's CLDR data)."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.numbers import format_decimal

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
