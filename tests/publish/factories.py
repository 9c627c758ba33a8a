"""Endorsements in a named state, written straight into the application's own database.

`listed(client, ...)` is what the public side sees once an organisation has confirmed
(or been approved); the public cache of the app is dropped afterwards, as it is when
the app itself confirms an endorsement.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from starlette.testclient import TestClient

from petition.appeals.queries import DEMO_SLUG, get_appeal
from petition.endorsements.tables import endorsements
from petition.endorsements.vocabulary import normalise_name

_serial = itertools.count(1)


def _app_services(client: TestClient) -> Any:
    return client.app.state.services  # type: ignore[attr-defined]


def add_endorsement(client: TestClient, *, name: str, country: str = "DE", state: str = "confirmed",
                    visibility: str = "public", organisation_type: str = "peace", city: str = "",
                    website: str = "", listed_at: dt.datetime | None = None, slug: str = DEMO_SLUG,
                    contact_email: str | None = None, contact_name: str = "Contact Person") -> int:
    services = _app_services(client)
    n = next(_serial)
    email = contact_email or f"contact{n}@org{n}.example"
    now = dt.datetime.now(dt.UTC)
    listed = state in ("confirmed", "approved")
    when = listed_at or (now - dt.timedelta(seconds=1000 - n))

    async def insert() -> int:
        appeal = await get_appeal(services.db, slug=slug)
        assert appeal is not None
        async with services.db.write():
            return int(await services.db.execute(endorsements.insert().values(
                appeal_id=appeal["id"], organisation_name=name, name_normalised=normalise_name(name),
                country=country, city=city, organisation_type=organisation_type, website=website,
                contact_name=contact_name, contact_role="", contact_email=email, email_canonical=email.lower(),
                authorised=True, consent_version="test", visibility=visibility, comment="", language="en",
                text_language="en", text_hash="0" * 64, state=state, token_nonce=f"{n:032x}",
                created_at=when, updated_at=when, confirmed_at=when if listed else None,
                listed_at=when if listed else None,
            )))

    endorsement_id = client.portal.call(insert)  # type: ignore[union-attr]
    services.public_cache.invalidate()
    return endorsement_id


def listed(client: TestClient, name: str, **fields: Any) -> int:
    return add_endorsement(client, name=name, **fields)


def anonymous(client: TestClient, name: str, **fields: Any) -> int:
    return add_endorsement(client, name=name, visibility="anonymous", **fields)
