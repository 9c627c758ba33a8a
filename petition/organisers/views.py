"""The organiser area under /admin/: dashboard, audit log, organisers, own password.

Login, two-step login, moderation, appeals and the private export live in their own modules;
`routes` below is every /admin/ route, each (but the two login steps) behind `admin_route`.
"""

from __future__ import annotations

import logging

from email_validator import EmailNotValidError, validate_email
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition.appeals.queries import current_titles, list_appeals
from petition.audit.actions import AuditAction
from petition.audit.labels import action_label
from petition.audit.queries import record, record_many
from petition.endorsements.states import EndorsementState
from petition.i18n import get_language
from petition.i18n import gettext as _
from petition.organisers import appeal_views, dossier_views, export, login_views, moderation_views, two_step_views
from petition.organisers.audit import audit_lines, count_audit, list_audit
from petition.organisers.auth import admin_route, organiser, sessions
from petition.organisers.moderation import count_waiting, counts_by_appeal_and_state
from petition.organisers.pages import redirect, render
from petition.organisers.params import page_number, text
from petition.organisers.passwords import (
    PasswordPolicyError,
    check_policy,
    hash_password_async,
    verify_password_async,
)
from petition.organisers.queries import (
    OrganiserExists,
    count_active_admins,
    create_organiser,
    end_sessions,
    get_organiser,
    list_organisers,
    set_active,
    set_password,
    set_role,
)
from petition.organisers.roles import Role, has_role
from petition.outbox.queries import list_failed, outbox_health, requeue_failed
from petition.publish.queries import count_listed
from petition.web import read_form, services

log = logging.getLogger("petition.organisers")

MAX_PASSWORD = 1024


def _password(form: object, name: str) -> str:
    value = form.get(name) if hasattr(form, "get") else None  # type: ignore[union-attr]
    return value[:MAX_PASSWORD] if isinstance(value, str) else ""


# --- logout ---------------------------------------------------------------------------------------


async def logout(request: Request) -> Response:
    await read_form(request)
    me = organiser(request)
    db = services(request).db
    # Stateless cookies: ending the session means making every cookie of this organiser stale.
    await end_sessions(db, organiser_id=me["id"])
    await record(db, organiser_id=me["id"], action=AuditAction.LOGOUT, target_type="organiser", target_id=me["id"])
    response = redirect(request, "/admin/login")
    sessions(request).clear(response)
    return response


# --- dashboard and audit ----------------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    db = services(request).db
    appeals = await list_appeals(db, public_only=False)
    titles = await current_titles(db, language=get_language())
    states = await counts_by_appeal_and_state(db)
    listed = {appeal["id"]: await count_listed(db, appeal=appeal) for appeal in appeals}
    return render(
        request,
        "admin/dashboard.html",
        {
            "appeals": appeals,
            "titles": titles,
            "states": states,
            "state_names": [state.value for state in EndorsementState],
            "listed": listed,
            "waiting": await count_waiting(db),
            # The audit log is the admins' (its page needs the admin role): moderators see none of it.
            "recent": (
                audit_lines(await list_audit(db, page_size=10))
                if has_role(organiser(request)["role"], Role.ADMIN)
                else None
            ),
            "outbox": await outbox_health(db),
        },
        private=True,
    )


AUDIT_PAGE_SIZE = 50


async def audit_page(request: Request) -> Response:
    db = services(request).db
    action = request.query_params.get("action") or None
    if action is not None and action not in set(AuditAction):
        raise HTTPException(400, "unknown action")
    page = page_number(request.query_params)
    total = await count_audit(db, action=action)
    rows = await list_audit(db, action=action, page=page, page_size=AUDIT_PAGE_SIZE)
    return render(
        request,
        "admin/audit.html",
        {
            "lines": audit_lines(rows),
            "actions": [(a.value, action_label(a.value)) for a in AuditAction],
            "action": action or "",
            "page": page,
            "pages": max(1, -(-total // AUDIT_PAGE_SIZE)),
            "total": total,
        },
        private=True,
    )


# --- failed emails -----------------------------------------------------------------------------------


async def outbox_page(request: Request) -> Response:
    return render(
        request,
        "admin/outbox.html",
        {"failed": await list_failed(services(request).db), "done": request.query_params.get("done") == "1"},
        private=True,
    )


async def outbox_requeue(request: Request) -> Response:
    """Queue one failed email again (`id`), or every one (no `id`): the worker sends them at once."""
    form = await read_form(request)
    db = services(request).db
    raw = text(form, "id", 12)
    if raw and not raw.isdigit():
        raise HTTPException(400, "bad id")
    async with db.write():
        ids = await requeue_failed(db, outbox_id=int(raw) if raw else None)
        await record_many(
            db,
            organiser_id=organiser(request)["id"],
            action=AuditAction.OUTBOX_REQUEUE,
            target_type="email",
            target_ids=ids,
            detail="one" if raw else "all failed",
        )
    return redirect(request, "/admin/outbox?done=1")


# --- organisers ----------------------------------------------------------------------------------------


def _notice(request: Request, notices: dict[str, str]) -> str | None:
    return notices.get(request.query_params.get("done", ""))


def organiser_notices() -> dict[str, str]:
    return {
        "created": _("The organiser was added."),
        "role": _("The role was changed."),
        "active": _("The account was changed."),
    }


async def _organisers_page(
    request: Request, *, values: dict[str, str] | None = None, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "admin/organisers.html",
        {
            "organisers": await list_organisers(services(request).db),
            "roles": [r.value for r in Role],
            "values": values or {"role": Role.MODERATOR.value},
            "errors": errors or {},
            "notice": _notice(request, organiser_notices()),
            "me": organiser(request),
        },
        status=status,
        private=True,
    )


async def organisers_page(request: Request) -> Response:
    return await _organisers_page(request)


async def organiser_create(request: Request) -> Response:
    form = await read_form(request)
    db = services(request).db
    values = {"email": text(form, "email", 254), "role": text(form, "role", 20)}
    errors: dict[str, str] = {}
    try:
        email = validate_email(values["email"], check_deliverability=False).normalized
    except EmailNotValidError:
        errors["email"] = _("Please enter a valid email address, such as name@example.org.")
        email = ""
    if values["role"] not in set(Role):
        errors["role"] = _("Please choose a role.")
    password = _password(form, "password")
    try:
        check_policy(password)
    except PasswordPolicyError as exc:
        errors["password"] = str(exc)
    if "password" not in errors and password != _password(form, "password_confirm"):
        errors["password_confirm"] = _("The two passwords are not the same.")
    if not errors:
        try:
            new_id = await create_organiser(
                db, email=email, password_hash=await hash_password_async(password), role=Role(values["role"])
            )
        except OrganiserExists:
            errors["email"] = _("An organiser with this email address exists already.")
        else:
            await record(
                db,
                organiser_id=organiser(request)["id"],
                action=AuditAction.ORGANISER_CREATE,
                target_type="organiser",
                target_id=new_id,
                detail=f"role={values['role']}",
            )
            return redirect(request, "/admin/organisers?done=created")
    return await _organisers_page(request, values=values, errors=errors, status=400)


async def _target(request: Request) -> dict[str, object]:
    row = await get_organiser(services(request).db, organiser_id=request.path_params["organiser_id"])
    if row is None:
        raise HTTPException(404, "no such organiser")
    return dict(row)


async def organiser_role(request: Request) -> Response:
    form = await read_form(request)
    db = services(request).db
    target = await _target(request)
    role = text(form, "role", 20)
    if role not in set(Role):
        return await _organisers_page(request, errors={"list": _("Please choose a role.")}, status=400)
    if target["role"] == Role.ADMIN and role != Role.ADMIN and target["active"] and await count_active_admins(db) <= 1:
        return await _organisers_page(
            request, status=400, errors={"list": _("The last administrator cannot be made a moderator.")}
        )
    if role != target["role"]:
        await set_role(db, organiser_id=int(str(target["id"])), role=Role(role))
        await record(
            db,
            organiser_id=organiser(request)["id"],
            action=AuditAction.ORGANISER_ROLE,
            target_type="organiser",
            target_id=int(str(target["id"])),
            detail=f"{target['role']} -> {role}",
        )
    return redirect(request, "/admin/organisers?done=role")


async def organiser_active(request: Request) -> Response:
    form = await read_form(request)
    db = services(request).db
    target = await _target(request)
    active = text(form, "active", 5) == "1"
    me = organiser(request)
    target_id = int(str(target["id"]))
    if not active and target_id == me["id"]:
        return await _organisers_page(
            request, status=400, errors={"list": _("You cannot deactivate your own account.")}
        )
    if not active and target["role"] == Role.ADMIN and target["active"] and await count_active_admins(db) <= 1:
        return await _organisers_page(
            request, status=400, errors={"list": _("The last administrator cannot be deactivated.")}
        )
    if active != bool(target["active"]):
        await set_active(db, organiser_id=target_id, active=active)
        await record(
            db,
            organiser_id=me["id"],
            target_type="organiser",
            target_id=target_id,
            action=AuditAction.ORGANISER_ACTIVATE if active else AuditAction.ORGANISER_DEACTIVATE,
        )
    return redirect(request, "/admin/organisers?done=active")


# --- own password ------------------------------------------------------------------------------------------


async def password_page(request: Request) -> Response:
    return render(
        request, "admin/password.html", {"errors": {}, "done": request.query_params.get("done") == "1"}, private=True
    )


async def password_change(request: Request) -> Response:
    form = await read_form(request)
    db = services(request).db
    me = organiser(request)
    errors: dict[str, str] = {}
    if not await verify_password_async(me["password_hash"], _password(form, "current_password")):
        errors["current_password"] = _("This is not your current password.")
    new = _password(form, "new_password")
    try:
        check_policy(new)
    except PasswordPolicyError as exc:
        errors["new_password"] = str(exc)
    if "new_password" not in errors and new != _password(form, "new_password_confirm"):
        errors["new_password_confirm"] = _("The two passwords are not the same.")
    if errors:
        return render(request, "admin/password.html", {"errors": errors, "done": False}, status=400)
    await set_password(db, organiser_id=me["id"], password_hash=await hash_password_async(new))
    await record(
        db, organiser_id=me["id"], action=AuditAction.ORGANISER_PASSWORD, target_type="organiser", target_id=me["id"]
    )
    # Every other session ended with the old version; this one carries on with the new.
    response = redirect(request, "/admin/account/password?done=1")
    sessions(request).set(response, organiser_id=me["id"], version=me["session_version"] + 1)
    return response


M = Role.MODERATOR
A = Role.ADMIN

routes = [
    Route("/admin/login", login_views.login_page, methods=["GET"], name="admin_login"),
    Route("/admin/login", login_views.login, methods=["POST"], name="admin_login_post"),
    Route("/admin/login/code", login_views.login_code, methods=["POST"], name="admin_login_code"),
    admin_route("/logout", logout, role=M, methods=["POST"], name="admin_logout", during_enrolment=True),
    admin_route("/", dashboard, role=M, name="admin_dashboard"),
    admin_route("/account/password", password_page, role=M, name="admin_password"),
    admin_route("/outbox", outbox_page, role=M, name="admin_outbox"),
    admin_route("/outbox/requeue", outbox_requeue, role=M, methods=["POST"]),
    admin_route("/account/password", password_change, role=M, methods=["POST"]),
    *moderation_views.routes(M),
    *dossier_views.routes(M),
    admin_route("/audit", audit_page, role=A, name="admin_audit"),
    admin_route("/organisers", organisers_page, role=A, name="admin_organisers"),
    admin_route("/organisers", organiser_create, role=A, methods=["POST"]),
    admin_route("/organisers/{organiser_id:int}/role", organiser_role, role=A, methods=["POST"]),
    admin_route("/organisers/{organiser_id:int}/active", organiser_active, role=A, methods=["POST"]),
    *two_step_views.routes(M, A),
    *appeal_views.routes(A),
    *export.routes(A),
]
