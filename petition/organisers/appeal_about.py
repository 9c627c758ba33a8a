"""An appeal's initiators, start and deadline, as admins edit them (its own page, linked from the
appeal's; the public side shows them with appeals/_about.html)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition.appeals.about import AboutError, Initiator, about, initiators_text, parse_date, parse_initiators
from petition.appeals.queries import set_about
from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.db import Row
from petition.i18n import gettext as _
from petition.organisers.auth import admin_route, organiser
from petition.organisers.pages import appeal_or_404, form_text, redirect, render
from petition.organisers.roles import Role
from petition.web import read_form, services


def _page(request: Request, appeal: Row, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    return render(
        request,
        "admin/appeal_about.html",
        {"appeal": appeal, "values": values, "errors": errors},
        status=status,
        private=True,
    )


async def about_page(request: Request) -> Response:
    appeal = await appeal_or_404(request)
    current = about(appeal)
    values = {
        "initiators": initiators_text(current.initiators),
        "start": current.start.isoformat() if current.start else "",
        "deadline": current.deadline.isoformat() if current.deadline else "",
    }
    return _page(request, appeal, values, {})


async def about_save(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    values = {
        "initiators": form_text(form, "initiators", 10_000),
        "start": form_text(form, "start", 20),
        "deadline": form_text(form, "deadline", 20),
    }
    errors: dict[str, str] = {}
    initiators: tuple[Initiator, ...] = ()
    start = deadline = None
    try:
        initiators = parse_initiators(values["initiators"])
    except AboutError:
        errors["initiators"] = _(
            "Write one organisation a line, optionally followed by “|” and its website, such as example.org."
        )
    try:
        start = parse_date(values["start"], "start")
    except AboutError:
        errors["start"] = _("Please enter a date such as 2026-12-01.")
    try:
        deadline = parse_date(values["deadline"], "deadline")
    except AboutError:
        errors["deadline"] = _("Please enter a date such as 2026-12-01.")
    if start and deadline and deadline < start:
        errors["deadline"] = _("The deadline cannot be before the start.")
    if errors:
        return _page(request, appeal, values, errors, status=400)
    db = services(request).db
    async with db.write():
        await set_about(db, appeal_id=appeal["id"], initiators=initiators, start=start, deadline=deadline)
        await record(
            db,
            organiser_id=organiser(request)["id"],
            action=AuditAction.APPEAL_EDIT,
            target_type="appeal",
            target_id=appeal["id"],
            detail=f"initiators={len(initiators)} start={start or '-'} deadline={deadline or '-'}",
        )
    services(request).lifecycle.public_changed()  # the appeal page shows them
    return redirect(request, f"/admin/appeals/{appeal['id']}?done=settings")


def routes(role: Role) -> list[Route]:
    return [
        admin_route("/appeals/{appeal_id:int}/about", about_page, role=role),
        admin_route("/appeals/{appeal_id:int}/about", about_save, role=role, methods=["POST"]),
    ]
