"""Responses of the public side: HTML-safe JSON, and ETag/Cache-Control with 304 on revalidation.

The ETag is a digest of the body: whatever changes what a client would see (a new
endorsement, another language, another page) changes the tag, and nothing else does.
The body still has to be built to know its digest, but a client or cache that holds
it gets a 304 of a few bytes instead of the whole list again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

#: Lists change as organisations sign: caches may keep them briefly, then must ask again.
PUBLIC_MAX_AGE = 0  # revalidate every time (cheap with the ETag): a withdrawal shows at once

_HTML_SENSITIVE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})


class PublicJSONResponse(JSONResponse):
    """JSON whose strings cannot close a <script> or open a tag if someone pastes it into HTML.

    `<`, `>` and `&` are written as \\u escapes: the parsed data is unchanged.
    """

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        return text.translate(_HTML_SENSITIVE).encode("utf-8")


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def revalidatable(request: Request, response: Response, *, max_age: int = PUBLIC_MAX_AGE) -> Response:
    """Give a public response an ETag and Cache-Control; answer 304 when the client has it."""
    etag = _etag(response.body)
    cache_control = f"public, max-age={max_age}, must-revalidate"
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and request.method in ("GET", "HEAD") and _matches(if_none_match, etag):
        headers = {"ETag": etag, "Cache-Control": cache_control}
        for name in ("Vary", "Content-Language"):
            if name in response.headers:
                headers[name] = response.headers[name]
        return Response(status_code=304, headers=headers)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache_control
    return response
