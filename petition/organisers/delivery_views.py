"""Delivery, as admins run it (petition.delivery): the member lists' state, routes for countries
without members, the suppression list; per country the recipients, the covering letter and the
signed dossier, reviewed before sending; each delivery's recipients and their status; answers."""

from __future__ import annotations

import datetime as dt

from email_validator import EmailNotValidError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition import countries
from petition.db import Row
from petition.delivery import addressees as lists
from petition.delivery import sending
from petition.endorsements.forms import clean_line, clean_text, normalised_email
from petition.i18n import get_language
from petition.i18n import gettext as _
from petition.organisers.auth import admin_route, organiser
from petition.organisers.pages import appeal_or_404, form_text, redirect, render
from petition.organisers.roles import Role
from petition.web import read_form, services

MAX_AUTHOR = 200
MAX_SUMMARY = 5_000


def _path(appeal: Row, country: str | None = None) -> str:
    return f"/admin/appeals/{appeal['id']}/delivery" + (f"/{country}" if country else "")


def _country(request: Request) -> str:
    code = str(request.path_params["country"]).upper()
    if not countries.is_country(code):
        raise HTTPException(404, "no such country")
    return code


def body_name(body: str) -> str:
    return {
        "ep": _("European Parliament"),
        "pace": _("Parliamentary Assembly of the Council of Europe"),
    }.get(body, body)


async def open_country(request: Request) -> Response:
    appeal = await appeal_or_404(request)
    code = request.query_params.get("country", "").strip().upper()
    # No country chosen (or none that exists): back to the overview, where the choice is.
    return redirect(request, _path(appeal, code if countries.is_country(code) else None))


async def overview(request: Request) -> Response:
    return await _overview(request, await appeal_or_404(request))


async def _overview(
    request: Request,
    appeal: Row,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The delivery overview; a routes or suppression form that came back keeps what was typed."""
    db = services(request).db
    imports = await lists.latest_imports(db)
    done = await sending.deliveries_of(db, appeal_id=appeal["id"])
    delivered: dict[str, tuple[int, dt.datetime]] = {}
    for row in done:  # newest first
        count, last = delivered.get(row["country"], (0, row["created_at"]))
        delivered[row["country"]] = (count + 1, last)
    return render(
        request,
        "admin/delivery.html",
        {
            "appeal": appeal,
            "imports": imports,
            "stale": {body for body, row in imports.items() if lists.is_stale(row)},
            "bodies": lists.BODIES,
            "routes": await lists.all_routes(db),
            "suppressions": await lists.list_suppressions(db),
            "delivered": delivered,
            "countries": countries.choices(get_language()),
            "values": values or {},
            "errors": errors or {},
            "body_name": body_name,
        },
        status=status,
        get_path=_path(appeal),
    )


async def _country_page(
    request: Request,
    appeal: Row,
    country: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    answer: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    db = services(request).db
    params = request.query_params
    body = values.get("body", "") if values else params.get("body", "")
    committee = (values.get("committee", "") if values else params.get("committee", "")).upper()
    group = values.get("group", "") if values else params.get("group", "")
    bodies = [body] if body in lists.BODIES else list(lists.BODIES)
    the_plan = await sending.plan(
        db, appeal=appeal, country=country, bodies=bodies, committee=committee or None, group=group or None
    )
    dossier = the_plan.dossier
    if values is None:
        title = await sending.appeal_title(db, appeal=appeal, language=the_plan.language)
        subject, letter = sending.default_letter(
            language=the_plan.language,
            title=title,
            country=country,
            named=int(dossier["signatory_count"]) if dossier else 0,
            anonymous=int(dossier["anonymous_count"]) if dossier else 0,
        )
        values = {"subject": subject, "letter": letter, "body": body, "committee": committee, "group": group}
    done = await sending.deliveries_of(db, appeal_id=appeal["id"], country=country)
    ids = [int(d["id"]) for d in done]
    await sending.sync_statuses(db, delivery_ids=ids)
    groups, codes = await lists.groups_and_committees(db)
    imports = await lists.latest_imports(db)
    answers: dict[int, list[Row]] = {}
    for given in await sending.answers_of(db, delivery_ids=ids):
        answers.setdefault(int(given["delivery_id"]), []).append(given)
    return render(
        request,
        "admin/delivery_country.html",
        {
            "appeal": appeal,
            "country": country,
            "plan": the_plan,
            "values": values,
            "errors": errors or {},
            "answer": answer or {"author": "", "summary": "", "document_url": "", "answered_on": ""},
            "groups": groups,
            "committees": codes,
            "bodies": lists.BODIES,
            "routes": await lists.routes_of(db, country=country),
            "imports": imports,
            "stale": {b for b, row in imports.items() if lists.is_stale(row)},
            "deliveries": done,
            "recipients": {i: await sending.recipients_of(db, delivery_id=i) for i in ids},
            "counts": await sending.status_counts(db, delivery_ids=ids),
            "answers": answers,
            "sent": request.query_params.get("sent"),
            "today": dt.date.today().isoformat(),
            "body_name": body_name,
        },
        status=status,
        get_path=_path(appeal, country),
    )


async def country_page(request: Request) -> Response:
    return await _country_page(request, await appeal_or_404(request), _country(request))


async def country_send(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    country = _country(request)
    values = {
        "subject": clean_line(form_text(form, "subject", sending.MAX_SUBJECT + 1)),
        "letter": clean_text(form_text(form, "letter", sending.MAX_LETTER + 1)),
        "body": form_text(form, "body", 8),
        "committee": form_text(form, "committee", 20).upper(),
        "group": form_text(form, "group", 100),
    }
    errors: dict[str, str] = {}
    if not values["subject"]:
        errors["subject"] = _("Please write a subject.")
    elif len(values["subject"]) > sending.MAX_SUBJECT:
        errors["subject"] = _("Please use at most %(limit)d characters.", limit=sending.MAX_SUBJECT)
    if not values["letter"]:
        errors["letter"] = _("Please write the covering letter.")
    elif len(values["letter"]) > sending.MAX_LETTER:
        errors["letter"] = _("Please use at most %(limit)d characters.", limit=sending.MAX_LETTER)
    if form_text(form, "confirm_send", 8) != "yes":
        errors["confirm_send"] = _("Tick the box to confirm that the dossier should be sent.")
    if errors:
        return await _country_page(request, appeal, country, values=values, errors=errors, status=400)
    svc = services(request)
    bodies = [values["body"]] if values["body"] in lists.BODIES else list(lists.BODIES)
    try:
        delivery_id = await sending.send(
            svc.db,
            mailer=svc.mailer,
            appeal=appeal,
            country=country,
            subject=values["subject"],
            letter=values["letter"],
            bodies=bodies,
            committee=values["committee"] or None,
            group=values["group"] or None,
            organiser_id=organiser(request)["id"],
            interval=svc.settings.delivery_interval,
        )
    except sending.NothingToSend:
        errors["confirm_send"] = _(
            "There is nothing to send: this country has no signed dossier yet, or no recipient who is not suppressed."
        )
        return await _country_page(request, appeal, country, values=values, errors=errors, status=409)
    svc.lifecycle.public_changed(int(appeal["id"]))  # the appeal page shows deliveries
    return redirect(request, f"{_path(appeal, country)}?sent={delivery_id}")


async def answer_add(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    country = _country(request)
    svc = services(request)
    done = {int(d["id"]): d for d in await sending.deliveries_of(svc.db, appeal_id=appeal["id"], country=country)}
    try:
        delivery = done[int(form_text(form, "delivery", 12))]
    except (KeyError, ValueError):
        raise HTTPException(400, "no such delivery") from None
    author = clean_line(form_text(form, "author", MAX_AUTHOR + 1))
    summary = clean_text(form_text(form, "summary", MAX_SUMMARY + 1))
    document = form_text(form, "document_url", 501)
    raw_date = form_text(form, "answered_on", 10)
    errors: dict[str, str] = {}
    if not author or len(author) > MAX_AUTHOR:
        errors["author"] = _("Please say who answered (at most %(limit)d characters).", limit=MAX_AUTHOR)
    if not summary or len(summary) > MAX_SUMMARY:
        errors["summary"] = _("Please summarise the answer (at most %(limit)d characters).", limit=MAX_SUMMARY)
    if document and not sending.valid_document_url(document):
        errors["document_url"] = _("Please give an https:// address, or leave this empty.")
    try:
        answered_on = dt.date.fromisoformat(raw_date)
    except ValueError:
        answered_on = None
    if answered_on is None or answered_on > dt.date.today() + dt.timedelta(days=1):
        errors["answered_on"] = _("Please give the date of the answer as YYYY-MM-DD, not in the future.")
    if errors:
        typed = {"author": author, "summary": summary, "document_url": document, "answered_on": raw_date}
        return await _country_page(request, appeal, country, errors=errors, answer=typed, status=400)
    assert answered_on is not None
    await sending.record_answer(
        svc.db,
        delivery=delivery,
        author=author,
        answered_on=answered_on,
        summary=summary,
        document_url=document,
        organiser_id=organiser(request)["id"],
    )
    svc.lifecycle.public_changed(int(appeal["id"]))
    return redirect(request, f"{_path(appeal, country)}?answered=1")


async def routes_save(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    country = form_text(form, "country", 2).upper()
    values = {
        "route_country": country,
        **{f"committees_{b}": form_text(form, f"committees_{b}", 300) for b in lists.BODIES},
    }
    errors: dict[str, str] = {}
    if not countries.is_country(country):
        errors["route-country"] = _("Please choose a country.")
    routes: dict[str, list[str]] = {}
    for body in lists.BODIES:
        codes = lists.parse_committees(values[f"committees_{body}"])
        if codes is None:
            errors[f"committees_{body}"] = _(
                "A committee's code is letters and digits (DROI, PETI, MIG), separated by “;”."
            )
        else:
            routes[body] = codes
    if errors:
        return await _overview(request, appeal, values=values, errors=errors, status=400)
    await lists.set_routes(services(request).db, country=country, routes=routes)
    return redirect(request, _path(appeal) + "#routes")


async def suppression_add(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    email = form_text(form, "email", 254)
    reason = clean_line(form_text(form, "reason", 200))
    try:
        email = normalised_email(email)
    except EmailNotValidError:
        values = {"email": email, "reason": reason}
        errors = {"email": _("Please enter a valid email address, such as name@example.org.")}
        return await _overview(request, appeal, values=values, errors=errors, status=400)
    await lists.suppress(services(request).db, email=email, reason=reason)
    return redirect(request, _path(appeal) + "#suppressions")


async def suppression_remove(request: Request) -> Response:
    form = await read_form(request)
    appeal = await appeal_or_404(request)
    try:
        suppression_id = int(form_text(form, "id", 12))
    except ValueError:
        raise HTTPException(400, "id") from None
    await lists.unsuppress(services(request).db, suppression_id=suppression_id)
    return redirect(request, _path(appeal) + "#suppressions")


def routes(role: Role) -> list[Route]:
    return [
        admin_route("/appeals/{appeal_id:int}/delivery", overview, role=role),
        admin_route("/appeals/{appeal_id:int}/delivery/routes", routes_save, role=role, methods=["POST"]),
        admin_route("/appeals/{appeal_id:int}/delivery/suppressions", suppression_add, role=role, methods=["POST"]),
        admin_route(
            "/appeals/{appeal_id:int}/delivery/suppressions/remove", suppression_remove, role=role, methods=["POST"]
        ),
        admin_route("/appeals/{appeal_id:int}/delivery/open", open_country, role=role),
        admin_route("/appeals/{appeal_id:int}/delivery/{country:str}", country_page, role=role),
        admin_route("/appeals/{appeal_id:int}/delivery/{country:str}", country_send, role=role, methods=["POST"]),
        admin_route("/appeals/{appeal_id:int}/delivery/{country:str}/answers", answer_add, role=role, methods=["POST"]),
    ]
