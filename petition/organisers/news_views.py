"""News for endorsers, as admins write and send it: per language, to one country or all, previewed first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition import countries
from petition.db import Row
from petition.endorsements.forms import clean_line, clean_text
from petition.i18n import LANGUAGE_NAMES, LANGUAGES, get_language
from petition.i18n import gettext as _
from petition.news.queries import (
    UpdateText,
    audience_by_language,
    list_updates,
    send_update,
    subscribers_by_country,
)
from petition.organisers.auth import admin_route, organiser
from petition.organisers.pages import appeal_or_404, form_text, redirect, render
from petition.organisers.roles import Role
from petition.web import read_form, services

MAX_SUBJECT = 200
MAX_BODY = 20_000


def _path(appeal: Row) -> str:
    return f"/admin/appeals/{appeal['id']}/news"


async def _page(
    request: Request,
    appeal: Row,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    preview: dict[str, int] | None = None,
    status: int = 200,
) -> Response:
    db = services(request).db
    return render(
        request,
        "admin/news.html",
        {
            "appeal": appeal,
            "values": values or {"country": ""},
            "errors": errors or {},
            "preview": preview,
            "languages": LANGUAGES,
            "language_names": LANGUAGE_NAMES,
            "countries": countries.choices(get_language()),
            "subscribers": await subscribers_by_country(db, appeal_id=appeal["id"]),
            "updates": await list_updates(db, appeal_id=appeal["id"]),
            "sent": request.query_params.get("sent"),
        },
        status=status,
        get_path=_path(appeal),
    )


async def news_page(request: Request) -> Response:
    return await _page(request, await appeal_or_404(request))


def _read(form: object, appeal: Row) -> tuple[dict[str, str], dict[str, str], dict[str, UpdateText], str | None]:
    """The submitted update: the values to show again, the errors, the texts by language, the country."""
    values: dict[str, str] = {"country": form_text(form, "country", 2).upper()}
    errors: dict[str, str] = {}
    texts: dict[str, UpdateText] = {}
    for code in LANGUAGES:
        subject = clean_line(form_text(form, f"subject_{code}", MAX_SUBJECT + 1))
        body = clean_text(form_text(form, f"body_{code}", MAX_BODY + 1))
        values[f"subject_{code}"], values[f"body_{code}"] = subject[:MAX_SUBJECT], body[:MAX_BODY]
        if len(subject) > MAX_SUBJECT:
            errors[f"subject_{code}"] = _("Please use at most %(limit)d characters.", limit=MAX_SUBJECT)
        if len(body) > MAX_BODY:
            errors[f"body_{code}"] = _("Please use at most %(limit)d characters.", limit=MAX_BODY)
        if subject and not body and f"body_{code}" not in errors:
            errors[f"body_{code}"] = _("Please write the text of the update, or leave its subject empty too.")
        elif body and not subject and f"subject_{code}" not in errors:
            errors[f"subject_{code}"] = _("Please write a subject, or leave the text empty too.")
        elif subject and body:
            texts[code] = UpdateText(subject=subject, body=body)
    default = appeal["default_language"]
    if default not in texts and f"subject_{default}" not in errors and f"body_{default}" not in errors:
        errors[f"subject_{default}"] = _(
            "Please write the update in the appeal's default language (%(language)s): "
            "organisations whose language has no text receive that one.",
            language=LANGUAGE_NAMES.get(default, default),
        )
    country = values["country"] or None
    if country is not None and not countries.is_country(country):
        errors["country"] = _("Please choose a country, or all countries.")
    return values, errors, texts, country


async def news_send(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    values, errors, texts, country = _read(form, appeal)
    if errors:
        return await _page(request, appeal, values=values, errors=errors, status=400)
    svc = services(request)
    preview = await audience_by_language(
        svc.db, appeal_id=appeal["id"], country=country, texts=texts, default_language=appeal["default_language"]
    )
    if form_text(form, "action", 10) != "send":
        return await _page(request, appeal, values=values, preview=preview)
    if form_text(form, "confirm_send", 8) != "yes":
        errors["confirm_send"] = _("Tick the box to confirm that the update should be sent.")
        return await _page(request, appeal, values=values, errors=errors, preview=preview, status=400)
    _update_id, counts = await send_update(
        svc.db, mailer=svc.mailer, appeal=appeal, country=country, texts=texts, organiser_id=organiser(request)["id"]
    )
    return redirect(request, f"{_path(appeal)}?sent={sum(counts.values())}")


def routes(role: Role) -> list[Route]:
    return [
        admin_route("/appeals/{appeal_id:int}/news", news_page, role=role),
        admin_route("/appeals/{appeal_id:int}/news", news_send, role=role, methods=["POST"]),
    ]
