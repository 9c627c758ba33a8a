"""Helpers for organiser tests: accounts, logging in, appeals, and reading rows the app wrote."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from petition.appeals.queries import create_appeal, save_text
from petition.appeals.states import AppealStatus, Moderation
from petition.audit.tables import audit_log
from petition.db import Database
from petition.endorsements.tables import endorsements
from petition.organisers.passwords import hash_password
from petition.organisers.queries import create_organiser
from petition.organisers.roles import Role
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
    response = client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
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


def make_appeal(
    client: TestClient,
    slug: str,
    *,
    moderation: Moderation = Moderation.PRE,
    status: AppealStatus = AppealStatus.OPEN,
    title: str = "Protect them",
) -> dict[str, Any]:
    async def create(db: Database) -> dict[str, Any]:
        appeal_id = await create_appeal(db, slug=slug, moderation=moderation, status=status)
        await save_text(
            db,
            appeal_id=appeal_id,
            language="en",
            title=title,
            addressees="Parliament",
            body="We ask you to **protect** them.",
        )
        return {"id": appeal_id, "slug": slug}

    return client.portal.call(create, db_of(client))  # type: ignore[union-attr,no-any-return]


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
