"""The baseline: a bare Starlette endpoint serving a constant page (BENCH_PAGE_FILE's bytes).

Run under the same uvicorn as the application, so the ratio measures what the
application adds on top of the server and the framework.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PAGE = Path(os.environ["BENCH_PAGE_FILE"]).read_bytes() if "BENCH_PAGE_FILE" in os.environ else b"<!doctype html>"


async def page(request: Request) -> Response:
    return Response(PAGE, media_type="text/html; charset=utf-8")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/", page), Route("/healthz", healthz)])
