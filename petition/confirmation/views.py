"""The link in the confirmation email: GET shows, only POST confirms (mail scanners follow GETs)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from petition import i18n
from petition.abuse.limits import resend_allowed
from petition.appeals.queries import get_appeal_by_id
from petition.appeals.states import AppealStatus
from petition.endorsements.lifecycle import ConfirmOutcome, link_target
from petition.endorsements.queries import get_endorsement, resend_confirmation
from petition.endorsements.states import HELD, EndorsementState
from petition.endorsements.vocabulary import ORGANISATION_TYPE_LABELS
from petition.publish.cache import public_cache
from petition.publish.cached import appeal_by_id, appeal_text
from petition.templating import page_url
from petition.tokens import ExpiredToken, InvalidToken, Purpose, TokenClaims
from petition.web import client_ip, read_form, render, services

S = EndorsementState


def _claims_or_page(request: Request, token: str) -> TokenClaims | Response:
    svc = services(request)
    try:
        return svc.tokens.read(Purpose.CONFIRM, token, max_age=svc.settings.confirm_max_age)
    except ExpiredToken:
        return render(request, "confirmation/expired.html", {"token": token}, status=410, token_page=True)
    except InvalidToken:
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)


async def confirm_page(request: Request) -> Response:
    token = request.path_params["token"]
    claims = _claims_or_page(request, token)
    if isinstance(claims, Response):
        return claims
    svc = services(request)
    target = await link_target(svc.db, endorsement_id=claims.endorsement_id, nonce=claims.nonce)
    if target is None:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    # The appeal and its text as the public pages read them: a few seconds old at most (this
    # process's changes at once); confirming checks the appeal's state in its own transaction.
    cache = public_cache(request)
    appeal = await appeal_by_id(cache, svc.db, appeal_id=target.endorsement["appeal_id"])
    assert appeal is not None
    text = await appeal_text(cache, svc.db, appeal=appeal, language=i18n.get_language())
    # What this link confirms: exactly what its email showed, with the appeal it endorses.
    context = {
        "endorsement": target.shown,
        "appeal": appeal,
        "title": text["title"] if text else appeal["slug"],
        "token": token,
        "organisation_types": ORGANISATION_TYPE_LABELS,
        "state": target.endorsement["state"],
        "held": target.endorsement["state"] == HELD,
    }
    if target.confirmable and appeal["status"] == AppealStatus.CLOSED:
        return render(request, "appeals/closed.html", context, status=410, token_page=True)
    if target.confirmable:
        return render(request, "confirmation/confirm.html", context, token_page=True)
    if target.version_id is None and target.endorsement["state"] in (S.CONFIRMED, S.APPROVED, HELD):
        return render(request, "confirmation/done.html", context, token_page=True)
    return render(request, "confirmation/gone.html", context, status=410, token_page=True)


async def confirm(request: Request) -> Response:
    token = request.path_params["token"]
    await read_form(request)
    claims = _claims_or_page(request, token)
    if isinstance(claims, Response):
        return claims
    svc = services(request)
    outcome, _row = await svc.lifecycle.confirm(endorsement_id=claims.endorsement_id, nonce=claims.nonce)
    svc.metrics.confirmations.labels(outcome=outcome.value).inc()
    if outcome is ConfirmOutcome.GONE and _row is None:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    if outcome is ConfirmOutcome.CLOSED and _row is not None:
        appeal = await get_appeal_by_id(svc.db, appeal_id=_row["appeal_id"])
        return render(request, "appeals/closed.html", {"appeal": appeal}, status=410, token_page=True)
    # Post/redirect/get: the page shows the state, so a reload or a second POST changes nothing.
    return RedirectResponse(page_url(request, f"/confirm/{token}"), status_code=303)


async def resend(request: Request) -> Response:
    form = await read_form(request)
    token = form.get("token")
    if not isinstance(token, str) or not token:
        raise HTTPException(400, "token")
    svc = services(request)
    try:
        # Only the signature matters here: the point is to replace an expired link.
        claims = svc.tokens.read(Purpose.CONFIRM, token, max_age=None)
    except InvalidToken:
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)
    endorsement = await get_endorsement(svc.db, endorsement_id=claims.endorsement_id)
    if endorsement is None:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    # Capped per endorsement and per IP; over the cap the page is the same and nothing is sent.
    if await resend_allowed(svc.db, svc.settings, ip=client_ip(request), endorsement_id=claims.endorsement_id):
        await resend_confirmation(
            svc.db, mailer=svc.mailer, tokens=svc.tokens, endorsement_id=claims.endorsement_id, nonce=claims.nonce
        )
    appeal = await get_appeal_by_id(svc.db, appeal_id=endorsement["appeal_id"])
    assert appeal is not None
    return RedirectResponse(page_url(request, f"/appeals/{appeal['slug']}/check-email"), status_code=303)


routes = [
    Route("/confirm/resend", resend, methods=["POST"], name="confirm_resend"),
    Route("/confirm/{token}", confirm_page, methods=["GET"], name="confirm_page"),
    Route("/confirm/{token}", confirm, methods=["POST"], name="confirm"),
]
