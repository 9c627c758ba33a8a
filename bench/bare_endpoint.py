"""The baseline for the sign path: a bare Starlette endpoint that parses the same form and
inserts one row with asyncpg. Run by bench/load_bench.py; not part of the application."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

FIELDS = (
    "organisation_name",
    "country",
    "city",
    "organisation_type",
    "website",
    "contact_name",
    "contact_role",
    "contact_email",
    "authorised",
    "consent",
    "visibility",
    "comment",
)


def make_app(dsn: str) -> Starlette:
    pool: asyncpg.Pool | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        await pool.execute(
            "CREATE TABLE IF NOT EXISTS bare_endorsements (id serial PRIMARY KEY, "
            + ", ".join(f"{f} text" for f in FIELDS)
            + ", created_at timestamp DEFAULT now())"
        )
        yield
        await pool.close()

    async def endorse(request: Request) -> RedirectResponse:
        form = await request.form()
        values = [str(form.get(f, "")) for f in FIELDS]
        assert pool is not None
        await pool.execute(
            f"INSERT INTO bare_endorsements ({', '.join(FIELDS)}) VALUES "  # noqa: S608 - fixed names
            f"({', '.join(f'${i + 1}' for i in range(len(FIELDS)))})",
            *values,
        )
        return RedirectResponse("/check-email", status_code=303)

    return Starlette(routes=[Route("/appeals/{slug}/endorse", endorse, methods=["POST"])], lifespan=lifespan)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.dsn), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
