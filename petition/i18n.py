"""Languages: catalogues, negotiation, and the current language of a request or email.

Catalogues are the `.po` files under `petition/locale/`; they are compiled in memory
at start-up, so no binary `.mo` file lives in the repository or needs a build step.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from petition.resources import package_path

LANGUAGES: tuple[str, ...] = ("en", "de", "ru", "uk", "fr", "be", "pl", "es", "it")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = package_path("locale")

#: Each language named in itself, for the switcher.
LANGUAGE_NAMES = {code: (Locale.parse(code).get_display_name(code) or code).capitalize() for code in LANGUAGES}

_current: contextvars.ContextVar[str] = contextvars.ContextVar("petition_language", default=DEFAULT_LANGUAGE)


@cache
def translations(language: str) -> NullTranslations:
    po_path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT_LANGUAGE or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def get_language() -> str:
    return _current.get()


def set_language(language: str) -> contextvars.Token[str]:
    return _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


@contextmanager
def language(code: str) -> Iterator[None]:
    """Render in `code` for the duration (e.g. an email in the signatory's language)."""
    token = set_language(code)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str, **variables: object) -> str:
    text = translations(_current.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


def lazy_gettext(message: str) -> LazyString:
    return LazyString(message)


class LazyString:
    """A message translated when it is shown, not when the module is imported."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return gettext(self.message)

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self.message)


_ = gettext


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _sep, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0


def negotiate(query_lang: str | None, accept_language: str | None, *, prefix: str | None = None) -> str:
    """`?lang=xx` first, then a `/xx/` path prefix, then Accept-Language (by quality), then English."""
    for explicit in (query_lang, prefix):
        if explicit:
            code = explicit.strip().lower()
            if code in LANGUAGES:
                return code
    if accept_language:
        choices: list[tuple[float, int, str]] = []
        for index, part in enumerate(accept_language.split(",")[:20]):
            tag, _sep, params = part.strip().partition(";")
            code = tag.strip().lower().split("-")[0]
            quality = _quality(params)
            if code in LANGUAGES and quality > 0:
                choices.append((-quality, index, code))
        if choices:
            return sorted(choices)[0][2]
    return DEFAULT_LANGUAGE


def country_name(code: str, language: str | None = None) -> str:
    locale = Locale.parse(language or get_language())
    return locale.territories.get(code.upper(), code.upper())
