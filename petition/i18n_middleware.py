"""Sets the language of each request: `?lang=`, a `/xx/` prefix, Accept-Language, English.

A language prefix is an alias: `/de/appeals/x` is served by the route of `/appeals/x`
in German. The prefix is taken off the path before routing, and links on the page then
carry `?lang=de` (see `petition.templating.page_url`), so one set of routes serves all
languages and no route has to know about prefixes.
"""

from __future__ import annotations

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from petition import i18n


def split_language_prefix(path: str) -> tuple[str | None, str]:
    """('de', '/appeals/x') for '/de/appeals/x'; (None, path) when there is no prefix."""
    first, sep, rest = path.lstrip("/").partition("/")
    if first in i18n.LANGUAGES and path.startswith("/"):
        return first, "/" + rest if sep else "/"
    return None, path


class LanguageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        prefix, path = split_language_prefix(scope["path"])
        if prefix is not None:
            scope = dict(scope)
            scope["path"] = path
            raw = scope.get("raw_path")
            if raw is not None:
                scope["raw_path"] = raw[len(prefix) + 1 :] or b"/"
        query_lang = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("lang")
        language = i18n.negotiate(query_lang, Headers(scope=scope).get("accept-language"), prefix=prefix)
        scope.setdefault("state", {})
        explicit = query_lang.strip().lower() if query_lang else prefix
        scope["state"]["lang_explicit"] = explicit == language
        token = i18n.set_language(language)
        try:
            await self.app(scope, receive, send)
        finally:
            i18n._current.reset(token)
