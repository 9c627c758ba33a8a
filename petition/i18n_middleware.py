"""Sets the language of each request: `?lang=`, then Accept-Language, then English."""

from __future__ import annotations

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from petition import i18n


class LanguageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query_lang = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("lang")
        language = i18n.negotiate(query_lang, Headers(scope=scope).get("accept-language"))
        scope.setdefault("state", {})
        scope["state"]["lang_explicit"] = bool(query_lang) and query_lang.lower() == language
        token = i18n.set_language(language)
        try:
            await self.app(scope, receive, send)
        finally:
            i18n._current.reset(token)
