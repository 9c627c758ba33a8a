"""The privacy page, withdrawal links, and a copy of one's data by email."""

from __future__ import annotations

import json

from email_validator import EmailNotValidError, validate_email
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from petition import i18n
from petition.abuse.limits import data_request_allowed
from petition.endorsements.lifecycle import Event, WithdrawOutcome, may
from petition.endorsements.states import EndorsementState
from petition.endorsements.vocabulary import CONSENT_VERSION, NEWS_CONSENT_VERSION, canonical_email
from petition.i18n import gettext as _
from petition.privacy.queries import endorsement_for_token, export_data, request_data_copy
from petition.templating import page_url
from petition.tokens import ExpiredToken, InvalidToken, Purpose, TokenClaims
from petition.web import client_ip, read_form, render, services

S = EndorsementState


async def privacy_page(request: Request) -> Response:
    settings = services(request).settings
    return render(
        request,
        "privacy/privacy.html",
        {
            "retention_days": settings.unconfirmed_retention_days,
            "valid_days": max(1, settings.confirm_max_age // 86400),
            "consent_version": CONSENT_VERSION,
            "news_consent_version": NEWS_CONSENT_VERSION,
        },
    )


def _withdraw_claims(request: Request, token: str) -> TokenClaims | Response:
    try:
        # No expiry: the link works for as long as the endorsement does (the nonce binds it).
        return services(request).tokens.read(Purpose.WITHDRAW, token, max_age=None)
    except InvalidToken:
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)


async def withdraw_page(request: Request) -> Response:
    token = request.path_params["token"]
    claims = _withdraw_claims(request, token)
    if isinstance(claims, Response):
        return claims
    row = await endorsement_for_token(services(request).db, endorsement_id=claims.endorsement_id, nonce=claims.nonce)
    if row is None:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    context = {"endorsement": row, "token": token}
    if row["state"] == S.WITHDRAWN:
        return render(request, "privacy/withdrawn.html", context, token_page=True)
    if not may(Event.WITHDRAW, row["state"]):
        return render(
            request, "confirmation/gone.html", {**context, "appeal": {"slug": row["slug"]}}, status=410, token_page=True
        )
    return render(request, "privacy/withdraw.html", context, token_page=True)


async def withdraw(request: Request) -> Response:
    token = request.path_params["token"]
    await read_form(request)
    claims = _withdraw_claims(request, token)
    if isinstance(claims, Response):
        return claims
    # Gone from this process's lists at once (other processes follow within the cache's TTL).
    outcome = await services(request).lifecycle.withdraw(endorsement_id=claims.endorsement_id, nonce=claims.nonce)
    if outcome is WithdrawOutcome.GONE:
        return await withdraw_page(request)
    return RedirectResponse(page_url(request, f"/withdraw/{token}"), status_code=303)


async def data_form(request: Request) -> Response:
    return render(request, "privacy/data_request.html", {"values": {}, "errors": {}})


async def data_request(request: Request) -> Response:
    form = await read_form(request)
    raw = form.get("contact_email")
    value = raw.strip() if isinstance(raw, str) else ""
    try:
        checked = validate_email(value, check_deliverability=False) if len(value) <= 254 else None
    except EmailNotValidError:
        checked = None
    if checked is None:
        return render(
            request,
            "privacy/data_request.html",
            {
                "values": {"contact_email": value[:254]},
                "errors": {"contact_email": _("Please enter a valid email address, such as name@example.org.")},
            },
            status=400,
            private=True,
        )
    svc = services(request)
    email = canonical_email(checked.normalized)
    # Known or not, capped or not: the same answer, so the form tells nobody who signed.
    if await data_request_allowed(svc.db, svc.settings, ip=client_ip(request), email_canonical=email):
        await request_data_copy(svc.db, mailer=svc.mailer, email_canonical=email, language=i18n.get_language())
    return RedirectResponse(page_url(request, "/privacy/data/sent"), status_code=303)


async def data_sent(request: Request) -> Response:
    return render(request, "privacy/data_sent.html", {})


async def data_download(request: Request) -> Response:
    svc = services(request)
    token = request.path_params["token"]
    try:
        claims = svc.tokens.read(Purpose.DATA_REQUEST, token, max_age=svc.settings.confirm_max_age)
    except ExpiredToken:
        return render(request, "privacy/data_expired.html", {}, status=410, token_page=True)
    except InvalidToken:
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)
    data = await export_data(svc.db, env=svc.templates.env, endorsement_id=claims.endorsement_id, nonce=claims.nonce)
    if data is None:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="my-endorsement-data.json"',
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


routes = [
    Route("/privacy", privacy_page, name="privacy"),
    Route("/privacy/data", data_form, methods=["GET"], name="data_form"),
    Route("/privacy/data", data_request, methods=["POST"], name="data_request"),
    Route("/privacy/data/sent", data_sent, name="data_sent"),
    Route("/privacy/data/{token}", data_download, name="data_download"),
    Route("/withdraw/{token}", withdraw_page, methods=["GET"], name="withdraw_page"),
    Route("/withdraw/{token}", withdraw, methods=["POST"], name="withdraw"),
]
