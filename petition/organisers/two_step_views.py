"""Two-step login in the organiser area: enrolling one's own account, and an admin's reset."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.i18n import gettext as _
from petition.organisers.auth import ENROL_PATH, admin_route, organiser, sessions
from petition.organisers.pages import redirect, render
from petition.organisers.queries import get_organiser, list_organisers
from petition.organisers.roles import Role
from petition.organisers.totp import (
    count_recovery_codes,
    finish_enrolment,
    grouped,
    matching_step,
    new_recovery_codes,
    parse_code,
    provisioning_uri,
    qr_data_uri,
    reset_second_factor,
    second_factor_on,
    second_factor_required,
    shown,
    start_enrolment,
)
from petition.web import read_form, services

OVERVIEW_PATH = "/admin/organisers/two-step"


async def _enrolment_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    svc = services(request)
    me = organiser(request)
    context: dict[str, object] = {"required": second_factor_required(me, svc.settings), "error": error}
    if second_factor_on(me):
        context.update(
            enabled=True,
            enabled_at=me["totp_enabled_at"],
            codes_left=await count_recovery_codes(svc.db, organiser_id=me["id"]),
        )
    else:
        secret = await start_enrolment(svc.db, organiser_id=me["id"])
        uri = provisioning_uri(secret, email=me["email"], settings=svc.settings)
        context.update(enabled=False, secret=grouped(secret), uri=uri, qr=qr_data_uri(uri))
    return render(request, "admin/two_step.html", context, status=status, private=True)


async def two_step_page(request: Request) -> Response:
    return await _enrolment_page(request)


async def two_step_enrol(request: Request) -> Response:
    form = await read_form(request)
    db = services(request).db
    me = organiser(request)
    secret = me["totp_pending_secret"]
    if second_factor_on(me) or not secret:
        return redirect(request, ENROL_PATH)
    code = parse_code(form.get("code"))
    step = matching_step(secret, code.value, after=None) if code is not None and code.kind == "totp" else None
    if step is None:
        return await _enrolment_page(
            request,
            status=400,
            error=_("This is not the code your app shows now. Check that its clock is right and try the next code."),
        )
    codes = new_recovery_codes()
    if not await finish_enrolment(db, organiser_id=me["id"], secret=secret, step=step, codes=codes):
        return redirect(request, ENROL_PATH)
    await record(db, organiser_id=me["id"], action=AuditAction.TOTP_ENROL, target_type="organiser", target_id=me["id"])
    request.state.must_enrol = False
    # Shown once, in the answer to this POST: the codes are stored only as hashes.
    response = render(request, "admin/two_step_codes.html", {"codes": [shown(c) for c in codes]}, private=True)
    # Every other session ended with enrolment; this one carries on.
    sessions(request).set(response, organiser_id=me["id"], version=me["session_version"] + 1)
    return response


async def two_step_overview(request: Request) -> Response:
    rows = await list_organisers(services(request).db)
    return render(
        request,
        "admin/two_step_organisers.html",
        {
            "organisers": [
                {
                    "id": r["id"],
                    "email": r["email"],
                    "role": r["role"],
                    "active": r["active"],
                    "on": second_factor_on(r),
                    "required": second_factor_required(r, services(request).settings),
                }
                for r in rows
            ],
            "me": organiser(request),
            "done": request.query_params.get("done") == "reset",
        },
        private=True,
    )


async def two_step_reset(request: Request) -> Response:
    await read_form(request)
    db = services(request).db
    me = organiser(request)
    target = await get_organiser(db, organiser_id=request.path_params["organiser_id"])
    if target is None:
        raise HTTPException(404, "no such organiser")
    response = redirect(request, OVERVIEW_PATH + "?done=reset")
    if await reset_second_factor(db, organiser_id=target["id"]):
        await record(
            db, organiser_id=me["id"], action=AuditAction.TOTP_RESET, target_type="organiser", target_id=target["id"]
        )
        if target["id"] == me["id"]:
            # The reset ended every session of the target: here, the admin's own carries on.
            sessions(request).set(response, organiser_id=me["id"], version=me["session_version"] + 1)
    return response


def routes(moderator: Role, admin: Role) -> list[Route]:
    return [
        admin_route("/account/two-step", two_step_page, role=moderator, name="admin_two_step", during_enrolment=True),
        admin_route("/account/two-step", two_step_enrol, role=moderator, methods=["POST"], during_enrolment=True),
        admin_route("/organisers/two-step", two_step_overview, role=admin, name="admin_two_step_organisers"),
        admin_route("/organisers/{organiser_id:int}/two-step/reset", two_step_reset, role=admin, methods=["POST"]),
    ]
