"""The unsubscribe link of news emails: one POST from a mail program (RFC 8058), or a page with a button.

`POST /unsubscribe/{token}` with the body `List-Unsubscribe=One-Click` unsubscribes with no
cookie and no CSRF token: the signed token in the path is the secret, and unsubscribing twice
changes nothing. A GET only shows a page whose one form (CSRF-protected) unsubscribes: mail
scanners that follow links must not unsubscribe anyone.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from petition.news.queries import UnsubscribeOutcome, news_record, unsubscribe
from petition.templating import page_url
from petition.tokens import InvalidToken, Purpose, TokenClaims
from petition.web import read_form, render, services

ONE_CLICK = ("List-Unsubscribe", "One-Click")


def _claims(request: Request) -> TokenClaims | None:
    try:
        # No expiry: the link works for as long as the endorsement does (its nonce binds it).
        return services(request).tokens.read(Purpose.UNSUBSCRIBE, request.path_params["token"], max_age=None)
    except InvalidToken:
        return None


async def unsubscribe_page(request: Request) -> Response:
    claims = _claims(request)
    if claims is None:
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)
    row = await news_record(services(request).db, endorsement_id=claims.endorsement_id, nonce=claims.nonce)
    if row is None:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    context = {"endorsement": row, "token": request.path_params["token"]}
    if row["news_unsubscribed_at"] is not None:
        return render(request, "news/unsubscribed.html", context, token_page=True)
    return render(request, "news/unsubscribe.html", context, token_page=True)


async def unsubscribe_post(request: Request) -> Response:
    form = await read_form(request, check_csrf=False, max_fields=5)
    # RFC 8058 asks for urlencoded or multipart; a sender that names no content type is taken at its word.
    one_click = form.get(ONE_CLICK[0]) == ONE_CLICK[1] or (await request.body()).strip() == b"=".join(
        part.encode() for part in ONE_CLICK
    )
    if not one_click:
        # The page's button: a form like every other, CSRF-checked.
        services(request).csrf.check(request, form.get("csrf_token"))
    claims = _claims(request)
    if claims is None:
        if one_click:
            return PlainTextResponse("Invalid link", status_code=400)
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)
    outcome = await unsubscribe(services(request).db, endorsement_id=claims.endorsement_id, nonce=claims.nonce)
    if outcome is UnsubscribeOutcome.GONE:
        if one_click:
            return PlainTextResponse("Unknown link", status_code=404)
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    if one_click:
        return PlainTextResponse("Unsubscribed", headers={"Cache-Control": "no-store"})
    return RedirectResponse(page_url(request, f"/unsubscribe/{request.path_params['token']}"), status_code=303)


routes = [
    Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"], name="unsubscribe_page"),
    Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"], name="unsubscribe"),
]
