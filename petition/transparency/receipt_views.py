"""Receipts over HTTP: `/receipts/{token}` (a page), `.json` (the contract's keys) and, for a
named organisation, a badge to put on its website (`/log/badges/{entry}.svg`, by the entry's
public id: the token, which opens the receipt, is never what a page embeds).

The token is the secret (petition.transparency.receipts): every answer to it is `no-store` and
leaks no Referer, like the other pages of links from emails. Until the log's worker has
appended the entry, the page says it is being added and the JSON is a 404 with an `error`
(and `Retry-After`); a token that does not verify is a 400.
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from petition import i18n
from petition.appeals.queries import current_text, get_appeal
from petition.appeals.states import AppealStatus
from petition.i18n import gettext as _
from petition.publish.cache import public_cache
from petition.publish.cached import appeal_by_slug, appeal_text, listed_counts
from petition.publish.share import share_meta
from petition.tokens import InvalidToken, Purpose, TokenClaims
from petition.transparency import receipts, store
from petition.transparency.receipts import Receipt, Status
from petition.transparency.tables import log_leaves
from petition.web import render, services

_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
#: The badge is an image other sites embed: it loads nothing, runs nothing.
BADGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Cache-Control": "public, max-age=300",
    "Referrer-Policy": "no-referrer",
}
#: Characters of the appeal's title the badge shows (the whole title is in its <title>).
_BADGE_TITLE = 60


def _claims(request: Request) -> TokenClaims | None:
    try:
        return services(request).tokens.read(Purpose.RECEIPT, request.path_params["token"], max_age=None)
    except InvalidToken:
        return None


async def _receipt(request: Request) -> Receipt | None | bool:
    """The receipt, None when the token names none, False when it does not verify."""
    claims = _claims(request)
    if claims is None:
        return False
    return await receipts.find(services(request).db, endorsement_id=claims.endorsement_id, entry_id=claims.nonce)


async def _title(request: Request, slug: str) -> str:
    db = services(request).db
    appeal = await get_appeal(db, slug=slug)
    if appeal is None:
        return slug
    text = await current_text(db, appeal=appeal, language=i18n.get_language())
    return str(text["title"]) if text else slug


async def _share(request: Request, slug: str) -> dict[str, str] | None:
    """The appeal's share card fields: a receipt's page shared shows the appeal, never the receipt."""
    cache = public_cache(request)
    db = services(request).db
    appeal = await appeal_by_slug(cache, db, slug=slug)
    if appeal is None or appeal["status"] == AppealStatus.DRAFT:
        return None
    language = i18n.get_language()
    text = await appeal_text(cache, db, appeal=appeal, language=language)
    if text is None:
        return None
    counts = await listed_counts(cache, db, appeal=appeal)
    settings = services(request).settings
    return share_meta(settings=settings, appeal=appeal, text=text, language=language, total=counts.total)


async def receipt_page(request: Request) -> Response:
    receipt = await _receipt(request)
    if receipt is False:
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)
    if receipt is None:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    assert isinstance(receipt, Receipt)
    context = {
        "receipt": receipt,
        "title": await _title(request, receipt.appeal),
        "token": request.path_params["token"],
        "inclusion": [hash_.hex() for hash_ in receipt.inclusion],
        "status": Status,
        "badge_url": services(request).settings.url_for_path(f"/log/badges/{receipt.entry_id}.svg"),
        "share": await _share(request, receipt.appeal),
    }
    return render(request, "transparency/receipt.html", context, token_page=True)


async def receipt_json(request: Request) -> Response:
    receipt = await _receipt(request)
    if receipt is False:
        return JSONResponse({"error": "this receipt link is not valid"}, status_code=400, headers=_PRIVATE)
    if receipt is None:
        return JSONResponse({"error": "no such receipt"}, status_code=404, headers=_PRIVATE)
    assert isinstance(receipt, Receipt)
    if receipt.status is Status.QUEUED:
        return JSONResponse(
            {"error": "being added to the public log"}, status_code=404, headers={**_PRIVATE, "Retry-After": "5"}
        )
    if receipt.status is Status.NOT_LISTED:
        return JSONResponse({"error": "not in the public list yet"}, status_code=404, headers=_PRIVATE)
    return JSONResponse(receipt.as_json(), headers=_PRIVATE)


async def badge(request: Request) -> Response:
    """`/log/badges/{entry}.svg`: by the entry's public id, never by the receipt's token (which
    opens the receipt: an organisation puts the badge on its website for anyone to read)."""
    entry = request.path_params["entry"]
    db = services(request).db
    checkpoint = await store.latest(db)
    latest = None
    if checkpoint is not None and len(entry) == 32 and all(c in "0123456789abcdef" for c in entry):
        latest = await db.fetch_one(
            sa.select(log_leaves.c.idx, log_leaves.c.leaf)
            .where(log_leaves.c.entry_id == entry, log_leaves.c.idx < checkpoint.size)
            .order_by(log_leaves.c.idx.desc())
            .limit(1)
        )
    leaf = json.loads(latest["leaf"]) if latest is not None else {}
    # Only a named organisation's current listing: a badge would unmask an anonymous one, and
    # would claim too much for one that withdrew.
    if latest is None or leaf.get("event") != "listed" or leaf.get("visibility") != "public":
        return Response("Not Found\n", status_code=404, media_type="text/plain")
    title = await _title(request, leaf["appeal"])
    return Response(
        badge_svg(title, int(latest["idx"]), i18n.get_language()),
        media_type="image/svg+xml",
        headers={**BADGE_HEADERS, "Content-Language": i18n.get_language(), "Vary": "Accept-Language"},
    )


def badge_svg(title: str, index: int, language: str) -> str:
    """An accessible SVG (role="img", <title>) that loads nothing: the statement and the index."""
    short = title if len(title) <= _BADGE_TITLE else title[: _BADGE_TITLE - 1].rstrip() + "…"
    statement = _("We endorsed “%(title)s”", title=short)
    full = _("We endorsed “%(title)s”", title=title)
    entry = _("Public log entry %(index)s", index=index)
    # Wide enough for DejaVu Sans Bold, the widest of the usual fonts (about 0.64 em a character).
    width = max(220, int(max(8.4 * len(statement), 7.2 * len(entry))) + 24)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="48" viewBox="0 0 {width} 48"'
        f' role="img" aria-labelledby="t" xml:lang="{escape(language)}">'
        f'<title id="t">{escape(full)} — {escape(entry)}</title>'
        f'<rect width="{width}" height="48" rx="6" fill="#1d4f91"/>'
        '<g fill="#ffffff" font-family="DejaVu Sans,Verdana,Arial,sans-serif">'
        f'<text x="12" y="20" font-size="13" font-weight="bold">{escape(statement)}</text>'
        f'<text x="12" y="38" font-size="11">{escape(entry)}</text>'
        "</g></svg>\n"
    )


routes = [
    Route("/log/badges/{entry}.svg", badge, name="log_badge"),
    Route("/receipts/{token}.json", receipt_json, name="receipt_json"),
    Route("/receipts/{token}", receipt_page, name="receipt"),
]
