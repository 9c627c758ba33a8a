"""The private export: every endorsement of an appeal with its contact details, as CSV.

Admins only, and every download is audited. Cells that a spreadsheet would run
as a formula get a leading apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition.appeals.queries import current_titles, get_appeal_by_id, list_appeals
from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.db import Row
from petition.endorsements.states import EndorsementState
from petition.i18n import get_language
from petition.organisers.auth import admin_route, organiser
from petition.organisers.moderation import EXPORT_COLUMNS, export_rows
from petition.organisers.pages import render
from petition.organisers.params import optional_id
from petition.organisers.roles import Role
from petition.web import read_form, services

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_csv(rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(row["appeal_slug"] if name == "appeal" else row[name]) for name in EXPORT_COLUMNS])
    return buffer.getvalue()


async def export_page(request: Request) -> Response:
    db = services(request).db
    return render(
        request,
        "admin/export.html",
        {
            "appeals": await list_appeals(db, public_only=False),
            "titles": await current_titles(db, language=get_language()),
            "states": [s.value for s in EndorsementState],
            "default_states": {EndorsementState.CONFIRMED.value, EndorsementState.APPROVED.value},
        },
        private=True,
    )


async def export_csv(request: Request) -> Response:
    form = await read_form(request)
    db = services(request).db
    appeal_id = optional_id(form, "appeal")
    appeal = await get_appeal_by_id(db, appeal_id=appeal_id) if appeal_id else None
    if appeal is None:
        raise HTTPException(400, "choose an appeal")
    states = [s for s in form.getlist("state") if isinstance(s, str)]
    if any(s not in set(EndorsementState) for s in states):
        raise HTTPException(400, "unknown state")
    rows = await export_rows(db, appeal_id=appeal["id"], states=states)
    await record(
        db,
        organiser_id=organiser(request)["id"],
        action=AuditAction.EXPORT,
        target_type="appeal",
        target_id=appeal["id"],
        detail=f"contacts csv, {len(rows)} rows, states={','.join(sorted(states)) or 'all'}",
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
    return Response(
        to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{appeal["slug"]}-contacts-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def routes(role: Role) -> list[Route]:
    return [
        admin_route("/export", export_page, role=role, name="admin_export"),
        admin_route("/export", export_csv, role=role, methods=["POST"]),
    ]
