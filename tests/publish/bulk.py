"""Many listed endorsements at once, written straight into a test database (either backend).

For the open-data tests that need a list long enough to stream in many chunks: the rows of
the one endorsement factory (`tests.factories.endorsement_row`) go in with one executemany,
so they can be loaded before a live server starts or beside a running app (whose public
cache must then be dropped: `tests.factories.forget_cached`).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

from petition.appeals.queries import DEMO_SLUG
from petition.db import Database, sqlalchemy_url
from petition.endorsements.tables import endorsements
from tests.factories import appeal_and_texts, endorsement_row

#: The contract's columns, then the domain proof's (empty: these endorsements proved none) and the
#: EU Transparency Register number (none given).
COLUMNS = (
    "organisation_name",
    "country",
    "city",
    "organisation_type",
    "website",
    "endorsed_at",
    "domain_verified",
    "domain_verified_at",
    "domain_proof",
    "transparency_register",
    "confirmed_by_two_officers",
)
START = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
COUNTRIES = ("DE", "FR", "IT", "UA", "BY", "PL")


def plain_row(n: int) -> dict[str, Any]:
    """The nth endorsement: a few countries, every seven sharing one listed_at (so that chunk
    boundaries fall inside a tie), one in twenty anonymous, one in fifty still pending, names
    with commas, quotes, a line break or a formula's first character now and then."""
    listed_at = START + dt.timedelta(seconds=(n // 7) * 11)
    state = "pending" if n % 50 == 49 else "confirmed"
    name = f'Peace Group {n:05d}, "Östra" e.V.'
    if n % 97 == 0:
        name = f"=SUM(A1:A9) {name}"
    elif n % 89 == 0:
        name = f"-{name}\nsecond line"
    return {
        "organisation_name": name,
        "country": COUNTRIES[n % len(COUNTRIES)],
        "city": "Kyiv" if n % 3 else "",
        "website": f"https://group{n}.example/a,b",
        "organisation_type": "peace" if n % 4 else "union",
        "visibility": "anonymous" if n % 20 == 19 else "public",
        "state": state,
        "listed_at": listed_at if state == "confirmed" else None,
        "updated_at": listed_at,
        "created_at": listed_at,
        "confirmed_at": listed_at if state == "confirmed" else None,
    }


def insert_endorsements(
    database_url: str, count: int, *, row: Callable[[int], dict[str, Any]] = plain_row, first: int = 0
) -> None:
    """`count` endorsements of the demo appeal (created if missing), `row(n)` giving each one's fields.

    One executemany through a SQLAlchemy engine: the statement is compiled once (a multi-row
    VALUES per batch through `databases` spends seconds compiling).
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    async def insert() -> None:
        db = Database(database_url)
        await db.connect()
        try:
            appeal, text_hashes = await appeal_and_texts(db, DEMO_SLUG)
        finally:
            await db.disconnect()
        rows = [
            endorsement_row(appeal, 7_000_000 + n, text_hashes=text_hashes, **row(n))
            for n in range(first, first + count)
        ]
        engine = create_async_engine(sqlalchemy_url(database_url))
        try:
            async with engine.begin() as connection:
                await connection.execute(endorsements.insert(), rows)
        finally:
            await engine.dispose()

    asyncio.run(insert())


def _endorsed_at(value: Any) -> str:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def expected_rows(database_url: str) -> list[list[str]]:
    """The named list as stored, newest first, ties by id: read with plain SQL, not the app's queries."""
    from tests.support import db_rows

    rows = db_rows(
        database_url,
        "SELECT organisation_name, country, city, organisation_type, website, listed_at, transparency_register "
        "FROM endorsements WHERE state IN ('confirmed', 'approved') AND visibility = 'public' "
        "AND appeal_id = (SELECT id FROM appeals WHERE slug = $1) "
        "ORDER BY listed_at DESC, id DESC",
        DEMO_SLUG,
    )
    return [
        [
            r["organisation_name"],
            r["country"],
            r["city"],
            r["organisation_type"],
            r["website"],
            _endorsed_at(r["listed_at"]),
            "",
            "",
            "",
            r["transparency_register"] or "",
            "false",
        ]
        for r in rows
    ]


#: What the CSV guard prefixed before full-width forms were folded: the format the CSV had.
OLD_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def old_format_csv(rows: list[list[str]]) -> bytes:
    """The CSV exactly as the handler built it in one piece before it streamed: header, CRLF,
    RFC 4180 quoting, a ' before cells that start like a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["'" + cell if cell.startswith(OLD_FORMULA_PREFIXES) else cell for cell in row])
    return buffer.getvalue().encode("utf-8")
