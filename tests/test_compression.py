"""A client that does not accept gzip gets what Starlette's GZipMiddleware would send it.

petition.compression answers such a client without Starlette's identity responder (which cost
a cached appeal page more than the page itself): the messages must stay the same, message by
message, `Vary: Accept-Encoding` included exactly where Starlette adds it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from starlette.middleware.gzip import GZipMiddleware

from petition.compression import EXCLUDED, LEVEL, MINIMUM_SIZE, Compression

BIG = b"<p>" + b"x" * 2000 + b"</p>"

#: (what the application sends, as ASGI messages) for each kind of response.
RESPONSES: dict[str, list[dict[str, Any]]] = {
    "a page": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html; charset=utf-8")]},
        {"type": "http.response.body", "body": BIG},
    ],
    "a page that varies by language": [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html"), (b"vary", b"Accept-Language"), (b"x-a", b"1")],
        },
        {"type": "http.response.body", "body": BIG},
    ],
    "two vary headers": [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"vary", b"Cookie"), (b"content-type", b"text/html"), (b"vary", b"Accept-Language")],
        },
        {"type": "http.response.body", "body": BIG},
    ],
    "a small body": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]},
        {"type": "http.response.body", "body": b'{"ok": true}'},
    ],
    "exactly the minimum": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]},
        {"type": "http.response.body", "body": b"y" * MINIMUM_SIZE},
    ],
    "no body (HEAD, 304)": [
        {"type": "http.response.start", "status": 304, "headers": [(b"etag", b'"a"')]},
        {"type": "http.response.body", "body": b""},
    ],
    "a streamed CSV": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/csv")]},
        {"type": "http.response.body", "body": b"a,b\n", "more_body": True},
        {"type": "http.response.body", "body": b"1,2\n", "more_body": True},
        {"type": "http.response.body", "body": b""},
    ],
    "already encoded": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-encoding", b"br")]},
        {"type": "http.response.body", "body": BIG},
    ],
    "partial content": [
        {"type": "http.response.start", "status": 206, "headers": [(b"content-type", b"text/plain")]},
        {"type": "http.response.body", "body": BIG},
    ],
    "a PNG": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"image/png")]},
        {"type": "http.response.body", "body": BIG},
    ],
    "a PDF, with parameters": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"Application/PDF; x=1")]},
        {"type": "http.response.body", "body": BIG},
    ],
    "a video, by its major type": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"video/mp4")]},
        {"type": "http.response.body", "body": BIG},
    ],
    "gRPC with a suffix": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/grpc+proto")]},
        {"type": "http.response.body", "body": BIG},
    ],
    "no content type": [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": BIG},
    ],
    "a file sent by path": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]},
        {"type": "http.response.pathsend", "path": "/srv/file.txt"},
    ],
    "an early hint first": [
        {"type": "http.response.early_hint", "links": ["</static/site.css>; rel=preload"]},
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]},
        {"type": "http.response.body", "body": BIG},
    ],
}


async def _sent(middleware: Any, messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> list[Any]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in copy.deepcopy(messages):
            await send(message)

    out: list[Any] = []

    async def send(message: Any) -> None:
        out.append(copy.deepcopy(message))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    await middleware(app)({"type": "http", "method": "GET", "path": "/", "headers": headers}, receive, send)
    return out


def _starlette(app: Any) -> Any:
    return GZipMiddleware(app, minimum_size=MINIMUM_SIZE, compresslevel=LEVEL, exclude_content_types=EXCLUDED)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", sorted(RESPONSES))
@pytest.mark.parametrize(
    "accept", [[], [(b"accept-encoding", b"identity")], [(b"accept-encoding", b"br, deflate")]], ids=str
)
async def test_a_client_without_gzip_gets_what_starlette_sends_it(kind: str, accept: list[Any]) -> None:
    headers = [(b"host", b"example.org"), *accept]
    ours = await _sent(Compression, RESPONSES[kind], headers)
    theirs = await _sent(_starlette, RESPONSES[kind], headers)
    assert ours == theirs
    varies = [v for m in ours if m["type"] == "http.response.start" for k, v in m.get("headers", []) if k == b"vary"]
    gzip_would_apply = kind in {
        "a page",
        "a page that varies by language",
        "two vary headers",
        "exactly the minimum",
        "a streamed CSV",
        "no content type",
        "an early hint first",
    }
    assert any(b"Accept-Encoding" in v for v in varies) == gzip_would_apply


@pytest.mark.asyncio
async def test_a_client_that_accepts_gzip_still_gets_it() -> None:
    sent = await _sent(Compression, RESPONSES["a page"], [(b"accept-encoding", b"gzip, br")])
    assert (b"content-encoding", b"gzip") in sent[0]["headers"]
    assert len(sent[1]["body"]) < len(BIG)
