"""Helpers for organiser tests: accounts, logging in, and rows made directly in the database."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from petition.appeals.queries import create_appeal, save_text
from petition.appeals.states import AppealStatus, Moderation
from petition.appeals.textfile import content_hash
from petition.audit.tables import audit_log
from petition.db import Database
from petition.endorsements.tables import endorsements
from petition.endorsements.vocabulary import normalise_name
from petition.organisers.passwords import hash_password
from petition.organisers.queries import create_organiser
from petition.organisers.roles import Role
from petition.schema import utcnow
from tests.support import csrf_from

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def db_of(client: TestClient) -> Database:
    return client.app.state.services.db  # type: ignore[attr-defined,no-any-return]


def run(client: TestClient, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Run a query on the app's own event loop and database connection."""
    return client.portal.call(functools.partial(fn, db_of(client), **kwargs))  # type: ignore[union-attr]


def add_organiser(client: TestClient, email: str, role: Role | str, password: str = PASSWORD) -> int:
    return int(run(client, create_organiser, email=email, password_hash=hash_password(password), role=Role(role)))


def login(client: TestClient, email: str, password: str = PASSWORD, *, expect: int = 303) -> Any:
    page = client.get("/admin/login")
    response = client.post("/admin/login", data={"email": email, "password": password,
                                                 "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == expect, response.text[:500]
    return response


def login_as(client: TestClient, role: str) -> int:
    """Log in (after logging out whoever was) as a fresh organiser with `role`."""
    client.cookies.clear()
    email = f"{role}{next(_counter)}@organisers.example"
    organiser_id = add_organiser(client, email, role)
    login(client, email)
    return organiser_id


def csrf(client: TestClient, path: str = "/admin/login") -> str:
    return csrf_from(client.get(path).text)


def make_appeal(client: TestClient, slug: str, *, moderation: Moderation = Moderation.PRE,
                status: AppealStatus = AppealStatus.OPEN, title: str = "Protect them") -> dict[str, Any]:
    async def create(db: Database) -> dict[str, Any]:
        appeal_id = await create_appeal(db, slug=slug, moderation=moderation, status=status)
        await save_text(db, appeal_id=appeal_id, language="en", title=title, addressees="Parliament",
                        body="We ask you to **protect** them.")
        return {"id": appeal_id, "slug": slug}

    return client.portal.call(create, db_of(client))  # type: ignore[union-attr,no-any-return]


def endorsement_values(appeal_id: int, n: int, **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    values: dict[str, Any] = {
        "appeal_id": appeal_id,
        "organisation_name": f"Peace Group {n}",
        "country": "DE",
        "city": "Berlin",
        "organisation_type": "peace",
        "website": f"https://peace{n}.example",
        "contact_name": f"Contact {n}",
        "contact_role": "",
        "contact_email": f"office@peace{n}.example",
        "authorised": True,
        "consent_version": "2026-11",
        "visibility": "public",
        "comment": "",
        "language": "en",
        "text_language": "en",
        "text_hash": content_hash("Protect them", "Parliament", "We ask you to **protect** them."),
        "state": "confirmed",
        "token_nonce": f"{n:032x}",
        "created_at": now,
        "updated_at": now,
        "confirmed_at": now,
    }
    values.update(overrides)
    values["name_normalised"] = normalise_name(values["organisation_name"])
    values["email_canonical"] = values["contact_email"].lower()
    return values


def add_endorsements(client: TestClient, appeal_id: int, count: int = 1, **overrides: Any) -> list[int]:
    """`count` endorsements (confirmed unless `state` says otherwise), inserted in bulk."""
    start = next(_counter) * 100_000

    async def insert(db: Database) -> list[int]:
        rows = [endorsement_values(appeal_id, start + i, **overrides) for i in range(count)]
        async with db.write():
            for first in range(0, len(rows), 200):
                await db.execute(endorsements.insert().values(rows[first:first + 200]))
        found = await db.fetch_all(sa.select(endorsements.c.id).where(
            endorsements.c.token_nonce.in_([r["token_nonce"] for r in rows])).order_by(endorsements.c.id))
        return [int(r["id"]) for r in found]

    return client.portal.call(insert, db_of(client))  # type: ignore[union-attr,no-any-return]


def endorsement(client: TestClient, endorsement_id: int) -> dict[str, Any]:
    async def get(db: Database) -> dict[str, Any]:
        row = await db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))
        assert row is not None
        return dict(row)

    return client.portal.call(get, db_of(client))  # type: ignore[union-attr,no-any-return]


def audit_rows(client: TestClient, action: str | None = None) -> list[dict[str, Any]]:
    async def get(db: Database) -> list[dict[str, Any]]:
        query = audit_log.select().order_by(audit_log.c.id)
        if action:
            query = query.where(audit_log.c.action == action)
        return [dict(r) for r in await db.fetch_all(query)]

    return client.portal.call(get, db_of(client))  # type: ignore[union-attr,no-any-return]
