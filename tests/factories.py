"""Endorsements in a named state, written straight into a test database (either backend).

The one factory for endorsements the app did not take in itself. Each column has a default
that fits the others, as the app would have written it: a record its mailbox confirmed (any
state but pending) has `confirmed_at`; one its appeal lists (confirmed or approved, approved
only under pre-moderation) has `listed_at`; its text is the appeal's current one. Any column
can be given instead, and each endorsement gets numbered names and addresses of its own.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from petition.appeals.queries import DEMO_SLUG, ensure_demo_appeal, get_appeal, get_appeal_by_id
from petition.appeals.tables import appeal_texts
from petition.db import Database, Row
from petition.endorsements.states import EndorsementState, listed_states
from petition.endorsements.tables import endorsements
from petition.endorsements.vocabulary import CONSENT_VERSION, canonical_email, normalise_name
from petition.schema import utcnow

_serial = itertools.count(1)

#: The text hash of an endorsement whose appeal has no text in its language.
NO_TEXT = "0" * 64


def endorsement_row(
    appeal: Row | Mapping[str, Any], n: int, *, text_hashes: Mapping[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """The columns of endorsement number `n` of `appeal` (a row of `appeals`), `fields` overriding any.

    `text_hashes` maps a language to its current text's hash (`appeal_texts.content_hash`).
    """
    unknown = set(fields) - set(endorsements.c.keys())
    assert not unknown, f"not columns of endorsements: {sorted(unknown)}"
    # One moment for the whole record, unless the test dates one of its steps.
    at = fields.get("created_at") or fields.get("confirmed_at") or fields.get("listed_at") or utcnow()
    state = EndorsementState(fields.get("state", EndorsementState.CONFIRMED))
    text_language = fields.get("text_language", "en")
    values: dict[str, Any] = {
        "appeal_id": appeal["id"],
        "organisation_name": f"Peace Group {n}",
        "country": "DE",
        "city": "Berlin",
        "organisation_type": "peace",
        "website": f"https://peace{n}.example",
        "contact_name": f"Contact {n}",
        "contact_role": "",
        "contact_email": f"office@peace{n}.example",
        "authorised": True,
        "consent_version": CONSENT_VERSION,
        "visibility": "public",
        "comment": "",
        "language": "en",
        "text_language": text_language,
        "text_hash": (text_hashes or {}).get(text_language, NO_TEXT),
        "state": state.value,
        "hold_reason": None,
        "token_nonce": f"{n:032x}",
        "created_at": at,
        "updated_at": at,
        "confirmed_at": None if state == EndorsementState.PENDING else at,
        "listed_at": at if state.value in listed_states(appeal["moderation"]) else None,
    }
    values.update(fields)
    values.setdefault("name_normalised", normalise_name(values["organisation_name"]))
    values.setdefault("email_canonical", canonical_email(values["contact_email"]))
    return values


async def appeal_and_texts(db: Database, appeal: int | str = DEMO_SLUG) -> tuple[Row, dict[str, str]]:
    """The appeal (by id or slug; the demo appeal is created if missing) and its current texts' hashes."""
    if appeal == DEMO_SLUG:
        await ensure_demo_appeal(db)
    row = await (get_appeal_by_id(db, appeal_id=appeal) if isinstance(appeal, int) else get_appeal(db, slug=appeal))
    assert row is not None, f"no appeal {appeal!r}"
    texts = await db.fetch_all(
        sa.select(appeal_texts.c.language, appeal_texts.c.content_hash).where(
            appeal_texts.c.appeal_id == row["id"], appeal_texts.c.is_current == sa.true()
        )
    )
    return row, {text["language"]: text["content_hash"] for text in texts}


async def write_endorsements(
    db: Database, rows: Iterable[Mapping[str, Any]], *, appeal: int | str = DEMO_SLUG
) -> list[int]:
    """Write one endorsement per mapping of columns (the rest defaulted); their ids, in order."""
    appeal_row, hashes = await appeal_and_texts(db, appeal)
    values = [endorsement_row(appeal_row, next(_serial), text_hashes=hashes, **row) for row in rows]
    async with db.write():
        # A few hundred rows per statement: one round trip each, within every backend's parameter limit.
        for first in range(0, len(values), 200):
            await db.execute(endorsements.insert().values(values[first : first + 200]))
    nonces = [v["token_nonce"] for v in values]
    found = await db.fetch_all(
        sa.select(endorsements.c.id, endorsements.c.token_nonce).where(endorsements.c.token_nonce.in_(nonces))
    )
    ids = {r["token_nonce"]: int(r["id"]) for r in found}
    return [ids[nonce] for nonce in nonces]


def add_endorsements(
    target: TestClient | str,
    count: int = 1,
    *,
    rows: Iterable[Mapping[str, Any]] | None = None,
    appeal: int | str = DEMO_SLUG,
    **fields: Any,
) -> list[int]:
    """Endorsements of `appeal` (its id or slug), their ids in order: `count` alike ones, or one
    per mapping in `rows`; `fields` (any columns, e.g. state, visibility, listed_at) apply to all.

    `target` is the app's TestClient (written on the app's own connection and event loop, then
    its public cache is dropped, as the app drops it when it lists an endorsement), or a
    database URL, written on a connection of its own (e.g. before an app starts).
    """
    each = [{**fields, **row} for row in rows] if rows is not None else [fields] * count
    if isinstance(target, str):

        async def run() -> list[int]:
            db = Database(target)
            await db.connect()
            try:
                return await write_endorsements(db, each, appeal=appeal)
            finally:
                await db.disconnect()

        return asyncio.run(run())
    services = target.app.state.services  # type: ignore[attr-defined]
    ids: list[int] = target.portal.call(  # type: ignore[union-attr]
        functools.partial(write_endorsements, services.db, each, appeal=appeal)
    )
    forget_cached(target)
    return ids


def forget_cached(client: Any) -> None:
    """Drop what the app's public cache holds (rows were written behind its back)."""
    client.app.state.services.public_cache.invalidate()


def demo_appeal_id(database_url: str) -> int:
    """The id of the demo appeal (created if missing)."""

    async def run() -> int:
        db = Database(database_url)
        await db.connect()
        try:
            row, _hashes = await appeal_and_texts(db, DEMO_SLUG)
            return int(row["id"])
        finally:
            await db.disconnect()

    return asyncio.run(run())
