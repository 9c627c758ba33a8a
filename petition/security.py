"""CSRF tokens and the security headers every response carries."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from petition.logs import random_bytes
from petition.settings import Settings

CSRF_COOKIE = "petition_csrf"

#: How many returning visitors' tokens CSRF remembers (at most about 350 bytes each).
_TOKENS_KEPT = 10_000

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


class CSRF:
    """Double-submit: a random cookie, and a form field that is its HMAC under SECRET_KEY.

    The cookie is HttpOnly and SameSite=Lax; the keyed field means another site can
    neither read nor forge the pair. Hand-written because the Starlette CSRF
    middlewares on PyPI check a header for JavaScript clients, and every form here
    must work without JavaScript. A plain HMAC, not an itsdangerous serializer: the
    token is made for every new visitor of every page with a form, and the
    serializer's JSON and zlib steps cost a quarter of serving a cached page.
    """

    def __init__(self, settings: Settings) -> None:
        # A key of its own, derived from SECRET_KEY, so no other signature can pass for it.
        key = hmac.new(str(settings.secret_key).encode(), b"petition.csrf", hashlib.sha256).digest()
        # Keyed once: a copy per token costs less than keying HMAC anew for every new visitor.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        # Returning visitors' tokens, by their secret: a visitor reads page after page with one.
        self._tokens: dict[str, str] = {}

    def _token(self, secret: str) -> str:
        mac = self._keyed.copy()
        mac.update(secret.encode())
        return mac.hexdigest()

    def new_token(self, secret: str) -> str:
        """The token for a secret just made (not remembered: most new visitors never come back)."""
        return self._token(secret)

    def token(self, secret: str) -> str:
        """The form's token for `secret` (the cookie's value), remembered for the next page."""
        token = self._tokens.get(secret)
        if token is None:
            if len(self._tokens) >= _TOKENS_KEPT:
                self._tokens.clear()  # a bound on memory: the busiest visitors are back soon
            token = self._tokens[secret] = self._token(secret)
        return token

    def token_for(self, conn: HTTPConnection) -> str:
        state = conn.scope["state"]
        state["csrf_used"] = True
        secret = state["csrf_secret"]
        if secret is None:  # a new visitor's first token: their secret is made now, used once here
            secret = state["csrf_secret"] = new_secret()
            return self.new_token(secret)
        return self.token(secret)

    def check(self, request: Request, submitted: object) -> None:
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not isinstance(submitted, str) or not submitted or len(submitted) > 200:
            raise HTTPException(403, "csrf")
        if not secrets.compare_digest(self._token(cookie), submitted):
            raise HTTPException(403, "csrf")


class SecurityHeaders:
    """The headers every response carries, and the CSRF cookie of a new visitor.

    Made once for the application: `SecurityHeadersMiddleware` adds them to every response,
    and `petition.publish.pages.CachedPageMiddleware` to the cached pages it serves before it.
    """

    def __init__(self, settings: Settings) -> None:
        self.https = settings.https
        defaults = {
            "content-security-policy": CSP,
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "same-origin",
            "cross-origin-opener-policy": "same-origin",
            "permissions-policy": "camera=(), microphone=(), geolocation=()",
        }
        if self.https:
            defaults["strict-transport-security"] = "max-age=31536000; includeSubDomains"
        # Encoded once: this runs for every response.
        self.defaults = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in defaults.items())
        self._cookie_end = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.https else "")

    def added(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """`headers` (raw pairs) with each default added unless the response set its own."""
        present = {name.lower() for name, _value in headers}
        if b"content-security-policy" in present and _may_be_framed(headers):
            # A page that lets named origins frame it (petition.reach's embed): X-Frame-Options
            # knows no list of origins, and DENY would win over the CSP in older browsers.
            present.add(b"x-frame-options")
        headers.extend(pair for pair in self.defaults if pair[0] not in present)
        return headers

    def cookie(self, secret: str) -> tuple[bytes, bytes]:
        """The Set-Cookie header that gives a new visitor their CSRF secret."""
        return b"set-cookie", f"{CSRF_COOKIE}={secret}{self._cookie_end}".encode("latin-1")


def _may_be_framed(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-security-policy":
            for directive in value.split(b";"):
                parts = directive.split()
                if parts and parts[0].lower() == b"frame-ancestors" and parts[1:] != [b"'none'"]:
                    return True
    return False


def frame_ancestors_csp(origins: tuple[str, ...] | list[str]) -> str:
    """The site's CSP with `frame-ancestors` listing `origins` ('none' when there are none)."""
    sources = " ".join(origins) or "'none'"
    return CSP.replace("frame-ancestors 'none'", f"frame-ancestors {sources}")


def visitor_secret(scope: Scope) -> str | None:
    """The CSRF secret the visitor's cookie holds, or None for a new visitor (no cookie, or
    one no secret of ours can be)."""
    existing = None
    for name, value in scope["headers"]:
        if name == b"cookie":  # every Cookie header, the last one winning, as in Starlette's `request.cookies`
            existing = cookie_parser(value.decode("latin-1")).get(CSRF_COOKIE, existing)
    if not existing or len(existing) < 20 or len(existing) > 100:
        return None
    return existing


def new_secret() -> str:
    """A new visitor's CSRF secret: 32 random bytes, as `secrets.token_urlsafe(32)` makes them."""
    return base64.urlsafe_b64encode(random_bytes(32)).rstrip(b"=").decode("ascii")


class SecurityHeadersMiddleware:
    """Sets the CSRF cookie when missing, and the headers every page carries."""

    def __init__(self, app: ASGIApp, headers: SecurityHeaders) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        existing = visitor_secret(scope)
        scope.setdefault("state", {})
        # A new visitor's secret is made when a page first needs a token (CSRF.token_for).
        scope["state"]["csrf_secret"] = existing

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = self.headers.added(list(message.get("headers", [])))
                if existing is None and scope["state"].get("csrf_used"):
                    headers.append(self.headers.cookie(scope["state"]["csrf_secret"]))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


class BodySizeLimitMiddleware:
    """Refuses request bodies over a limit with 413 before anything parses them, and bodies whose
    next part does not arrive within `read_timeout` seconds with 408 (a slow client must not hold
    a request open for ever: petition.server gives the headers the same deadline)."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = scope.get("state", {}).get("max_body", self.max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await _plain(send, 413, b"Request body too large")
                    return
        received = 0

        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # The body is in: what comes now is a disconnect, which a streamed response
                # waits for as long as it streams. No deadline for that.
                return await receive()
            try:
                # A timeout scope, not wait_for: no task per read (the sign path reads every body).
                async with asyncio.timeout(self.read_timeout):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, "Request body too slow") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, "Request body too large")
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        await self.app(scope, limited_receive, send)


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class PathGuardMiddleware:
    """Paths no page has, answered before any code reads them.

    A NUL byte in the path or query is refused with 400: PostgreSQL refuses it in text, and
    would turn a lookup into a 500. Leading slashes are folded to one, so that `//host/`
    cannot become a protocol-relative link to another site in the page's own links (the
    language switcher and the pager repeat the path).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "\x00" in path or b"%00" in scope.get("query_string", b"").lower():
            await _plain(send, 400, b"Bad request")
            return
        if path.startswith("//"):
            raw = scope.get("raw_path") or path.encode()
            scope = {**scope, "path": "/" + path.lstrip("/"), "raw_path": b"/" + raw.lstrip(b"/")}
        await self.app(scope, receive, send)
