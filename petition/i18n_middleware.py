"""Sets the language of each request: `?lang=`, a `/xx/` prefix, Accept-Language, English.

A language prefix is an alias: `/de/appeals/x` is served by the route of `/appeals/x`
in German. The prefix is taken off the path before routing, and links on the page then
carry `?lang=de` (see `petition.templating.page_url`), so one set of routes serves all
languages and no route has to know about prefixes.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from petition import i18n


def split_language_prefix(path: str) -> tuple[str | None, str]:
    """('de', '/appeals/x') for '/de/appeals/x'; (None, path) when there is no prefix."""
    first, sep, rest = path.lstrip("/").partition("/")
    if first in i18n.LANGUAGES and path.startswith("/"):
        return first, "/" + rest if sep else "/"
    return None, path


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def request_language(scope: Scope, query: QueryParams | None) -> tuple[str | None, str, str, bool]:
    """(prefix, path without it, language, explicit) of a request: `explicit` when `?lang=` or the
    prefix named the language it gets, so that the page's links keep it."""
    prefix, path = split_language_prefix(scope["path"])
    query_lang = query.get("lang") if query is not None else None
    language = i18n.negotiate(query_lang, header(scope, b"accept-language"), prefix=prefix)
    explicit = query_lang.strip().lower() if query_lang else prefix
    return prefix, path, language, explicit == language


class LanguageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query_string = scope.get("query_string", b"")
        query = QueryParams(query_string.decode("latin-1")) if query_string else None
        prefix, path, language, explicit = request_language(scope, query)
        if prefix is not None:
            scope = dict(scope)
            scope["path"] = path
            raw = scope.get("raw_path")
            if raw is not None:
                scope["raw_path"] = raw[len(prefix) + 1 :] or b"/"
        scope.setdefault("state", {})
        scope["state"]["lang_explicit"] = explicit
        token = i18n.set_language(language)
        try:
            await self.app(scope, receive, send)
        finally:
            i18n._current.reset(token)
