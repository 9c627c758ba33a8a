"""The sign path's floor: petition's own application and server stack (every middleware, the
proxy headers, uvloop and httptools), with the endorse route answering 303 after reading the
form and checking its CSRF token, and doing nothing else: no validation, no rate limits, no
row, no email, no cookie. Run by bench/load_bench.py (`--floor`); not part of the application.

What this costs a request is what the sign path costs before it does anything an endorsement
needs; the bare endpoint (bench/bare_endpoint.py) parses the form and inserts its row on a
plain Starlette app. Settings come from the environment, as for `petition serve`.
"""

from __future__ import annotations

import argparse
import gc

import uvicorn
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from petition.app import create_app
from petition.server import uvicorn_config
from petition.settings import load_settings
from petition.web import read_form


async def endorse(request: Request) -> Response:
    await read_form(request)  # the body's size limit and read deadline, the CSRF check
    return RedirectResponse(f"/appeals/{request.path_params['slug']}/check-email", status_code=303)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings(None)
    app = create_app(settings)
    routes = app.router.routes
    place = next(i for i, route in enumerate(routes) if getattr(route, "name", None) == "endorse")
    routes[place] = Route("/appeals/{slug}/endorse", endorse, methods=["POST"], name="endorse")
    gc.collect()
    gc.freeze()  # as `petition serve` does
    config = uvicorn_config(app, settings, host="127.0.0.1", port=args.port, log_level="warning")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
