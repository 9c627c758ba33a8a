"""Appeal management: create, settings, open / pause / close, texts per language (versioned)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition.appeals.queries import (
    create_appeal,
    current_titles,
    get_appeal,
    list_appeals,
    save_text,
    set_status,
)
from petition.appeals.states import AppealStatus, Moderation
from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.db import INTEGRITY_ERRORS, Row
from petition.i18n import LANGUAGE_NAMES, LANGUAGES, get_language
from petition.i18n import gettext as _
from petition.organisers import appeal_about, delivery_views, news_views
from petition.organisers.appeals import current_texts, text_versions, update_settings, valid_slug
from petition.organisers.auth import admin_route, organiser
from petition.organisers.pages import appeal_or_404, form_text, redirect, render
from petition.organisers.roles import Role
from petition.web import read_form, services

#: What the status buttons may set; a draft is only where an appeal starts.
SETTABLE_STATUSES = (AppealStatus.OPEN, AppealStatus.PAUSED, AppealStatus.CLOSED)
MAX_TITLE = 300
MAX_BODY = 100_000


async def _appeals_page(
    request: Request, *, values: dict[str, str] | None = None, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    db = services(request).db
    return render(
        request,
        "admin/appeals.html",
        {
            "appeals": await list_appeals(db, public_only=False),
            "titles": await current_titles(db, language=get_language()),
            "values": values or {"moderation": Moderation.PRE.value, "default_language": "en"},
            "errors": errors or {},
            "languages": LANGUAGES,
            "language_names": LANGUAGE_NAMES,
        },
        status=status,
        private=True,
    )


async def appeals_page(request: Request) -> Response:
    return await _appeals_page(request)


async def appeal_create(request: Request) -> Response:
    form = await read_form(request)
    db = services(request).db
    values = {
        "slug": form_text(form, "slug", 80).lower(),
        "moderation": form_text(form, "moderation", 8),
        "default_language": form_text(form, "default_language", 8),
    }
    errors = {}
    if not valid_slug(values["slug"]):
        errors["slug"] = _("Use lower-case letters, digits and hyphens, such as protect-deserters.")
    elif await get_appeal(db, slug=values["slug"]) is not None:
        errors["slug"] = _("An appeal with this address exists already.")
    if values["moderation"] not in set(Moderation):
        errors["moderation"] = _("Please choose how endorsements are moderated.")
    if values["default_language"] not in LANGUAGES:
        errors["default_language"] = _("Please choose a language.")
    if not errors:
        try:
            # The change and its audit row commit together (record joins this transaction).
            async with db.write():
                appeal_id = await create_appeal(
                    db,
                    slug=values["slug"],
                    moderation=Moderation(values["moderation"]),
                    status=AppealStatus.DRAFT,
                    default_language=values["default_language"],
                )
                await record(
                    db,
                    organiser_id=organiser(request)["id"],
                    action=AuditAction.APPEAL_CREATE,
                    target_type="appeal",
                    target_id=appeal_id,
                    detail=f"slug={values['slug']} moderation={values['moderation']}",
                )
        except INTEGRITY_ERRORS:
            errors["slug"] = _("An appeal with this address exists already.")
        else:
            return redirect(request, f"/admin/appeals/{appeal_id}")
    return await _appeals_page(request, values=values, errors=errors, status=400)


def _notices() -> dict[str, str]:
    return {
        "settings": _("The settings were saved."),
        "status": _("The status was changed."),
        "text": _("A new version of the text was saved."),
        "unchanged": _("The text is unchanged; no new version was made."),
    }


async def _appeal_page(
    request: Request,
    appeal: Row,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    db = services(request).db
    return render(
        request,
        "admin/appeal.html",
        {
            "appeal": appeal,
            "texts": await current_texts(db, appeal_id=appeal["id"]),
            "languages": LANGUAGES,
            "language_names": LANGUAGE_NAMES,
            "statuses": [s.value for s in SETTABLE_STATUSES],
            "values": values
            or {
                "moderation": appeal["moderation"],
                "default_language": appeal["default_language"],
                "addressees": appeal["addressees"],
            },
            "errors": errors or {},
            "notice": _notices().get(request.query_params.get("done", "")),
        },
        status=status,
        get_path=f"/admin/appeals/{appeal['id']}",
    )


async def appeal_page(request: Request) -> Response:
    return await _appeal_page(request, await appeal_or_404(request))


async def appeal_settings(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    values = {
        "moderation": form_text(form, "moderation", 8),
        "default_language": form_text(form, "default_language", 8),
        "addressees": form_text(form, "addressees", 2000),
    }
    errors = {}
    if values["moderation"] not in set(Moderation):
        errors["moderation"] = _("Please choose how endorsements are moderated.")
    if values["default_language"] not in LANGUAGES:
        errors["default_language"] = _("Please choose a language.")
    if errors:
        return await _appeal_page(request, appeal, values=values, errors=errors, status=400)
    db = services(request).db
    changes = [
        f"{name}: {appeal[name]} -> {values[name]}"
        for name in ("moderation", "default_language")
        if appeal[name] != values[name]
    ]
    if appeal["addressees"] != values["addressees"]:
        changes.append("addressees")
    async with db.write():
        await update_settings(
            db,
            appeal_id=appeal["id"],
            moderation=Moderation(values["moderation"]),
            default_language=values["default_language"],
            addressees=values["addressees"],
        )
        await record(
            db,
            organiser_id=organiser(request)["id"],
            action=AuditAction.APPEAL_EDIT,
            target_type="appeal",
            target_id=appeal["id"],
            detail="; ".join(changes),
        )
    return redirect(request, f"/admin/appeals/{appeal['id']}?done=settings")


async def appeal_status(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    db = services(request).db
    new = form_text(form, "status", 16)
    if new not in {s.value for s in SETTABLE_STATUSES}:
        raise HTTPException(400, "unknown status")
    if new == AppealStatus.CLOSED and new != appeal["status"] and form_text(form, "confirm_close", 8) != "yes":
        # Closing turns every new endorsement away: it takes a second, explicit step.
        return await _appeal_page(
            request,
            appeal,
            status=400,
            errors={"confirm_close": _("Tick the box to confirm that the appeal should close.")},
        )
    if new == AppealStatus.OPEN and appeal["default_language"] not in await current_texts(db, appeal_id=appeal["id"]):
        return await _appeal_page(
            request,
            appeal,
            status=400,
            errors={"status": _("Write the text in the default language before opening the appeal.")},
        )
    if new != appeal["status"]:
        async with db.write():
            await set_status(db, appeal_id=appeal["id"], status=AppealStatus(new))
            await record(
                db,
                organiser_id=organiser(request)["id"],
                action=AuditAction.APPEAL_STATUS,
                target_type="appeal",
                target_id=appeal["id"],
                detail=f"{appeal['status']} -> {new}",
            )
        services(request).lifecycle.public_changed()  # the appeal itself changed: slug entries too
    return redirect(request, f"/admin/appeals/{appeal['id']}?done=status")


def _language(request: Request) -> str:
    language = request.path_params["language"]
    if language not in LANGUAGES:
        raise HTTPException(404, "no such language")
    return str(language)


async def _text_page(
    request: Request,
    appeal: Row,
    language: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    db = services(request).db
    versions = await text_versions(db, appeal_id=appeal["id"], language=language)
    current = next((v for v in versions if v["is_current"]), None)
    if values is None:
        values = (
            {"title": current["title"], "addressees": current["addressees"], "body": current["body"]}
            if current
            else {"title": "", "addressees": appeal["addressees"], "body": ""}
        )
    return render(
        request,
        "admin/appeal_text.html",
        {
            "appeal": appeal,
            "language": language,
            "language_name": LANGUAGE_NAMES[language],
            "versions": versions,
            "current": current,
            "values": values,
            "errors": errors or {},
        },
        status=status,
        get_path=f"/admin/appeals/{appeal['id']}/texts/{language}",
    )


async def text_page(request: Request) -> Response:
    return await _text_page(request, await appeal_or_404(request), _language(request))


async def text_save(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    language = _language(request)
    raw_title = form.get("title")
    raw_body = form.get("body")
    values = {
        "title": " ".join(form_text(form, "title", MAX_TITLE + 1).split()),
        "addressees": form_text(form, "addressees", 2000),
        "body": form_text(form, "body", MAX_BODY + 1),
    }
    errors = {}
    if not values["title"]:
        errors["title"] = _("Please enter a title.")
    elif isinstance(raw_title, str) and len(raw_title.strip()) > MAX_TITLE:
        errors["title"] = _("Please use at most %(limit)d characters.", limit=MAX_TITLE)
    if not values["body"]:
        errors["body"] = _("Please enter the text of the appeal.")
    elif isinstance(raw_body, str) and len(raw_body.strip()) > MAX_BODY:
        errors["body"] = _("Please use at most %(limit)d characters.", limit=MAX_BODY)
    if errors:
        return await _text_page(request, appeal, language, values=values, errors=errors, status=400)
    db = services(request).db
    async with db.write():
        version = await save_text(
            db,
            appeal_id=appeal["id"],
            language=language,
            title=values["title"],
            addressees=values["addressees"],
            body=values["body"],
        )
        if version is not None:
            await record(
                db,
                organiser_id=organiser(request)["id"],
                action=AuditAction.APPEAL_TEXT,
                target_type="appeal",
                target_id=appeal["id"],
                detail=f"language={language} version={version}",
            )
    if version is None:
        return redirect(request, f"/admin/appeals/{appeal['id']}?done=unchanged")
    services(request).lifecycle.public_changed()  # the appeal itself changed: slug entries too
    return redirect(request, f"/admin/appeals/{appeal['id']}?done=text")


def routes(role: Role) -> list[Route]:
    return [
        admin_route("/appeals", appeals_page, role=role, name="admin_appeals"),
        admin_route("/appeals", appeal_create, role=role, methods=["POST"]),
        admin_route("/appeals/{appeal_id:int}", appeal_page, role=role),
        admin_route("/appeals/{appeal_id:int}", appeal_settings, role=role, methods=["POST"]),
        admin_route("/appeals/{appeal_id:int}/status", appeal_status, role=role, methods=["POST"]),
        admin_route("/appeals/{appeal_id:int}/texts/{language}", text_page, role=role),
        admin_route("/appeals/{appeal_id:int}/texts/{language}", text_save, role=role, methods=["POST"]),
        *appeal_about.routes(role),
        *news_views.routes(role),
        *delivery_views.routes(role),
    ]
