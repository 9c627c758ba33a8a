"""Whole public pages rendered once per few seconds, with each visitor's CSRF token put in.

The appeal page is the same for every visitor of a language except for the CSRF
token in its form. Rendering it (the text, 250 countries in a list, the chart) costs
far more than serving it, so it is rendered with a placeholder instead of the token,
kept in the public cache (dropped with the appeal's counts), and each request gets a
copy with its own token. The placeholder is random per process, so no text a user
can submit can contain it.

Only requests whose query parameters are all in `params` are served from the cache:
anything else (a form that came back with errors, an unexpected parameter) is
rendered fresh, so the cache cannot be filled with variants. Nor can spellings of one
page fill it: the key holds the language actually served (an unknown `?lang=zz` is
the page in the negotiated language, `?lang=DE` the German one) rather than the raw
`lang`, and the caller's parsed `variant` of the other parameters (`?page=01` is
page 1) where it gives one.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from petition import i18n
from petition.publish.cache import public_cache
from petition.web import services

CSRF_PLACEHOLDER = "csrf-" + secrets.token_urlsafe(24)
_PLACEHOLDER = CSRF_PLACEHOLDER.encode("ascii")
_NOT_STORED = {"content-length", "set-cookie"}


@dataclass(frozen=True)
class StoredPage:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    has_form: bool


async def cached_page(
    request: Request,
    *,
    appeal_id: int,
    params: Collection[str],
    build: Callable[[str | None], Awaitable[Response]],
    variant: Hashable = None,
) -> Response:
    """`build(csrf_token)` renders the page; None means "use the request's own token".

    `variant`: the page's parameters other than `lang` as the handler parsed them; without
    it, their raw values (in a fixed order) tell the pages apart.
    """
    if request.method != "GET" or any(name not in params for name in request.query_params):
        return await build(None)
    scope = request.scope
    if variant is None:
        variant = tuple(sorted((k, v) for k, v in request.query_params.multi_items() if k != "lang"))
    # What `lang` changes in the page is the language it is in, and whether its links keep
    # `?lang=` (lang_explicit): with both in the key, its raw value must not be.
    key = (appeal_id, "page", scope["path"], variant, i18n.get_language(), bool(scope["state"].get("lang_explicit")))

    async def render_once() -> StoredPage:
        response = await build(CSRF_PLACEHOLDER)
        headers = tuple((k, v) for k, v in response.headers.items() if k not in _NOT_STORED)
        return StoredPage(response.status_code, headers, bytes(response.body), _PLACEHOLDER in response.body)

    page = await public_cache(request).get(key, render_once)
    body = page.body
    if page.has_form:
        token = services(request).csrf.token_for(request)
        body = body.replace(_PLACEHOLDER, token.encode("ascii"))
    return Response(body, status_code=page.status, headers=dict(page.headers))
