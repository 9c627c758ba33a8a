"""The baseline: a bare Starlette endpoint serving a constant page (BENCH_PAGE_FILE's bytes).

Run under the same uvicorn as the application, so the ratio measures what the
application adds on top of the server and the framework.

`/with-headers` serves the same page with the headers of BENCH_HEADERS_FILE (a JSON list of
name and value pairs: the appeal page's as a first visit got them, the security headers, the
CSRF cookie and the request id among them) in their order instead of Starlette's two: the
same bytes on the wire as the appeal page, so that a ratio to it measures what the
application does, apart from the server's work on the headers it must send.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PAGE = Path(os.environ["BENCH_PAGE_FILE"]).read_bytes() if "BENCH_PAGE_FILE" in os.environ else b"<!doctype html>"


#: `?gzip=1`: the page compressed once (zlib level 6, the application's), as a server sends a
#: file compressed ahead (nginx's gzip_static), for `bench/public_bench.py --gzip`.
GZIPPED = gzip.compress(PAGE, compresslevel=6, mtime=0)
_GZIP_HEADERS = [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]


def _gzipped(response: Response) -> Response:
    response.body = GZIPPED
    response.raw_headers = [
        *((k, str(len(GZIPPED)).encode() if k == b"content-length" else v) for k, v in response.raw_headers),
        *_GZIP_HEADERS,
    ]
    return response


async def page(request: Request) -> Response:
    response = Response(PAGE, media_type="text/html; charset=utf-8")
    return _gzipped(response) if request.query_params.get("gzip") else response


HEADERS = (
    [(name.encode("latin-1"), value.encode("latin-1")) for name, value in json.loads(Path(path).read_text())]
    if (path := os.environ.get("BENCH_HEADERS_FILE"))
    else []
)


async def page_with_headers(request: Request) -> Response:
    response = Response(PAGE, media_type="text/html; charset=utf-8")
    response.raw_headers = HEADERS
    return _gzipped(response) if request.query_params.get("gzip") else response


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/", page), Route("/with-headers", page_with_headers), Route("/healthz", healthz)])
