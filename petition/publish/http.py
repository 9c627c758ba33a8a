"""Responses of the public side: HTML-safe JSON, ETag/Cache-Control with 304 on revalidation,
and streamed downloads.

A body's ETag changes with whatever changes what a client would see (a new endorsement,
another language, another page) and with nothing else. For small bodies it is a digest of
the body (`revalidatable`): the body is built, and a client that holds it gets a 304 of a
few bytes instead. A list that may be long is not built to answer a revalidation: its tag is
a digest of what decides the body (`etag_of`: the list's version, the filters, the format),
known before a single row is read, so a 304 costs no more than that version, and a streamed
body carries its tag in its headers like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

#: Lists change as organisations sign: caches may keep them briefly, then must ask again.
PUBLIC_MAX_AGE = 0  # revalidate every time (cheap with the ETag): a withdrawal shows at once

_HTML_SENSITIVE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
#: Headers a 304 repeats from the response it stands for.
_CARRIED = ("Vary", "Content-Language")


class PublicJSONResponse(JSONResponse):
    """JSON whose strings cannot close a <script> or open a tag if someone pastes it into HTML.

    `<`, `>` and `&` are written as \\u escapes: the parsed data is unchanged.
    """

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        return text.translate(_HTML_SENSITIVE).encode("utf-8")


def body_etag(body: bytes | memoryview) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_of(*parts: object) -> str:
    """A strong ETag for a body that is streamed or not built yet: a digest of what decides it.

    The parts must decide the body byte for byte (a format version among them, so that a
    change of format changes every tag).
    """
    return body_etag(repr(parts).encode("utf-8"))


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def _cache_control(max_age: int) -> str:
    return f"public, max-age={max_age}, must-revalidate"


def not_modified(
    request: Request, etag: str, *, max_age: int = PUBLIC_MAX_AGE, headers: Mapping[str, str] | None = None
) -> Response | None:
    """A 304 when the client already holds `etag` (the `headers` of the full answer that it
    repeats are kept), else None: the caller builds the body."""
    if_none_match = request.headers.get("if-none-match")
    if not (if_none_match and request.method in ("GET", "HEAD") and _matches(if_none_match, etag)):
        return None
    kept = {"ETag": etag, "Cache-Control": _cache_control(max_age)}
    for name in _CARRIED:
        if headers and name in headers:
            kept[name] = headers[name]
    return Response(status_code=304, headers=kept)


def tagged(response: Response, etag: str, *, max_age: int = PUBLIC_MAX_AGE) -> Response:
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = _cache_control(max_age)
    return response


def revalidatable(request: Request, response: Response, *, max_age: int = PUBLIC_MAX_AGE) -> Response:
    """Give a public response an ETag and Cache-Control; answer 304 when the client has it."""
    etag = body_etag(response.body)
    return not_modified(request, etag, max_age=max_age, headers=response.headers) or tagged(
        response, etag, max_age=max_age
    )


class Download(StreamingResponse):
    """A streamed body that stops as soon as its client has gone.

    uvicorn's `send` does not fail once the client has gone, so without this watch on
    `receive()` a download whose client left would still read and encode the whole list.
    (`BodySizeLimitMiddleware`'s read deadline ends with the request body: waiting here for
    a disconnect is never cut short; a 408 from it would only mean "wait again".)
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self.stream_response(send))
        watching = asyncio.ensure_future(_until_disconnected(receive))
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, watching):
                task.cancel()
            await asyncio.wait((streaming, watching))
            closing = getattr(self.body_iterator, "aclose", None)
            if closing is not None:
                with contextlib.suppress(RuntimeError):  # still running: it is being cancelled
                    await closing()
        for task in (streaming, watching):
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error


async def _until_disconnected(receive: Receive) -> None:
    while True:
        try:
            message = await receive()
        except HTTPException as exc:
            if exc.status_code == 408:  # a read deadline passed: the client sent nothing, as expected
                continue
            raise
        if message["type"] == "http.disconnect":
            return
