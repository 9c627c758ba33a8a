"""gzip for text responses (GZIP=true, the default): HTML, JSON, CSV, SVG, CSS.

Starlette's GZipMiddleware does the work; this adds what it leaves out. Bodies under 500 bytes
are sent as they are (gzip's header would eat the gain), and so are formats that are
compressed already (PNG, ICO, PDF, ZIP: its list, plus ours) and responses that already carry
a Content-Encoding. A compressed body is another representation of the resource, so its ETag
becomes weak (`W/"…"`, as nginx does), and so does every tag a client that accepts gzip is
sent, compressed or not, 200 or 304 (one tag for one resource and client); `If-None-Match`
with either form still gets its 304 (petition.publish.http compares tags weakly).

Behind a reverse proxy that compresses, set GZIP=false: compressing twice costs CPU for nothing
(docs/reach.md).
"""

from __future__ import annotations

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MINIMUM_SIZE = 500
#: zlib's default: level 9 costs about twice the CPU for a few per cent.
LEVEL = 6
EXCLUDED = (
    *DEFAULT_EXCLUDED_CONTENT_TYPES,
    "application/pdf",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "application/octet-stream",
)


class Compression:
    def __init__(self, app: ASGIApp) -> None:
        self.gzip = GZipMiddleware(app, minimum_size=MINIMUM_SIZE, compresslevel=LEVEL, exclude_content_types=EXCLUDED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.gzip(scope, receive, send)
            return

        accepts = any(k == b"accept-encoding" and b"gzip" in v for k, v in scope["headers"])

        async def weaken_etag(message: Message) -> None:
            if accepts and message["type"] == "http.response.start":
                # Every tag this client sees is weak, whether this body was compressed or left as it
                # is (under MINIMUM_SIZE): a 304 cannot know which the 200 would have been, and the
                # 200 and the 304 must carry the same tag. Weak tags revalidate all the same.
                headers = message.get("headers", [])
                message["headers"] = [
                    (k, b"W/" + v if k.lower() == b"etag" and not v.startswith(b"W/") else v) for k, v in headers
                ]
            await send(message)

        await self.gzip(scope, receive, weaken_etag)
