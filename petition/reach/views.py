"""The appeal beyond the site: the embed partners frame, the counter badge, the share card, and
the "Spread the word" page with the snippets for all three.

The embed (`/appeals/{slug}/embed`) is the one page other sites may frame: its CSP's
`frame-ancestors` lists EMBED_ORIGINS (and 'none' when that is empty); every other page keeps
`frame-ancestors 'none'` and X-Frame-Options DENY (petition.security). It holds no form: in a
third-party frame the CSRF cookie (SameSite=Lax) is not sent, and browsers that block or
partition third-party cookies (Safari, Firefox, Chrome) would drop it anyway, so a form there
would fail its CSRF check, and a contact's address typed into a frame on another site is
typed under an address bar that does not show ours. Its button opens the full form in the
top window (`target="_top"`, which browsers allow from a frame on a click).
"""

from __future__ import annotations

import asyncio
from html import escape
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition import countries, i18n
from petition.appeals.states import AppealStatus
from petition.db import Row
from petition.dossiers.render_pool import pool
from petition.formatting import format_number
from petition.i18n import ngettext
from petition.publish.cache import public_cache
from petition.publish.cached import appeal_by_slug, appeal_text, listed_counts
from petition.publish.http import body_etag, not_modified, tagged
from petition.publish.share import SUMMARY_LENGTH, card_version, count_step, plain_summary
from petition.publish.share import site_name as share_site_name
from petition.reach.badge import badge_count, badge_svg, count_sentence
from petition.reach.cards import CardStore, CardText, render_card
from petition.security import frame_ancestors_csp
from petition.transparency.receipt_views import BADGE_HEADERS
from petition.web import render, services

#: Seconds a badge or card may be kept before a cache asks again (with its ETag).
BADGE_MAX_AGE = 300
CARD_MAX_AGE = 3600


async def _appeal_and_text(request: Request) -> tuple[Row, Row]:
    cache = public_cache(request)
    db = services(request).db
    appeal = await appeal_by_slug(cache, db, slug=request.path_params["slug"])
    if appeal is None or appeal["status"] == AppealStatus.DRAFT:
        raise HTTPException(404, "no such appeal")
    text = await appeal_text(cache, db, appeal=appeal, language=i18n.get_language())
    if text is None:
        raise HTTPException(404, "no such appeal")
    return appeal, text


def site_name(request: Request) -> str:
    return share_site_name(services(request).settings)


async def embed(request: Request) -> Response:
    appeal, text = await _appeal_and_text(request)
    counts = await listed_counts(public_cache(request), services(request).db, appeal=appeal)
    settings = services(request).settings
    language = i18n.get_language()
    response = render(
        request,
        "reach/embed.html",
        {
            "appeal": appeal,
            "text": text,
            "counts": counts,
            "summary": plain_summary(str(text["body"]), SUMMARY_LENGTH),
            "appeal_url": settings.url_for_path(f"/appeals/{appeal['slug']}?lang={language}"),
            "site_name": site_name(request),
        },
    )
    response.headers["Content-Security-Policy"] = frame_ancestors_csp(settings.embed_origins)
    return response


async def badge(request: Request) -> Response:
    """`?country=CC` counts one country (as `by_country` does: anonymous ones only from the
    threshold on); `?lang=xx` the language, as on every page."""
    appeal, text = await _appeal_and_text(request)
    raw_country = request.query_params.get("country", "").strip().upper() or None
    if raw_country is not None and not countries.is_country(raw_country):
        return Response("Unknown country\n", status_code=400, media_type="text/plain")
    counts = await listed_counts(public_cache(request), services(request).db, appeal=appeal)
    count = badge_count(counts, raw_country)
    language = i18n.get_language()
    country = countries.name(raw_country, language) if raw_country else None
    body = badge_svg(
        title=str(text["title"]),
        sentence=count_sentence(count, format_number(count), country),
        language=language,
    ).encode("utf-8")
    headers = {
        **{k: v for k, v in BADGE_HEADERS.items() if k != "Cache-Control"},
        "Content-Language": language,
        "Vary": "Accept-Language",
    }
    etag = body_etag(body)
    answer = not_modified(request, etag, max_age=BADGE_MAX_AGE, headers=headers)
    if answer is not None:
        return answer
    return tagged(Response(body, media_type="image/svg+xml", headers=headers), etag, max_age=BADGE_MAX_AGE)


def _card_store(request: Request) -> CardStore:
    state = request.app.state
    store: CardStore | None = getattr(state, "card_store", None)
    if store is None:
        store = state.card_store = CardStore(services(request).settings.data_dir / "cards")
    return store


async def card(request: Request) -> Response:
    """The share card, 1200×630 PNG, in the request's language (`?v=` only breaks caches)."""
    appeal, text = await _appeal_and_text(request)
    counts = await listed_counts(public_cache(request), services(request).db, appeal=appeal)
    language = i18n.get_language()
    name = site_name(request)
    title = str(text["title"])
    version = card_version(title=title, site_name=name, total=counts.total, language=language)
    etag = f'"{version}"'
    headers = {"Content-Language": language, "Vary": "Accept-Language", "Cross-Origin-Resource-Policy": "cross-origin"}
    answer = not_modified(request, etag, max_age=CARD_MAX_AGE, headers=headers)
    if answer is not None:
        return answer
    shown = count_step(counts.total)
    number = format_number(shown) + ("+" if shown < counts.total else "")
    drawn = CardText(
        title=title,
        count_line=ngettext(
            "%(num)s organisation has endorsed this appeal.",
            "%(num)s organisations have endorsed this appeal.",
            shown,
            num=number,
        ),
        site_name=name,
        language=language,
    )

    async def draw() -> bytes:
        # CPU work: in the dossiers' process pool, never on the event loop.
        return await asyncio.get_running_loop().run_in_executor(pool(), render_card, drawn)

    png = await _card_store(request).get(slug=appeal["slug"], language=language, version=version, draw=draw)
    return tagged(Response(png, media_type="image/png", headers=headers), etag, max_age=CARD_MAX_AGE)


async def spread(request: Request) -> Response:
    """ "Spread the word": the link, the badge and the embed, each with its snippet to copy."""
    appeal, text = await _appeal_and_text(request)
    settings = services(request).settings
    language = i18n.get_language()
    slug = appeal["slug"]
    link = settings.url_for_path(f"/appeals/{slug}?lang={language}")
    badge_url = settings.url_for_path(f"/appeals/{slug}/badge.svg?lang={language}")
    embed_url = settings.url_for_path(f"/appeals/{slug}/embed?lang={language}")
    title = escape(str(text["title"]))
    context: dict[str, Any] = {
        "appeal": appeal,
        "text": text,
        "link": link,
        "badge_preview": f"/appeals/{slug}/badge.svg?lang={language}",  # img-src 'self'
        "embed_origins": settings.embed_origins,
        # The HTML to copy, its attributes escaped here; the page escapes it once more to show it.
        "snippets": {
            "badge": f'<a href="{escape(link)}"><img src="{escape(badge_url)}" alt="{title}"></a>',
            "embed": (
                f'<iframe src="{escape(embed_url)}" title="{title}" width="100%" height="320"'
                ' loading="lazy" style="border:0;max-width:34rem"></iframe>'
            ),
        },
    }
    return render(request, "reach/spread.html", context)


routes = [
    Route("/appeals/{slug}/embed", embed, name="embed"),
    Route("/appeals/{slug}/badge.svg", badge, name="appeal_badge"),
    Route("/appeals/{slug}/card.png", card, name="share_card"),
    Route("/appeals/{slug}/share", spread, name="spread"),
]
