"""The two pages of a countersignature (petition.identity.countersign).

- `/countersign/{token}`, from the contact's thank-you email: the state of the countersignature
  and a form that invites a second officer by their own address.
- `/countersignature/{token}`, from the invitation email: what the officer is asked to
  countersign; its POST countersigns (name, role, authority) or declines ("this is not our
  organisation's doing"). GET changes nothing: mail scanners follow links.

Both links are secrets: no-store, no Referer (`token_page`).
"""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from petition import i18n
from petition.abuse.limits import countersign_invite_allowed
from petition.appeals.queries import current_text, get_appeal_by_id
from petition.db import Row
from petition.endorsements.forms import clean_line, normalised_email
from petition.endorsements.queries import get_endorsement
from petition.endorsements.states import HELD, EndorsementState, Visibility
from petition.endorsements.vocabulary import ORGANISATION_TYPE_LABELS, canonical_email
from petition.i18n import gettext as _
from petition.identity import countersign
from petition.outbox.kinds import email_kind
from petition.outbox.messages import signed_link
from petition.templating import page_url
from petition.tokens import ExpiredToken, InvalidToken, Purpose
from petition.web import client_ip, read_form, render, services

#: The states in which the mailbox owner confirmed the endorsement and has not taken it back.
_CONFIRMED = (EndorsementState.CONFIRMED.value, EndorsementState.APPROVED.value, HELD.value)
#: The longest name and role accepted (the columns' width).
_MAX_LINE = 150


async def _endorsement(request: Request, purpose: Purpose, max_age: int) -> tuple[Row, str] | Response:
    """The endorsement a link names (confirmed, named) and the link's nonce, or the page to answer."""
    svc = services(request)
    try:
        claims = svc.tokens.read(purpose, request.path_params["token"], max_age=max_age)
    except ExpiredToken:
        return render(request, "identity/expired.html", {}, status=410, token_page=True)
    except InvalidToken:
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)
    endorsement = await get_endorsement(svc.db, endorsement_id=claims.endorsement_id)
    if endorsement is None or endorsement["state"] not in _CONFIRMED:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    if endorsement["visibility"] != Visibility.PUBLIC:
        return render(request, "identity/countersign_anonymous.html", {}, status=404, token_page=True)
    return endorsement, claims.nonce


async def _title(request: Request, endorsement: Row) -> tuple[Row, str]:
    db = services(request).db
    appeal = await get_appeal_by_id(db, appeal_id=endorsement["appeal_id"])
    assert appeal is not None
    text = await current_text(db, appeal=appeal, language=i18n.get_language())
    return appeal, str(text["title"]) if text else str(appeal["slug"])


# --- the contact's page ---------------------------------------------------------------------


async def _contact(request: Request) -> Row | Response:
    svc = services(request)
    found = await _endorsement(request, Purpose.COUNTERSIGN_INVITE, svc.settings.domain_proof_max_age)
    if isinstance(found, Response):
        return found
    endorsement, nonce = found
    if endorsement["token_nonce"] != nonce:  # a link of an earlier incarnation of the record
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    return endorsement


async def _invite_page(request: Request, endorsement: Row, *, status: int = 200, **extra: Any) -> Response:
    svc = services(request)
    row = await countersign.get_countersignature(svc.db, endorsement_id=endorsement["id"])
    _appeal, title = await _title(request, endorsement)
    context = {
        "endorsement": endorsement,
        "title": title,
        "countersignature": row,
        "current": row is not None
        and row["countersigned_at"] is not None
        and countersign.is_countersigned({**endorsement, "countersigned_hash": row["record_hash"]}),
        "token": request.path_params["token"],
        "errors": {},
        "values": {"email": ""},
        **extra,
    }
    return render(request, "identity/countersign_invite.html", context, status=status, token_page=True)


async def invite_page(request: Request) -> Response:
    endorsement = await _contact(request)
    if isinstance(endorsement, Response):
        return endorsement
    return await _invite_page(request, endorsement)


async def invite(request: Request) -> Response:
    form = await read_form(request)
    endorsement = await _contact(request)
    if isinstance(endorsement, Response):
        return endorsement
    svc = services(request)
    raw = clean_line(str(form.get("email") or ""))
    error = None
    status = 400
    address = ""
    if not raw:
        error = _("Please enter the email address of the second officer.")
    else:
        try:
            address = normalised_email(raw)
        except EmailNotValidError:
            error = _("Please enter a valid email address, such as name@example.org.")
    if error is None and canonical_email(address) == endorsement["email_canonical"]:
        # The same mailbox in another spelling would be one person confirming twice.
        error = _("This is the address that endorsed. Please give the address of another person of your organisation.")
    if error is None and not await countersign_invite_allowed(
        svc.db,
        svc.settings,
        ip=client_ip(request),
        endorsement_id=int(endorsement["id"]),
        email_canonical=canonical_email(address),
    ):
        error, status = _("Too many invitations have been sent today. Please try again tomorrow."), 429
    if error is not None:
        return await _invite_page(request, endorsement, status=status, errors={"email": error}, values={"email": raw})
    _appeal, title = await _title(request, endorsement)
    language = i18n.get_language()
    async with svc.db.write():
        nonce = await countersign.invite(svc.db, endorsement_id=int(endorsement["id"]), address=address)
        await svc.mailer.queue(
            svc.db,
            name="countersign",
            to=address,
            language=language,
            context=invitation_context(
                organisation_name=str(endorsement["organisation_name"]),
                contact_name=str(endorsement["contact_name"]),
                contact_role=str(endorsement["contact_role"]),
                title=title,
                nonce=nonce,
                language=language,
                valid_days=max(1, svc.settings.confirm_max_age // 86400),
            ),
            endorsement_id=int(endorsement["id"]),
        )
    svc.mailer.notify()
    return RedirectResponse(page_url(request, f"/countersign/{request.path_params['token']}"), status_code=303)


@email_kind("countersign")
def invitation_context(
    *,
    organisation_name: str,
    contact_name: str,
    contact_role: str,
    title: str,
    nonce: str,
    language: str,
    valid_days: int,
) -> dict[str, object]:
    """What the invitation email says (kind `countersign`, petition.outbox.kinds)."""
    return {
        "organisation_name": organisation_name,
        "contact_name": contact_name,
        "contact_role": contact_role,
        "title": title,
        "countersign_url": signed_link(
            Purpose.COUNTERSIGN, f"/countersignature/{{token}}?lang={language}", nonce=nonce
        ),
        "valid_days": valid_days,
    }


# --- the invited officer's page -------------------------------------------------------------


async def _officer(request: Request) -> tuple[Row, Row] | Response:
    svc = services(request)
    found = await _endorsement(request, Purpose.COUNTERSIGN, svc.settings.confirm_max_age)
    if isinstance(found, Response):
        return found
    endorsement, nonce = found
    row = await countersign.invitation(svc.db, endorsement_id=int(endorsement["id"]), nonce=nonce)
    if row is None:  # replaced by a newer invitation, or never made
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    return endorsement, row


async def _officer_page(request: Request, endorsement: Row, row: Row, *, status: int = 200, **extra: Any) -> Response:
    _appeal, title = await _title(request, endorsement)
    context = {
        "endorsement": endorsement,
        "title": title,
        "organisation_types": ORGANISATION_TYPE_LABELS,
        "countersignature": row,
        "current": row["countersigned_at"] is not None
        and countersign.is_countersigned({**endorsement, "countersigned_hash": row["record_hash"]}),
        "token": request.path_params["token"],
        "errors": {},
        "values": {"officer_name": "", "officer_role": "", "authorised": False},
        **extra,
    }
    return render(request, "identity/countersign.html", context, status=status, token_page=True)


async def officer_page(request: Request) -> Response:
    found = await _officer(request)
    if isinstance(found, Response):
        return found
    return await _officer_page(request, *found)


async def officer_answer(request: Request) -> Response:
    form = await read_form(request)
    found = await _officer(request)
    if isinstance(found, Response):
        return found
    endorsement, row = found
    svc = services(request)
    again = page_url(request, f"/countersignature/{request.path_params['token']}")
    if row["declined_at"] is not None:
        return RedirectResponse(again, status_code=303)  # declined: only a new invitation reopens it
    if form.get("action") == "decline":
        async with svc.db.write():
            await countersign.decline(svc.db, invitation_id=int(row["id"]), nonce=str(row["nonce"]))
        svc.lifecycle.public_changed(int(endorsement["appeal_id"]))
        return RedirectResponse(again, status_code=303)
    values = {
        "officer_name": clean_line(str(form.get("officer_name") or "")),
        "officer_role": clean_line(str(form.get("officer_role") or "")),
        "authorised": bool(form.get("authorised")),
    }
    errors: dict[str, str] = {}
    for field, message in (
        ("officer_name", _("Please enter your name.")),
        ("officer_role", _("Please enter your role in the organisation.")),
    ):
        if not values[field]:
            errors[field] = message
        elif len(str(values[field])) > _MAX_LINE:
            errors[field] = _("Please shorten this to %(max)s characters.", max=_MAX_LINE)
    if not values["authorised"]:
        errors["authorised"] = _("Please confirm that you are authorised to sign for your organisation.")
    if errors:
        return await _officer_page(request, endorsement, row, status=400, errors=errors, values=values)
    async with svc.db.write():
        await countersign.countersign(
            svc.db,
            invitation_id=int(row["id"]),
            nonce=str(row["nonce"]),
            name=str(values["officer_name"]),
            role=str(values["officer_role"]),
            endorsement=endorsement,
        )
    svc.lifecycle.public_changed(int(endorsement["appeal_id"]))
    return RedirectResponse(again, status_code=303)


routes = [
    Route("/countersign/{token}", invite_page, methods=["GET"], name="countersign_invite_page"),
    Route("/countersign/{token}", invite, methods=["POST"], name="countersign_invite"),
    Route("/countersignature/{token}", officer_page, methods=["GET"], name="countersignature"),
    Route("/countersignature/{token}", officer_answer, methods=["POST"], name="countersignature_answer"),
]
