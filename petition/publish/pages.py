"""Whole public pages rendered once per few seconds, with each visitor's CSRF token put in.

The appeal page is the same for every visitor of a language except for the CSRF
token in its form. Rendering it (the text, 250 countries in a list, the chart) costs
far more than serving it, so it is rendered with a placeholder instead of the token,
kept in the public cache (dropped with the appeal's counts), and each request gets a
copy with its own token. The placeholder is random per process, so no text a user
can submit can contain it.

Only requests whose query parameters are all in the page's `params` are served from the
cache: anything else (a form that came back with errors, an unexpected parameter) is
rendered fresh, so the cache cannot be filled with variants. Nor can spellings of one
page fill it: the key holds the language actually served (an unknown `?lang=zz` is
the page in the negotiated language, `?lang=DE` the German one) rather than the raw
`lang`, and the page's parsed `variant` of the other parameters (`?page=01` is page 1).

Serving a cached page costs far less than the way to it through the middleware, the
router and the handler, so `CachedPageMiddleware`, the application's outermost layer,
serves it first when it is in the cache: the same key, made by the same functions, the
same bytes and headers, with the request id, security headers and CSRF cookie made by
the same code as the middleware's that adds them to every other response. Whatever it
does not know for certain it leaves to the application.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from petition import i18n
from petition.appeals.states import AppealStatus
from petition.compression import (
    CONTENT_ENCODING,
    Compression,
    GzipTemplate,
    accepts_gzip,
    gzip_would_apply,
    gzipped_headers,
    vary_as_identity,
)
from petition.i18n_middleware import request_language
from petition.logs import request_id, request_id_for
from petition.publish.cache import PublicCache, public_cache
from petition.publish.cached import appeal_if_cached
from petition.publish.http import body_etag, tagged
from petition.security import CSRF, SecurityHeaders, new_secret, visitor_secret
from petition.web import services

CSRF_PLACEHOLDER = "csrf-" + secrets.token_urlsafe(24)
_PLACEHOLDER = CSRF_PLACEHOLDER.encode("ascii")
_NOT_STORED = {"content-length", "set-cookie"}
_NO_QUERY = QueryParams()
#: How many kinds of request CachedPageMiddleware remembers the page of.
_SEEN_KEPT = 2048
#: The longest path, query string and Accept-Language together that it remembers.
_SEEN_LENGTH = 512
_Where = tuple["CachedRoute", str, str, Hashable, str, bool]


@dataclass(frozen=True)
class CachedRoute:
    """A page served through `cached_page`: its route, and what tells its variants apart."""

    #: The route's path, as in its `Route` (`{slug}` names the appeal).
    path: str
    #: The query parameters it may be served from the cache with (`lang` among them).
    params: frozenset[str]
    #: The page's parameters other than `lang`, parsed as its handler parses them (a bad value
    #: raises HTTPException, which the handler answers).
    variant: Callable[[QueryParams], Hashable]
    #: Whether the page carries an ETag (`petition.publish.http.revalidatable`).
    revalidate: bool = False


@dataclass(frozen=True)
class StoredPage:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    has_form: bool
    #: The body cut at the placeholder: a visitor's copy is their token joined with these.
    parts: tuple[bytes, ...]
    #: `headers` as sent (names in lower case), without Content-Length.
    raw_headers: tuple[tuple[bytes, bytes], ...]
    #: A page without a form: every header as the handler sends it (Content-Length, and with
    #: `revalidate` the ETag and Cache-Control of `revalidatable`).
    served_headers: tuple[tuple[bytes, bytes], ...] | None
    #: The headers as CachedPageMiddleware sends them (with the security headers), by the
    #: `SecurityHeaders` that added them and whether they are for a client without gzip, and
    #: whether they hold the `Vary` gzip's layer gives that client: made at the first request
    #: served from this copy.
    prepared: dict[tuple[SecurityHeaders, bool], tuple[tuple[tuple[bytes, bytes], ...], bool]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    #: For a client that accepts gzip, by the `SecurityHeaders` that added theirs: the copy
    #: compressed once (`_Zipped`), or None where this copy is left to gzip's own layer.
    zipped: dict[SecurityHeaders, _Zipped | None] = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class _Zipped:
    """A stored copy as gzip's layer would send it, compressed once (`GzipTemplate`)."""

    template: GzipTemplate
    #: The prepared headers with gzip's changes (`gzipped_headers`); for a page without a form,
    #: Content-Length is the compressed body's.
    headers: tuple[tuple[bytes, bytes], ...]
    #: A page without a form: the compressed body, the same for every request.
    body: bytes | None


def page_key(appeal_id: int, path: str, variant: Hashable, language: str, explicit: bool) -> Hashable:
    """What `lang` changes in the page is the language it is in, and whether its links keep
    `?lang=` (`explicit`): with both in the key, its raw value must not be."""
    return (appeal_id, "page", path, variant, language, explicit)


def _stored(response: Response, *, revalidate: bool) -> StoredPage:
    body = bytes(response.body)
    headers = tuple((k, v) for k, v in response.headers.items() if k not in _NOT_STORED)
    has_form = _PLACEHOLDER in body
    served = None
    if not has_form:
        whole = Response(body, status_code=response.status_code, headers=dict(headers))
        if revalidate:
            tagged(whole, body_etag(body))
        served = tuple(whole.raw_headers)
    return StoredPage(
        status=response.status_code,
        headers=headers,
        body=body,
        has_form=has_form,
        parts=tuple(body.split(_PLACEHOLDER)),
        raw_headers=tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers),
        served_headers=served,
    )


async def cached_page(
    request: Request,
    *,
    route: CachedRoute,
    appeal_id: int,
    build: Callable[[str | None], Awaitable[Response]],
    extra: Hashable = None,
    fill: Callable[[bytes], bytes] | None = None,
) -> Response:
    """`build(csrf_token)` renders the page; None means "use the request's own token".

    `extra`: what else the page's bytes depend on (beside the route's variant, the language and
    the appeal), for a page CachedPageMiddleware does not serve (it knows only the route's).
    `fill`: the visitor's own parts put into the copy (after their token), as `build` marked them.
    """
    if request.method != "GET" or any(name not in route.params for name in request.query_params):
        return await build(None)
    scope = request.scope
    variant = route.variant(request.query_params)
    key = page_key(
        appeal_id,
        scope["path"],
        variant if extra is None else (variant, extra),
        i18n.get_language(),
        bool(scope["state"].get("lang_explicit")),
    )

    async def render_once() -> StoredPage:
        return _stored(await build(CSRF_PLACEHOLDER), revalidate=route.revalidate)

    page = await public_cache(request).get(key, render_once)
    body = page.body
    if page.has_form:
        body = services(request).csrf.token_for(request).encode("ascii").join(page.parts)
    if fill is not None:
        body = fill(body)
    return Response(body, status_code=page.status, headers=dict(page.headers))


def _vary_in_place(page: StoredPage, headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether gzip's layer would join `Accept-Encoding` to the one `Vary` among the copy's own
    headers (the first of `headers`), whatever token its form gets: one `Vary` there, and a
    body gzip applies to with any token (far above gzip's minimum size). Then the headers it
    sends can be made once per copy; else it adds to them per response."""
    own = list(headers[: len(page.raw_headers)])
    probe = {"type": "http.response.start", "status": page.status, "headers": own}
    return sum(1 for name, _ in own if name == b"vary") == 1 and gzip_would_apply(probe, len(page.body) - 1024)


class CachedPageMiddleware:
    """Serves the pages of `routes` from the page cache before anything else, when they are there.

    A GET of such a page, in a language (`?lang=`, a prefix, Accept-Language) and variant
    whose page is in the cache and fresh, of an appeal that is too, is answered here with
    what `cached_page` (and, for `revalidate`, `revalidatable`) would send, and with what the
    middleware around the application adds to every response: the request id
    (`petition.logs.request_id_for`, also set for log lines) and the security headers and a
    new visitor's CSRF cookie (`headers`, the `SecurityHeaders` that middleware adds), in the
    same order. Anything else — a miss, another method, other parameters, a body,
    `If-None-Match`, a path the path guard or the router would change — goes on to the
    application, which fills the cache.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: PublicCache,
        csrf: CSRF,
        headers: SecurityHeaders,
        routes: Sequence[CachedRoute],
        compression: Compression | None = None,
    ) -> None:
        self.app = app
        #: gzip (GZIP=true): `app` is wrapped in it, and a page answered here is sent through it.
        self.compression = compression
        self.cache = cache
        self.csrf = csrf
        self.headers = headers
        self.routes: list[tuple[re.Pattern[str], CachedRoute]] = [(compile_path(r.path)[0], r) for r in routes]
        #: `_where` of the requests seen, by (path, query string, Accept-Language).
        self._seen: dict[tuple[str, bytes, bytes | None], _Where | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        page = self._find(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        if page is None:
            await self.app(scope, receive, send)
            return
        rid = request_id_for(scope)
        id_header = (b"x-request-id", rid.encode("ascii"))
        gzip = self.compression is not None and accepts_gzip(scope)
        zipped = self._zipped(page) if gzip else None
        # Without gzip, the `Vary: Accept-Encoding` gzip's layer would add (vary_as_identity):
        # in the stored copy's headers where it goes in place, else added to this response.
        identity = self.compression is not None and not gzip
        if zipped is not None:  # compressed once: what gzip's layer would send, Content-Encoding last
            prepared, varied, ending = zipped.headers, True, [CONTENT_ENCODING]
        else:
            (prepared, varied), ending = self._prepared(page, identity), []
        if page.served_headers is not None:
            body = page.body if zipped is None or zipped.body is None else zipped.body
            headers = [*prepared, id_header, *ending]
        else:
            token, cookie = self._visitor(scope)
            body = zipped.template.body(token) if zipped is not None else token.join(page.parts)
            # Content-Length before the security headers, where the handler's Response has it.
            length = (b"content-length", str(len(body)).encode("latin-1"))
            own = len(page.raw_headers)
            headers = [*prepared[:own], length, *prepared[own:], *cookie, id_header, *ending]
        start = {"type": "http.response.start", "status": page.status, "headers": headers}
        if identity and not varied:
            vary_as_identity(start, len(body))
        context = request_id.set(rid)
        try:
            if gzip and zipped is None:
                assert self.compression is not None
                await self.compression.send_gzipped(scope, receive, send, start, body)
            else:
                await send(start)
                await send({"type": "http.response.body", "body": body})
        finally:
            request_id.reset(context)

    def _visitor(self, scope: Scope) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The token for the visitor's form, and a new visitor's cookie (with their new secret)."""
        secret = visitor_secret(scope)
        if secret is None:  # a new visitor: a secret, and the cookie that gives it to them
            secret = new_secret()
            return self.csrf.new_token(secret).encode("ascii"), [self.headers.cookie(secret)]
        return self.csrf.token(secret).encode("ascii"), []

    def _zipped(self, page: StoredPage) -> _Zipped | None:
        """The copy compressed once for clients that accept gzip, made at the first such request,
        or None where gzip's own layer must answer: a body gzip leaves alone, or headers whose
        `Vary` gzip's change would not leave in place (none, or more than one, of the copy's own)."""
        try:
            return page.zipped[self.headers]
        except KeyError:
            pass
        prepared, _varied = self._prepared(page, False)
        zipped = None
        if _vary_in_place(page, prepared):
            template = GzipTemplate(page.parts)
            headers = gzipped_headers(prepared)
            body = None
            if page.served_headers is not None:
                body = template.body()
                length = str(len(body)).encode("latin-1")
                headers = [(k, length if k == b"content-length" else v) for k, v in headers]
            zipped = _Zipped(template=template, headers=tuple(headers), body=body)
        page.zipped[self.headers] = zipped
        return zipped

    def _prepared(self, page: StoredPage, identity: bool) -> tuple[tuple[tuple[bytes, bytes], ...], bool]:
        """The stored copy's headers with the security headers added, made once per copy, and
        whether they hold the `Vary` a client without gzip gets (`identity`)."""
        key = (self.headers, identity)
        prepared = page.prepared.get(key)
        if prepared is not None:
            return prepared
        start = list(page.served_headers) if page.served_headers is not None else list(page.raw_headers)
        headers = list(self.headers.added(start))
        varied = identity and _vary_in_place(page, headers)
        if varied:
            own = headers[: len(page.raw_headers)]
            vary_as_identity({"type": "http.response.start", "status": page.status, "headers": own}, len(page.body))
            headers[: len(page.raw_headers)] = own
        prepared = page.prepared[key] = (tuple(headers), varied)
        return prepared

    def _find(self, scope: Scope) -> StoredPage | None:
        if scope.get("root_path") or "\x00" in scope["path"]:
            return None
        query_string: bytes = scope.get("query_string", b"")
        if b"%00" in query_string.lower():
            return None  # the path guard's 400
        accept_language = None
        for name, value in scope["headers"]:
            if name in (b"content-length", b"transfer-encoding", b"if-none-match"):
                return None  # a body has its limit; a revalidation its 304
            if name == b"accept-language" and accept_language is None:
                accept_language = value
        request = (scope["path"], query_string, accept_language)
        try:
            where = self._seen[request]
        except KeyError:
            where = self._where(scope, query_string)
            # A bound on memory, whatever the requests: few entries, none long.
            if len(scope["path"]) + len(query_string) + len(accept_language or b"") <= _SEEN_LENGTH:
                if len(self._seen) >= _SEEN_KEPT:
                    self._seen.clear()
                self._seen[request] = where
        if where is None:
            return None
        route, slug, path, variant, language, explicit = where
        appeal = appeal_if_cached(self.cache, slug=slug)
        if appeal is None or appeal["status"] == AppealStatus.DRAFT:
            return None
        page: StoredPage | None = self.cache.peek(page_key(appeal["id"], path, variant, language, explicit))
        if page is None or (page.served_headers is None and route.revalidate):
            return None
        return page

    def _where(self, scope: Scope, query_string: bytes) -> _Where | None:
        """Which page a request asks for (route, slug, path, variant, language, explicit), if one
        of `routes`: it depends on nothing but the path, the query string and Accept-Language,
        so `_find` remembers it for them."""
        query = QueryParams(query_string.decode("latin-1")) if query_string else None
        _prefix, path, language, explicit = request_language(scope, query)
        for regex, candidate in self.routes:
            match = regex.match(path)
            if match is not None:
                route = candidate
                break
        else:
            return None
        if query is not None and any(name not in route.params for name in query):
            return None
        try:
            variant = route.variant(query or _NO_QUERY)
        except HTTPException:
            return None
        return route, match["slug"], path, variant, language, explicit
